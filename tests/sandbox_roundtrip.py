"""A test-local normaliser: original export A vs the sandbox's re-export B.

The comparator proper lives in ``harness.compare``; this one only excuses the
differences REDCap documents (redcap-odm-format.md §6.1, §6.2, §6.4) and says
which of them it saw, so the round-trip tests fail on anything else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace

from harness.compare.known import TARGET_DEFAULTS, is_calculated, is_survey_pseudo_field
from harness.odm.model import ProjectMetadata, Record
from harness.odm.reader import OdmDocument

#: GlobalVariables settings REDCap 15.7.6 no longer knows, dropped on import (§6.4).
UNKNOWN_TO_15_7 = {"FormActivationSurveyAutocontinue"}
#: Vendor-group attributes that are new on every import or export (§6.1).
REGENERATED = {"ReportsGroup": {"ID", "hash", "short_url", "is_public"},
               "ProjectDashboardsGroup": {"ID", "hash", "short_url", "is_public"},
               "EconsentGroup": {"ID"}}


@dataclass
class Comparison:
    differences: list[str] = field(default_factory=list)
    excused: set[str] = field(default_factory=set)

    def differ(self, what: str) -> None:
        self.differences.append(what)

    def excuse(self, rule: str) -> None:
        self.excused.add(rule)


def read(xml: bytes) -> tuple[ProjectMetadata, list[Record]]:
    doc = OdmDocument(io.BytesIO(xml))
    meta = doc.metadata
    return meta, list(doc.records())


def _major(meta: ProjectMetadata) -> int:
    head = meta.header.source_system_version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _settings(a: ProjectMetadata, b: ProjectMetadata, out: Comparison) -> None:
    for key, value in a.settings.items():
        other = b.settings.get(key)
        if other == value:
            continue
        if key in UNKNOWN_TO_15_7 and other is None:
            out.excuse("setting unknown to REDCap 15.7 dropped")
        elif value.strip() == "" and key in TARGET_DEFAULTS and other == TARGET_DEFAULTS[key]:
            out.excuse("empty setting shows the target default")
        elif key == "MyCapEnabled" and other == "0":
            out.excuse("MyCap disabled on the target")
        else:
            out.differ(f"setting {key}: {value!r} -> {other!r}")


def _groups(a: ProjectMetadata, b: ProjectMetadata, out: Comparison) -> None:
    gb = {g.tag: g for g in b.groups}
    for g in a.groups:
        other = gb.get(g.tag)
        if other is None:
            if not g.rows:
                out.excuse("empty group wrapper not written by 15.7")
            elif g.tag.lower().startswith("mycap"):
                out.excuse("MyCap groups dropped")
            else:
                out.differ(f"group {g.tag} missing")
            continue
        if len(g.rows) != len(other.rows):
            out.differ(f"group {g.tag}: {len(g.rows)} rows -> {len(other.rows)}")
            continue
        masked = REGENERATED.get(g.tag, set())
        for i, (ra, rb) in enumerate(zip(g.rows, other.rows)):
            da = {k: v for k, v in ra.attrs if k not in masked}
            db = {k: v for k, v in rb.attrs if k not in masked}
            if masked and dict(ra.attrs) != dict(rb.attrs):
                out.excuse("regenerated vendor ids and share links")
            if da != db or (ra.text != rb.text and g.tag != "OdmAttachmentGroup"):
                out.differ(f"group {g.tag} row {i}: {da} -> {db}")


def _item_groups(meta: ProjectMetadata) -> list[tuple]:
    pseudo = set(meta.pseudo_fields)
    return [(g.oid, g.name, tuple(r for r in g.items if r.item_oid not in pseudo))
            for g in meta.item_groups if not (g.items and all(r.item_oid in pseudo for r in g.items))]


def _cells(meta: ProjectMetadata, records: list[Record]) -> dict[tuple, object]:
    calc = {f.name for f in meta.fields if is_calculated(f.field_type, f.field_annotation)}
    forms = {f.name for f in meta.forms}
    out: dict[tuple, object] = {}
    for r in records:
        for (event, form, instance, item), value in r.items():
            f = meta.item_oids.get(item)
            if (f is not None and f.name in calc) or is_survey_pseudo_field(item, forms):
                continue
            out[(r.record_id, event, form, instance, item)] = value
        for (event, form, instance, item), value in ((k, v) for row in r.rows for k, v in
                                                    (((row.event, row.repeat_instrument, row.instance, i), fv)
                                                     for i, fv in row.files.items())):
            out[(r.record_id, event, form, instance, item)] = value
        if r.dag:
            out[(r.record_id, "redcap_data_access_group")] = r.dag
    return out


def compare(a_xml: bytes, b_xml: bytes) -> Comparison:
    out = Comparison()
    a, ra = read(a_xml)
    b, rb = read(b_xml)
    if a.record_id_field != b.record_id_field:
        out.differ(f"record id field {a.record_id_field} -> {b.record_id_field}")
    if a.forms != b.forms:
        out.differ(f"forms {a.forms} -> {b.forms}")
    fa, fb = {f.name: f for f in a.fields}, {f.name: f for f in b.fields}
    if list(fa) != list(fb):
        out.differ(f"fields {list(fa)} -> {list(fb)}")
    for name, f in fa.items():
        if name in fb and f != fb[name]:
            out.differ(f"field {name}: {f} -> {fb[name]}")
    events_a, events_b = a.events, b.events
    if _major(a) < 14:
        # StudyEventDef/@Repeating says Yes for repeating events from 14.0 on (§6.4).
        if any(e.repeating for e in events_b):
            out.excuse("repeating events flagged from REDCap 14")
        events_a = tuple(replace(e, repeating=False) for e in events_a)
        events_b = tuple(replace(e, repeating=False) for e in events_b)
    if events_a != events_b:
        out.differ(f"events {events_a} -> {events_b}")
    if (a.repeating_events, a.repeating_forms) != (b.repeating_events, b.repeating_forms):
        out.differ(f"repeating {a.repeating_forms} -> {b.repeating_forms}")
    _settings(a, b, out)
    _groups(a, b, out)
    if _item_groups(a) != _item_groups(b):
        out.differ("item groups differ")
    if a.code_lists != b.code_lists:
        out.differ("code lists differ")
    ca, cb = _cells(a, ra), _cells(b, rb)
    for key, value in ca.items():
        if cb.get(key) != value:
            out.differ(f"value {key}: {value!r} -> {cb.get(key)!r}")
    for key, value in cb.items():
        if key not in ca:
            if key[-1].endswith("_complete") and value == "0":
                out.excuse("form status 0 filled for existing rows")
            else:
                out.differ(f"new value {key}: {value!r}")
    if [r.record_id for r in ra] != [r.record_id for r in rb]:
        out.differ("record order differs")
    return out
