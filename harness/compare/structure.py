"""Compare two projects' metadata the way REDCap's data dictionary sees it.

Each `ProjectMetadata` is canonicalised into plain nested dicts: fields keyed
by variable with every attribute, forms and events keyed by name, choices by
code, vendor-group rows by position. Order is kept as `Order` values, compared
only over the items both sides have, so a dropped field is reported once (as
missing) rather than again as a re-ordering. Layout artefacts of the XML
(ItemGroupDefs, per-option checkbox CodeLists, export pseudo-fields) are left
out: REDCap derives them from what is compared here.

DeepDiff finds every change; each one is then passed through
`harness.compare.known.match_structure` -- the only place known REDCap
differences are excused -- and turned into a `Difference` with a readable
location.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from harness.compare import known
from harness.compare.known import ABSENT, RuleContext
from harness.compare.model import SEP, Difference
from harness.odm.model import CLASSIC_EVENT, Field, ProjectMetadata

_MDV_STAMP = re.compile(r"^(.*)_(\d{4}-\d{2}-\d{2}_\d{4})$")
_ROW_LABELS = ("title", "rule_name", "group_name", "role_name", "form_name", "alert_title",
               "folder_name", "name", "DocName")


class Order(tuple):
    """A sequence whose order matters only among the items both sides have."""


class _OrderOperator:
    """DeepDiff custom operator: compare `Order` values by relative order of shared items."""

    def match(self, level) -> bool:
        return isinstance(level.t1, Order) and isinstance(level.t2, Order)

    def give_up_diffing(self, level, diff_instance) -> bool:
        shared = set(level.t1) & set(level.t2)
        if [x for x in level.t1 if x in shared] != [x for x in level.t2 if x in shared]:
            diff_instance.custom_report_result("values_changed", level)
        return True


# -- canonical model ------------------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _field(f: Field) -> dict[str, Any]:
    return {
        "form": f.form, "field_type": f.field_type, "label": f.label,
        "formatted_label": f.formatted_label, "validation": f.validation,
        "range_min": f.range_min, "range_max": f.range_max,
        # Parsed choices, not the raw CheckboxChoices text: spacing around its
        # "|" separators carries no meaning to REDCap's importer.
        "choices": {c.code: {"label": c.label, "formatted_label": c.formatted_label} for c in f.choices},
        "choice_order": Order(c.code for c in f.choices),
        "required": f.required, "identifier": f.identifier, "field_note": f.field_note,
        "section_header": f.section_header, "calculation": f.calculation,
        "branching_logic": f.branching_logic, "custom_alignment": f.custom_alignment,
        "question_number": f.question_number, "matrix_group": f.matrix_group,
        "matrix_ranking": f.matrix_ranking, "field_annotation": f.field_annotation,
        "slider_labels": f.slider_labels, "stop_actions": f.stop_actions, "ontology": f.ontology,
        "inline_image": f.inline_image, "video_url": f.video_url,
        "video_display_inline": f.video_display_inline,
        "attachment": None if f.attachment is None else {
            "doc_name": f.attachment.doc_name, "mime_type": f.attachment.mime_type,
            "content": f"sha256:{_sha(f.attachment.content_b64)}",
        },
        "data_type": f.data_type, "length": f.length, "significant_digits": f.significant_digits,
        "extra": dict(f.extra),
    }


def _attachment_identity(row) -> str:
    text = "".join((row.text or "").split())
    return f"attachment {row.get('DocName')} ({row.get('MimeType')}), sha256:{_sha(text)}"


def _multilanguage(value: str) -> dict[str, str]:
    """Split the project id and version out of the serialized settings blob."""
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return {"settings": value}
    out = {}
    for key in ("projectId", "version"):
        m = re.search(r's:%d:"%s";(s:\d+:"[^"]*"|i:-?\d+|N);' % (len(key), key), text)
        if m:
            out[f"settings {key}"] = m.group(1)
            text = text[: m.start()] + text[m.end():]
    out["settings"] = text
    return out


def _groups(meta: ProjectMetadata) -> dict[str, list[dict[str, str]]]:
    attachments = meta.group("OdmAttachmentGroup")
    ids = {r.get("ID"): _attachment_identity(r) for r in attachments.rows} if attachments else {}
    out: dict[str, list[dict[str, str]]] = {}
    for g in meta.groups:
        if not g.rows:
            continue  # 15.2 wrote empty wrappers, 15.7 omits them: same content
        rows = []
        for r in g.rows:
            if g.tag == "OdmAttachmentGroup":
                row = dict(r.attrs)
                row["content"] = f"sha256:{_sha(''.join((r.text or '').split()))}"
            else:
                # References to attachments are compared by what they point at.
                row = {k: ids.get(v, v) if v else v for k, v in r.attrs}
                if r.text:
                    row["content"] = f"sha256:{_sha(r.text)}"
            if g.tag == "MultilanguageSettingsGroup" and "settings" in row:
                row.update(_multilanguage(row.pop("settings")))
            rows.append(row)
        out[g.tag] = rows
    return out


def canonical(meta: ProjectMetadata, *, as_classic: bool = False) -> dict[str, Any]:
    """The comparable model of one project; ``as_classic`` drops a lone event (§6.2)."""
    h = meta.header
    stamp = _MDV_STAMP.match(meta.metadata_version_oid)
    settings = dict(meta.settings)
    for name in meta.setting_attributes:
        # ProtectedEmailModeLogo carries a base64 image as its text.
        settings[name] = f"sha256:{_sha(''.join(settings.get(name, '').split()))}"
    events = () if as_classic else meta.events
    forms_of_event = {e.unique_name: e.forms for e in events}
    rep_event = (lambda ev: CLASSIC_EVENT) if not events else (lambda ev: ev)
    return {
        "odm": {
            "ODMVersion": h.odm_version, "FileOID": h.file_oid, "FileType": h.file_type,
            "Description": h.description, "AsOfDateTime": h.as_of_datetime,
            "CreationDateTime": h.creation_datetime, "SourceSystem": h.source_system,
            "SourceSystemVersion": h.source_system_version,
        },
        "study": {
            "OID": meta.study_oid, "StudyName": meta.title,
            "StudyDescription": meta.study_description, "ProtocolName": meta.protocol_name,
            "MetaDataVersion OID": stamp.group(1) if stamp else meta.metadata_version_oid,
            "MetaDataVersion OID timestamp": stamp.group(2) if stamp else "",
            "MetaDataVersion Name": meta.metadata_version_name,
            "RecordIdField": meta.record_id_field,
        },
        "settings": settings,
        "setting_attributes": {k: dict(v) for k, v in meta.setting_attributes.items()},
        "arms": {} if not events else {str(a.num): {"name": a.name} for a in meta.arms},
        "events": {
            e.unique_name: {
                "name": e.name, "event_name": e.event_name, "arm": str(e.arm_num),
                "custom_label": e.custom_label, "day_offset": e.day_offset,
                "offset_min": e.offset_min, "offset_max": e.offset_max, "repeating": e.repeating,
                "forms": {f: True for f in forms_of_event[e.unique_name]},
            }
            for e in events
        },
        "event_order": Order(e.unique_name for e in events),
        "forms": {f.name: {"label": f.label, "fields": Order(x.name for x in meta.fields_of(f.name))}
                  for f in meta.forms},
        "form_order": Order(f.name for f in meta.forms),
        "fields": {f.name: _field(f) for f in meta.fields},
        "repeating": {
            "events": {ev: True for ev in meta.repeating_events if not as_classic},
            "forms": {f"{rep_event(r.event)}/{r.form}": {"custom_label": r.custom_label}
                      for r in meta.repeating_forms},
        },
        "groups": _groups(meta),
    }


def count_items(node: Any) -> int:
    """Leaves of a canonical model: the metadata items a comparison covers."""
    if isinstance(node, dict):
        return sum(count_items(v) for v in node.values())
    if isinstance(node, list):
        return sum(count_items(v) for v in node)
    return 1


# -- comparison ----------------------------------------------------------------------


@dataclass(frozen=True)
class StructureResult:
    differences: tuple[Difference, ...]
    known_fired: Counter
    items: int


def rule_context(a: ProjectMetadata, b: ProjectMetadata) -> RuleContext:
    types = {f.name: f.field_type for f in b.fields}
    types.update({f.name: f.field_type for f in a.fields})
    bval = {f.name: f.validation for f in b.fields}
    return RuleContext(
        a_version=known.parse_version(a.header.source_system_version),
        b_version=known.parse_version(b.header.source_system_version),
        field_types=types,
        validations={f.name: (f.validation, bval.get(f.name, "")) for f in a.fields},
        a_repeating_events=frozenset(a.repeating_events),
    )


def compare_structure(a: ProjectMetadata, b: ProjectMetadata) -> StructureResult:
    """Every metadata difference between A and B, known ones excused by rule."""
    fired: Counter = Counter()
    out: list[Difference] = []
    single_event = len(a.events) == 1 and not b.events
    if single_event:
        rule = known.SINGLE_EVENT_CLASSIC
        out.append(Difference("event_missing", rule.severity, f"event {a.events[0].unique_name}",
                              "longitudinal, 1 event", "classic", rule.name, rule.reason))
        fired[rule.name] += 1
    ca = canonical(a, as_classic=single_event)
    cb = canonical(b)
    ctx = rule_context(a, b)
    # threshold_to_diff_deeper=0: always descend, so each missing field is its own finding
    # instead of one "the whole fields dict changed" when few keys are shared.
    diff = DeepDiff(ca, cb, view="tree", custom_operators=[_OrderOperator()], threshold_to_diff_deeper=0)
    changes = []
    for levels in diff.values():
        for level in levels:
            path = tuple(str(p) for p in level.path(output_format="list"))
            t1 = ABSENT if level.t1 is notpresent else level.t1
            t2 = ABSENT if level.t2 is notpresent else level.t2
            changes.append((path, t1, t2))
    # What A never held is listed once per section, not once per tag: an old
    # backup restored into a new REDCap gains dozens of settings.
    absent: dict[tuple[str, str], list[str]] = {}
    for path, t1, t2 in sorted(changes, key=lambda c: _sort_key(c[0], ca, cb)):
        rule = known.match_structure(path, t1, t2, ctx)
        kind, location = describe(path, t1, t2, ca, cb)
        if rule is known.ABSENT_IN_A:
            fired[rule.name] += 1
            bucket = _absent_bucket(path, kind)
            if bucket not in absent:
                absent[bucket] = []
                out.append(bucket)  # placeholder, filled in below
            absent[bucket].append(path[-1])
            continue
        a_text, b_text = render(t1, kind), render(t2, kind)
        if rule is not None:
            fired[rule.name] += 1
            out.append(Difference(kind, rule.severity, location, a_text, b_text, rule.name, rule.reason))
        else:
            out.append(Difference(kind, "failure", location, a_text, b_text, None, _reason(kind)))
    rule = known.ABSENT_IN_A
    out = [d if isinstance(d, Difference) else
           Difference(d[0], rule.severity, d[1], None, ", ".join(dict.fromkeys(absent[d])), rule.name, rule.reason)
           for d in out]
    return StructureResult(tuple(out), fired, count_items(ca))


def _absent_bucket(path: tuple[str, ...], kind: str) -> tuple[str, str]:
    """(kind, location) of the summary finding for items absent in A."""
    if path[0] in ("settings", "setting_attributes"):
        return ("setting_changed", "settings absent in A")
    if path[0] == "groups":
        if len(path) == 2:
            return ("group_changed", "groups absent in A")
        return ("group_changed", SEP.join((f"group {path[1]}", "attributes absent in A")))
    return (kind, SEP.join((path[0], "attributes absent in A")))


_SECTION_ORDER = ("odm", "study", "settings", "setting_attributes", "arms", "events", "event_order",
                  "repeating", "forms", "form_order", "fields", "groups")


def _sort_key(path, ca, cb):
    """Report in project order: sections, then forms/fields/events as the project orders them."""
    section = _SECTION_ORDER.index(path[0]) if path[0] in _SECTION_ORDER else len(_SECTION_ORDER)
    rank = 0
    if path[0] == "fields" and len(path) > 1:
        rank = _position(path[1], ca["fields"], cb["fields"])
    elif path[0] in ("forms", "events") and len(path) > 1:
        rank = _position(path[1], ca[path[0]], cb[path[0]])
    return (section, rank, path)


def _position(key, a: dict, b: dict) -> int:
    for i, k in enumerate(a):
        if k == key:
            return i
    for i, k in enumerate(b):
        if k == key:
            return len(a) + i
    return len(a) + len(b)


def render(value: Any, kind: str = "") -> str | None:
    """A metadata value as finding text (metadata is project design, not PHI)."""
    if value is ABSENT or value is None:
        return None
    if isinstance(value, dict) and kind in ("field_missing", "field_extra"):
        return f"{value['field_type']} field “{value['label']}”"
    if isinstance(value, dict) and kind in ("form_missing", "form_extra"):
        return f"instrument “{value['label']}” ({len(value['fields'])} fields)"
    if isinstance(value, dict) and kind in ("event_missing", "event_extra"):
        return f"event “{value['name']}” ({len(value['forms'])} instruments)"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Order):
        return ", ".join(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)
    return text if len(text) <= 300 else text[:299] + "…"


_REASONS = {
    "field_missing": "the field is not in B", "field_extra": "B has a field A does not",
    "form_missing": "the instrument is not in B", "form_extra": "B has an instrument A does not",
    "event_missing": "the event is not in B", "event_extra": "B has an event A does not",
    "mapping_changed": "the instrument's designation for this event differs",
}


def _reason(kind: str) -> str:
    return _REASONS.get(kind, "differs between A and B")


def _row_label(rows_a, rows_b, index: str) -> str:
    i = int(index)
    row = rows_a[i] if rows_a and i < len(rows_a) else (rows_b[i] if rows_b and i < len(rows_b) else {})
    for key in _ROW_LABELS:
        if row.get(key):
            label = row[key]
            return f"row {i + 1} “{label if len(label) <= 40 else label[:39] + '…'}”"
    return f"row {i + 1}"


def describe(path, a, b, ca, cb) -> tuple[str, str]:
    """(kind, readable location) of a change at ``path`` in the canonical model."""
    head, rest = path[0], path[1:]
    if not rest:
        return "metadata_changed", head
    if head == "odm":
        return "metadata_changed", SEP.join(("ODM",) + rest)
    if head == "study":
        return "metadata_changed", SEP.join(("study",) + rest)
    if head in ("settings", "setting_attributes"):
        return "setting_changed", SEP.join((f"setting {rest[0]}",) + rest[1:]) if rest else "settings"
    if head == "arms":
        return "metadata_changed", SEP.join((f"arm {rest[0]}",) + rest[1:]) if rest else "arms"
    if head == "event_order":
        return "metadata_changed", "event order"
    if head == "form_order":
        return "metadata_changed", "form order"
    if head == "events":
        if len(rest) == 1:
            return ("event_missing" if b is ABSENT else "event_extra"), f"event {rest[0]}"
        where = f"event {rest[0]}"
        if rest[1] == "forms":
            return "mapping_changed", SEP.join((where,) + tuple(f"form {x}" for x in rest[2:3]))
        if rest[1] == "repeating":
            return "repeating_changed", SEP.join((where, "repeating"))
        return "metadata_changed", SEP.join((where,) + rest[1:])
    if head == "forms":
        if len(rest) == 1:
            return ("form_missing" if b is ABSENT else "form_extra"), f"form {rest[0]}"
        if rest[1] == "fields":
            return "metadata_changed", SEP.join((f"form {rest[0]}", "field order"))
        return "metadata_changed", SEP.join((f"form {rest[0]}",) + rest[1:])
    if head == "fields":
        var = rest[0]
        spec = ca["fields"].get(var) or cb["fields"].get(var) or {}
        where = (f"form {spec.get('form', '?')}", f"field {var}")
        if len(rest) == 1:
            return ("field_missing" if b is ABSENT else "field_extra"), SEP.join(where)
        if rest[1] == "choices":
            tail = tuple(f"choice {x}" if i == 0 else x for i, x in enumerate(rest[2:]))
            return "codelist_changed", SEP.join(where + (tail or ("choices",)))
        if rest[1] == "choice_order":
            return "codelist_changed", SEP.join(where + ("choice order",))
        return "metadata_changed", SEP.join(where + rest[1:])
    if head == "repeating":
        if len(rest) < 2:
            return "repeating_changed", "repeating"
        if rest[0] == "events":
            return "repeating_changed", SEP.join(("repeating", f"event {rest[1]}"))
        event, _, form = rest[1].partition("/")
        return "repeating_changed", SEP.join(("repeating", f"event {event}", f"form {form}") + rest[2:])
    if head == "groups":
        if len(rest) == 1:
            return "group_changed", f"group {rest[0]}"
        tag = rest[0]
        row = _row_label(ca["groups"].get(tag), cb["groups"].get(tag), rest[1])
        return "group_changed", SEP.join((f"group {tag}", row) + rest[2:])
    return "metadata_changed", SEP.join(path)
