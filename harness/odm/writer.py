"""Write project XML exactly as REDCap 15.7's exporter does (``ODM::getProjectXML``).

    with open(path, "wb") as out:
        write_project(out, meta, records, options=ExportOptions(export_files=True))

The writer is the mirror of ``harness.odm.reader``: it takes the model and
derives everything REDCap derives at export time (OIDs from the title and the
clock, ItemGroupDef splits, DataType/Length, CodeLists, RangeCheck messages,
row order, default ``0`` values), so a restored copy can be re-exported the way
a real REDCap would, and synthetic projects look like real exports.

It streams: the Study is written first, then one ``<SubjectData>`` per record
as it is produced, so memory does not grow with the archive. Records are
written in the order given (REDCap sorts them with ``natcaseksort``; callers
sort with `natural_key`); the writer orders the rows inside each record.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from io import BytesIO
from typing import BinaryIO, NamedTuple

from harness.odm.model import (
    DAG_FIELD,
    SURVEY_ID_FIELD,
    Choice,
    CodeList,
    Field,
    ItemGroup,
    ItemRef,
    ProjectMetadata,
    Record,
    RecordRow,
    checkbox_code,
)
from harness.odm.names import metadata_version_oid, study_oid

DEFAULT_VERSION = "15.7.6"

NS_DECL = (
    'xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:redcap="https://projectredcap.org" '
    'xsi:schemaLocation="http://www.cdisc.org/ns/odm/v1.3 schema/odm/ODM1-3-1.xsd"'
)

FORM_STATUS_HEADER = "Form Status"
FORM_STATUS_CHOICES = (Choice("0", "Incomplete"), Choice("1", "Unverified"), Choice("2", "Complete"))
_BOOLEAN_ITEMS = {
    "yesno": (Choice("1", "Yes"), Choice("0", "No")),
    "truefalse": (Choice("1", "True"), Choice("0", "False")),
}
_CHECKBOX_ITEMS = (Choice("1", "Checked"), Choice("0", "Unchecked"))
_PSEUDO_LABELS = {DAG_FIELD: "Data Access Group", SURVEY_ID_FIELD: "Survey Identifier"}
TIMESTAMP_LABEL = "Survey Timestamp"

# ItemDef redcap:* attributes after FieldType/TextValidationType, in REDCap's order.
_OPTIONAL_ATTRS = (
    ("SliderLabels", "slider_labels"), ("FieldNote", "field_note"), ("SectionHeader", "section_header"),
    ("Calculation", "calculation"), ("Identifier", "identifier"), ("RequiredField", "required"),
    ("StopActions", "stop_actions"), ("MatrixRanking", "matrix_ranking"), ("OntologySearch", "ontology"),
    ("BranchingLogic", "branching_logic"), ("CustomAlignment", "custom_alignment"),
    ("QuestionNumber", "question_number"), ("MatrixGroupName", "matrix_group"),
    ("FieldAnnotation", "field_annotation"), ("InlineImage", "inline_image"), ("VideoUrl", "video_url"),
    ("VideoDisplayInline", "video_display_inline"),
)
_FLAG_ATTRS = {"identifier", "required", "matrix_ranking"}

# htmlspecialchars(ENT_QUOTES) as PHP spells it: the apostrophe is &#039;, not &apos;.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#039;"})
# What REDCap strips from data values: ASCII controls except LF and CR (TAB goes too).
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
_TAGS = re.compile(r"<[^>]*>")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_DIGITS = re.compile(r"([0-9]+)")
# PHP 8 case-folds ASCII only (strtolower is locale-free since 8.2).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NUMBER_DP = re.compile(r"^number_\d+dp$")


def esc(text: str) -> str:
    """PHP ``htmlspecialchars($text, ENT_QUOTES)``."""
    return text.translate(_ESCAPES)


def esc_value(text: str) -> str:
    """A ClinicalData value: control characters removed, then escaped; raw LF/CR survive."""
    return _CONTROL.sub("", text).translate(_ESCAPES)


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def natural_key(record_id: str) -> tuple:
    """Sort key giving PHP ``natcaseksort`` order: ``1, 2, 10, a, B``.

    Digit runs compare as numbers, everything else character by character
    (code-point order is UTF-8 byte order), ASCII case-folded, as
    ``strnatcasecmp`` does: ``-`` sorts before digits, letters after.
    """
    out: list[tuple] = []
    for i, part in enumerate(_DIGITS.split(record_id.translate(_ASCII_LOWER))):
        if i % 2:
            out.append((48, int(part), part))
        else:
            out.extend((ord(ch),) for ch in part)
    return tuple(out)


@dataclass(frozen=True)
class ExportOptions:
    """The flags of API ``content=project_xml`` (REDCap's names in the comments)."""

    metadata_only: bool = False  # returnMetadataOnly
    export_files: bool = False  # exportFiles
    export_survey_fields: bool = False  # exportSurveyFields
    export_dags: bool = False  # exportDataAccessGroups
    #: fields[]: only these variables in ClinicalData (None: all); the record ID always.
    fields: frozenset[str] | None = None


def options_for(meta: ProjectMetadata, *, export_files: bool = True) -> ExportOptions:
    """The options an existing export was evidently made with (from its pseudo-fields)."""
    pseudo = set(meta.pseudo_fields)
    return ExportOptions(
        export_files=export_files,
        export_dags=DAG_FIELD in pseudo,
        export_survey_fields=SURVEY_ID_FIELD in pseudo or any(p.endswith("_timestamp") for p in pseudo),
    )


# -- what REDCap derives from a data-dictionary row ---------------------------
def odm_data_type(f: Field) -> str:
    """``ODM::convertRedcapToOdmFieldType``."""
    if f.field_type in ("checkbox", "yesno", "truefalse"):
        return "boolean"
    if f.field_type == "slider":
        return "integer"
    if f.field_type == "calc":
        return "float"
    if f.field_type != "text":
        return "text"
    v = f.validation
    if v in ("int", "integer"):
        return "integer"
    if v in ("float", "number") or _NUMBER_DP.match(v):
        return "float"
    if v == "date" or v.startswith("date_"):
        return "date"
    if v.startswith("datetime_seconds"):
        return "datetime"
    if v.startswith("datetime"):
        return "partialDatetime"
    if v == "time":
        return "partialTime"
    return "text"


def odm_length(f: Field) -> str:
    """``ODM::getOdmFieldLength``: longest code for multiple choice, else 999."""
    if f.field_type == "checkbox":
        return "1"
    if f.field_type in _BOOLEAN_ITEMS:
        return "1"
    if f.field_type in ("radio", "select", "sql"):
        if not f.choices and f.field_type == "sql":
            # REDCap computes this from the query result, which no export carries.
            return f.length or "1"
        return str(max([len(c.code.encode()) for c in f.choices] + [1]))
    return "999"


def odm_significant_digits(f: Field) -> str:
    return "1" if f.field_type == "text" and f.validation == "float" else ""


def with_odm_facts(f: Field) -> Field:
    """``f`` with DataType/Length/SignificantDigits filled in as REDCap derives them."""
    return replace(f, data_type=odm_data_type(f), length=odm_length(f),
                   significant_digits=odm_significant_digits(f))


def form_status_field(form: str) -> Field:
    """The ``<form>_complete`` field REDCap adds to every instrument."""
    return with_odm_facts(Field(
        name=f"{form}_complete", form=form, field_type="select", label="Complete?",
        section_header=FORM_STATUS_HEADER, choices=FORM_STATUS_CHOICES,
    ))


def plain_label(label: str) -> str:
    """``strip_tags(br2nl(label))``: REDCap's TranslatedText for an HTML label."""
    return _TAGS.sub("", _BR.sub("\n", label))


def survey_forms(meta: ProjectMetadata) -> tuple[str, ...]:
    """Forms that are surveys: SurveysGroup rows, or timestamps an older export carried."""
    names = set(meta.surveys) | {p.removesuffix("_timestamp") for p in meta.pseudo_fields
                                 if p.endswith("_timestamp")}
    return tuple(f.name for f in meta.forms if f.name in names)


def _surveys_on(meta: ProjectMetadata, options: ExportOptions) -> tuple[str, ...]:
    # REDCap forces exportSurveyFields off when surveys are disabled or none exist.
    if not options.export_survey_fields or options.metadata_only:
        return ()
    if meta.settings.get("SurveysEnabled", "1") == "0":
        return ()
    return survey_forms(meta)


# -- the export field list and how it splits into ItemGroupDefs ---------------
class ExportItem(NamedTuple):
    """One entry of ``ODM::getOdmExportFields``: an ItemDef / ItemRef."""

    oid: str
    variable: str
    form: str
    #: The field's own section header ("" if none): a change starts a new group.
    section: str
    field: Field | None  # None for pseudo-fields
    mandatory: bool
    #: Appended to the record-ID group whatever its section (DAG, survey id, 1st timestamp).
    joins_record_group: bool = False
    #: A survey timestamp before a form's fields: always opens a group.
    opens_group: bool = False


def export_items(meta: ProjectMetadata, options: ExportOptions = ExportOptions()) -> list[ExportItem]:
    """Every ItemDef of the metadata in REDCap's order, pseudo-fields included."""
    out: list[ExportItem] = []
    if not meta.fields:
        return out
    rid = meta.field_map.get(meta.record_id_field) or meta.fields[0]
    surveys = _surveys_on(meta, options)
    dags = options.export_dags and not options.metadata_only
    out.append(ExportItem(rid.name, rid.name, rid.form, rid.section_header, rid, rid.required))
    if dags:
        out.append(ExportItem(DAG_FIELD, DAG_FIELD, rid.form, "", None, False, True))
    if surveys:
        out.append(ExportItem(SURVEY_ID_FIELD, SURVEY_ID_FIELD, rid.form, "", None, False, True))
        if rid.form in surveys:
            ts = f"{rid.form}_timestamp"
            out.append(ExportItem(ts, ts, rid.form, "", None, False, True))
    started: set[str] = set()
    for f in meta.fields:
        if f is rid:
            continue
        if f.form not in started:
            started.add(f.form)
            if f.form in surveys:
                # For the first form this repeats the timestamp already in the record-ID
                # group: REDCap really does emit that ItemRef and ItemDef twice.
                ts = f"{f.form}_timestamp"
                out.append(ExportItem(ts, ts, f.form, "", None, False, opens_group=True))
        if f.field_type == "checkbox":
            for c in f.choices:
                oid = f"{f.name}___{checkbox_code(c.code)}"
                out.append(ExportItem(oid, f.name, f.form, f.section_header, f, f.required))
        else:
            out.append(ExportItem(f.name, f.name, f.form, f.section_header, f, f.required))
    return out


def item_groups(meta: ProjectMetadata, items: list[ExportItem] | None = None,
                options: ExportOptions = ExportOptions()) -> list[ItemGroup]:
    """``ODM::getOdmItemGroups``: split forms at every change of section."""
    if items is None:
        items = export_items(meta, options)
    labels = {f.name: f.label for f in meta.forms}
    groups: list[tuple[str, str, str, list[ItemRef]]] = []
    prev_form = prev_section = None
    for it in items:
        ref = ItemRef(it.oid, it.mandatory, it.variable)
        if groups and it.joins_record_group:
            groups[-1][3].append(ref)
            continue
        if not groups or it.opens_group or it.form != prev_form or it.section != prev_section:
            if it.section:
                name = it.section
            elif it.field is not None and it.field.field_type == "checkbox":
                name = ""  # REDCap looks the label up by the expanded name and finds nothing
            else:
                name = labels.get(it.form, "")
            groups.append((f"{it.form}.{it.oid}", name, it.form, [ref]))
        else:
            groups[-1][3].append(ref)
        prev_form, prev_section = it.form, it.section
    return [ItemGroup(oid, name, form, tuple(refs)) for oid, name, form, refs in groups]


def code_lists(meta: ProjectMetadata) -> list[CodeList]:
    """``ODM::getOdmCodeList`` for every field, in field order."""
    out: list[CodeList] = []
    for f in meta.fields:
        if f.field_type in ("radio", "select") or (f.field_type == "sql" and f.choices):
            out.append(CodeList(f"{f.name}.choices", f.name, "text", f.name, f.choices))
        elif f.field_type in _BOOLEAN_ITEMS:
            out.append(CodeList(f"{f.name}.choices", f.name, "boolean", f.name, _BOOLEAN_ITEMS[f.field_type]))
        elif f.field_type == "checkbox":
            choices = checkbox_choices_text(f)
            for c in f.choices:
                oid = f"{f.name}___{checkbox_code(c.code)}"
                out.append(CodeList(f"{oid}.choices", oid, "boolean", f.name, _CHECKBOX_ITEMS, choices))
    return out


def checkbox_choices_text(f: Field) -> str:
    """``redcap:CheckboxChoices``: as stored when known, else REDCap's ``code, label | …``."""
    if f.checkbox_choices is not None:
        return f.checkbox_choices
    return " | ".join(f"{c.code}, {c.label}" for c in f.choices)


# -- text builders ------------------------------------------------------------
def _attrs(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f' {k}="{esc(v)}"' for k, v in pairs)


def _range_message(lo: str, hi: str) -> str:
    return (f"The value you provided is outside the suggested range ({lo or 'no limit'} - {hi or 'no limit'}). "
            "This value is admissible, but you may wish to double check it.")


def _question(label: str, formatted: str | None) -> str:
    if formatted is None and "<" in label and ">" in label:
        label, formatted = plain_label(label), label
    rich = "" if formatted is None else f"<redcap:FormattedTranslatedText>{esc(formatted)}</redcap:FormattedTranslatedText>"
    return f"<TranslatedText>{esc(label)}</TranslatedText>{rich}"


def _item_def(it: ExportItem) -> str:
    f = it.field
    if f is None:
        dtype = "datetime" if it.oid.endswith("_timestamp") else "text"
        label = _PSEUDO_LABELS.get(it.oid, TIMESTAMP_LABEL)
        head = _attrs((("OID", it.oid), ("Name", it.oid), ("DataType", dtype), ("Length", "999"),
                       ("redcap:Variable", it.oid)))
        return f"\t<ItemDef{head}>\n\t\t<Question><TranslatedText>{label}</TranslatedText></Question>\n\t</ItemDef>\n"
    pairs = [("OID", it.oid), ("Name", it.oid), ("DataType", odm_data_type(f)), ("Length", odm_length(f))]
    if sig := odm_significant_digits(f):
        pairs.append(("SignificantDigits", sig))
    pairs += [("redcap:Variable", f.name), ("redcap:FieldType", f.field_type)]
    if f.validation:
        pairs.append(("redcap:TextValidationType", f.validation))
    for tag, attr in _OPTIONAL_ATTRS:
        value = getattr(f, attr)
        if attr in _FLAG_ATTRS:
            if value:
                pairs.append((f"redcap:{tag}", "y"))
        elif attr == "slider_labels":
            if value is not None:
                pairs.append((f"redcap:{tag}", value))
        elif value:
            pairs.append((f"redcap:{tag}", value))
    pairs += [(f"redcap:{k}", v) for k, v in f.extra]
    lines = [f"\t<ItemDef{_attrs(pairs)}>\n", f"\t\t<Question>{_question(f.label, f.formatted_label)}</Question>\n"]
    if f.field_type == "checkbox" or f.field_type in _BOOLEAN_ITEMS or f.field_type in ("radio", "select") \
            or (f.field_type == "sql" and f.choices):
        lines.append(f'\t\t<CodeListRef CodeListOID="{esc(it.oid)}.choices"/>\n')
    if f.validation and (f.range_min or f.range_max):
        message = esc(_range_message(f.range_min, f.range_max))
        for comparator, value in (("GE", f.range_min), ("LE", f.range_max)):
            if value:
                lines.append(
                    f'\t\t<RangeCheck Comparator="{comparator}" SoftHard="Soft">\n'
                    f"\t\t\t<CheckValue>{esc(value)}</CheckValue>\n"
                    f"\t\t\t<ErrorMessage><TranslatedText>{message}</TranslatedText></ErrorMessage>\n"
                    "\t\t</RangeCheck>\n"
                )
    if f.attachment is not None:
        a = f.attachment
        lines.append(f"\t\t<redcap:Attachment{_attrs((('DocName', a.doc_name), ('MimeType', a.mime_type)))}>"
                     f"{cdata(a.content_b64)}</redcap:Attachment>\n")
    lines.append("\t</ItemDef>\n")
    return "".join(lines)


def _code_list(cl: CodeList) -> str:
    pairs = [("OID", cl.oid), ("Name", cl.name), ("DataType", cl.data_type), ("redcap:Variable", cl.variable)]
    if cl.checkbox_choices is not None:
        pairs.append(("redcap:CheckboxChoices", cl.checkbox_choices))
    lines = [f"\t<CodeList{_attrs(pairs)}>\n"]
    for c in cl.items:
        label = _CONTROL.sub("", c.label)
        rich = "" if c.formatted_label is None else \
            f"<redcap:FormattedTranslatedText>{esc(c.formatted_label)}</redcap:FormattedTranslatedText>"
        lines.append(f'\t\t<CodeListItem CodedValue="{esc(c.code)}"><Decode><TranslatedText>{esc(label)}'
                     f"</TranslatedText>{rich}</Decode></CodeListItem>\n")
    lines.append("\t</CodeList>\n")
    return "".join(lines)


def _event_name(meta: ProjectMetadata, e) -> str:
    if len(meta.arms) > 1:
        return f"{e.event_name} (Arm {e.arm_num}: {e.arm_name})"
    return e.event_name


def _version_at_least(version: str, major: int) -> bool:
    head = version.split(".", 1)[0]
    return not head.isdigit() or int(head) >= major


def _global_variables(meta: ProjectMetadata, title: str) -> Iterator[str]:
    t = esc(title)
    yield "<GlobalVariables>\n"
    yield f"\t<StudyName>{t}</StudyName>\n"
    yield (f'\t<StudyDescription>This file contains the metadata, events, and data for REDCap project "{t}".'
           "</StudyDescription>\n")
    yield f"\t<ProtocolName>{t}</ProtocolName>\n"
    for tag, value in meta.settings.items():
        attrs = meta.setting_attributes.get(tag)
        if attrs:
            # The one setting with attributes (a logo) uses single quotes, as REDCap does.
            pairs = "".join(f" {k}='{esc(v)}'" for k, v in attrs)
            yield f"\t<redcap:{tag}{pairs}>{cdata(value)}</redcap:{tag}>\n"
        else:
            yield f"\t<redcap:{tag}>{esc(value)}</redcap:{tag}>\n"
    if meta.has_repeating:
        yield "\t<redcap:RepeatingInstrumentsAndEvents>\n"
        for event in meta.repeating_events:
            yield f'\t\t<redcap:RepeatingEvent redcap:UniqueEventName="{esc(event)}"/>\n'
        by_event: dict[str, list] = {}
        for r in meta.repeating_forms:
            by_event.setdefault(r.event, []).append(r)
        for rows in by_event.values():
            yield "\t\t<redcap:RepeatingInstruments>\n"
            for r in rows:
                yield ("\t\t\t<redcap:RepeatingInstrument" + _attrs((
                    ("redcap:UniqueEventName", r.event), ("redcap:RepeatInstrument", r.form),
                    ("redcap:CustomLabel", r.custom_label))) + "/>\n")
            yield "\t\t</redcap:RepeatingInstruments>\n"
        yield "\t</redcap:RepeatingInstrumentsAndEvents>\n"
    for g in meta.groups:
        yield f"\t<redcap:{g.tag}>\n"
        for row in g.rows:
            if row.text is None:
                yield f"\t\t<redcap:{g.row_tag}{_attrs(row.attrs)}/>\n"
            else:
                yield f"\t\t<redcap:{g.row_tag}{_attrs(row.attrs)}>{cdata(row.text)}</redcap:{g.row_tag}>\n"
        yield f"\t</redcap:{g.tag}>\n"
    yield "</GlobalVariables>\n"


def _metadata_version(meta: ProjectMetadata, title: str, mdv_oid: str, items: list[ExportItem],
                      groups: list[ItemGroup], version: str) -> Iterator[str]:
    yield (f'<MetaDataVersion OID="{esc(mdv_oid)}" Name="{esc(title)}" '
           f'redcap:RecordIdField="{esc(meta.record_id_field)}">\n')
    if meta.events:
        yield "\t<Protocol>\n"
        for n, e in enumerate(meta.events, 1):
            yield f'\t\t<StudyEventRef StudyEventOID="Event.{esc(e.unique_name)}" OrderNumber="{n}" Mandatory="No"/>\n'
        yield "\t</Protocol>\n"
        repeating_flag = _version_at_least(version, 14)
        for e in meta.events:
            repeating = "Yes" if repeating_flag and meta.is_repeating_event(e.unique_name) else "No"
            yield "\t<StudyEventDef" + _attrs((
                ("OID", f"Event.{e.unique_name}"), ("Name", _event_name(meta, e)), ("Type", "Common"),
                ("Repeating", repeating), ("redcap:EventName", e.event_name),
                ("redcap:CustomEventLabel", e.custom_label), ("redcap:UniqueEventName", e.unique_name),
                ("redcap:ArmNum", str(e.arm_num)), ("redcap:ArmName", e.arm_name),
                ("redcap:DayOffset", e.day_offset), ("redcap:OffsetMin", e.offset_min),
                ("redcap:OffsetMax", e.offset_max))) + ">\n"
            for n, form in enumerate(e.forms, 1):
                yield (f'\t\t<FormRef FormOID="Form.{esc(form)}" OrderNumber="{n}" Mandatory="No" '
                       f'redcap:FormName="{esc(form)}"/>\n')
            yield "\t</StudyEventDef>\n"
    by_form: dict[str, list[ItemGroup]] = {}
    for g in groups:
        by_form.setdefault(g.form, []).append(g)
    for form in meta.forms:
        yield (f'\t<FormDef OID="Form.{esc(form.name)}" Name="{esc(form.label)}" Repeating="No" '
               f'redcap:FormName="{esc(form.name)}">\n')
        for g in by_form.get(form.name, ()):
            yield f'\t\t<ItemGroupRef ItemGroupOID="{esc(g.oid)}" Mandatory="No"/>\n'
        yield "\t</FormDef>\n"
    for g in groups:
        yield f'\t<ItemGroupDef OID="{esc(g.oid)}" Name="{esc(g.name)}" Repeating="No">\n'
        for ref in g.items:
            yield (f'\t\t<ItemRef ItemOID="{esc(ref.item_oid)}" Mandatory="{"Yes" if ref.mandatory else "No"}" '
                   f'redcap:Variable="{esc(ref.variable)}"/>\n')
        yield "\t</ItemGroupDef>\n"
    for it in items:
        yield _item_def(it)
    for cl in code_lists(meta):
        yield _code_list(cl)
    yield "</MetaDataVersion>\n"


# -- ClinicalData -------------------------------------------------------------
class _Slot(NamedTuple):
    """One item a FormData may emit, precomputed per form."""

    oid: str
    section: str
    kind: str  # "rid" | "dag" | "sid" | "ts" | "value" | "checkbox" | "status" | "datetime" | "file"


class _ClinicalWriter:
    def __init__(self, meta: ProjectMetadata, options: ExportOptions, group_oids: set[str]):
        self.meta = meta
        self.options = options
        self.group_oids = group_oids
        self.rid = meta.record_id_field or (meta.fields[0].name if meta.fields else "")
        self.longitudinal = bool(meta.events)
        self.event_forms = meta.event_forms()
        self.event_index = {e: i for i, e in enumerate(self.event_forms)}
        self.form_index = {f.name: i for i, f in enumerate(meta.forms)}
        surveys = set(_surveys_on(meta, options))
        rid_field = meta.field_map.get(self.rid)
        rid_form = rid_field.form if rid_field else (meta.forms[0].name if meta.forms else "")
        rid_section = rid_field.section_header if rid_field else ""
        self.slots: dict[str, list[_Slot]] = {f.name: [] for f in meta.forms}
        if rid_form in self.slots:
            s = self.slots[rid_form]
            s.append(_Slot(self.rid, rid_section, "rid"))
            if options.export_dags:
                s.append(_Slot(DAG_FIELD, rid_section, "dag"))
            if surveys:
                s.append(_Slot(SURVEY_ID_FIELD, rid_section, "sid"))
        for form in self.slots:
            if form in surveys:
                self.slots[form].append(_Slot(f"{form}_timestamp", "", "ts"))
        for f in meta.fields:
            if f.name == self.rid or f.field_type == "descriptive" or f.form not in self.slots:
                continue
            if options.fields is not None and f.name not in options.fields:
                continue
            slots = self.slots[f.form]
            if f.field_type == "checkbox":
                slots.extend(_Slot(oid, f.section_header, "checkbox") for oid in f.export_names())
            elif f.field_type == "file":
                if options.export_files:
                    slots.append(_Slot(f.name, f.section_header, "file"))
            elif f.name == f"{f.form}_complete":
                slots.append(_Slot(f.name, f.section_header, "status"))
            elif f.field_type == "text" and f.validation.startswith("datetime"):
                slots.append(_Slot(f.name, f.section_header, "datetime"))
            else:
                slots.append(_Slot(f.name, f.section_header, "value"))

    # Row order of Records::getData: non-repeating rows in event order, then the
    # repeating ones grouped event -> instrument -> instance.
    def ordered_rows(self, record: Record) -> list[tuple[RecordRow, list[str], str, str]]:
        meta = self.meta
        base: dict[str, RecordRow] = {}
        repeating: list[RecordRow] = []
        for row in record.rows:
            if row.instance is None and not row.repeat_instrument and not meta.is_repeating_event(row.event):
                if row.event in base:  # two rows for one event: merge, as REDCap's flat data would
                    old = base[row.event]
                    row = RecordRow(row.event, "", None, {**old.values, **row.values}, {**old.files, **row.files})
                base[row.event] = row
            else:
                repeating.append(row)
        # No base row is invented for an event that holds only repeating instruments:
        # REDCap 8.1.10 writes none (etl-repeating-events), so no empty StudyEventData.
        last = len(self.event_index)
        out = []
        for row in sorted(base.values(), key=lambda r: self.event_index.get(r.event, last)):
            forms = [f for f in self.event_forms.get(row.event, ()) if not meta.is_repeating_form(row.event, f)]
            out.append((row, forms, "1", "1"))
        repeating.sort(key=lambda r: (self.event_index.get(r.event, last),
                                      self.form_index.get(r.repeat_instrument, -1), r.instance or 1))
        for row in repeating:
            instance = str(row.instance or 1)
            if meta.is_repeating_event(row.event):
                out.append((row, list(self.event_forms.get(row.event, ())), instance, "1"))
            else:
                out.append((row, [row.repeat_instrument], "1", instance))
        return out

    def subject(self, record: Record) -> str:
        meta = self.meta
        rid_attr = esc(meta.record_id_field)
        parts = [f'\t<SubjectData SubjectKey="{esc(record.record_id)}" redcap:RecordIdField="{rid_attr}">\n']
        open_event: tuple[str, str] | None = None
        for row, forms, event_key, form_key in self.ordered_rows(record):
            if self.longitudinal and open_event != (row.event, event_key):
                if open_event is not None:
                    parts.append("\t\t</StudyEventData>\n")
                e = esc(row.event)
                parts.append(f'\t\t<StudyEventData StudyEventOID="Event.{e}" StudyEventRepeatKey="{event_key}" '
                             f'redcap:UniqueEventName="{e}">\n')
                open_event = (row.event, event_key)
            for form in forms:
                self._form(parts, record, row, form, form_key)
        if open_event is not None:
            parts.append("\t\t</StudyEventData>\n")
        parts.append("\t</SubjectData>\n")
        return "".join(parts)

    def _form(self, parts: list[str], record: Record, row: RecordRow, form: str, form_key: str) -> None:
        # FormData sits three tabs deep with or without a StudyEventData around it.
        ind = "\t\t\t"
        values = row.values
        section: str | None = None
        opened = False
        for slot in self.slots.get(form, ()):
            kind = slot.kind
            file = None
            if kind == "rid":
                value = record.record_id
            elif kind == "dag":
                value = record.dag
            elif kind == "sid":
                value = record.survey_identifier
            elif kind == "file":
                file = row.files.get(slot.oid)
                if file is None:
                    continue
                value = None
            else:
                value = values.get(slot.oid, "")
                if not value:
                    # Records::getData fills these for every form of an existing row.
                    if kind in ("checkbox", "status"):
                        value = "0"
                    else:
                        continue
                elif kind == "datetime":
                    value = value.replace(" ", "T", 1)
            if file is None and not value:
                continue
            if not opened:
                parts.append(f'{ind}<FormData FormOID="Form.{esc(form)}" FormRepeatKey="{form_key}">\n')
                opened = True
            if section is None or slot.section != section:
                if section is not None:
                    parts.append(f"{ind}\t</ItemGroupData>\n")
                key = f"{form}.{slot.oid}"
                gid = esc(key) if key in self.group_oids else ""
                parts.append(f'{ind}\t<ItemGroupData ItemGroupOID="{gid}" ItemGroupRepeatKey="1">\n')
                section = slot.section
            if file is not None:
                content = base64.b64encode(file.content).decode("ascii")
                parts.append(f'{ind}\t\t<ItemDataBase64Binary ItemOID="{esc(slot.oid)}" '
                             f'redcap:DocName="{esc(file.doc_name)}" redcap:MimeType="{esc(file.mime_type)}">'
                             f"{cdata(content)}</ItemDataBase64Binary>\n")
            else:
                parts.append(f'{ind}\t\t<ItemData ItemOID="{esc(slot.oid)}" Value="{esc_value(value)}"/>\n')
        if opened:
            parts.append(f"{ind}\t</ItemGroupData>\n{ind}</FormData>\n")


# -- the document -------------------------------------------------------------
def as_exported(meta: ProjectMetadata, *, options: ExportOptions = ExportOptions(), now: str,
                version: str = DEFAULT_VERSION) -> ProjectMetadata:
    """``meta`` as the reader will see it once written: every derived part filled in.

    Builders of synthetic projects (the fixture generator) use this so that
    the model they hold equals what reading their own output gives back.
    """
    title = meta.title or meta.header.description
    stamp = now.replace(" ", "T")
    items = export_items(meta, options)
    repeating_flag = _version_at_least(version, 14)
    fields = []
    for f in meta.fields:
        f = with_odm_facts(f)
        if f.formatted_label is None and "<" in f.label and ">" in f.label:
            f = replace(f, label=plain_label(f.label), formatted_label=f.label)
        if f.field_type == "checkbox":
            f = replace(f, checkbox_choices=checkbox_choices_text(f))
        fields.append(f)
    pseudo = tuple(dict.fromkeys(it.oid for it in items if it.field is None))
    return replace(
        meta,
        header=replace(meta.header, description=title, as_of_datetime=stamp, creation_datetime=stamp,
                       source_system_version=version),
        study_oid=study_oid(title), title=title, protocol_name=title, metadata_version_name=title,
        study_description=f'This file contains the metadata, events, and data for REDCap project "{title}".',
        metadata_version_oid=metadata_version_oid(title, now),
        record_id_field=meta.record_id_field or (meta.fields[0].name if meta.fields else ""),
        events=tuple(replace(e, name=_event_name(meta, e),
                             repeating=repeating_flag and meta.is_repeating_event(e.unique_name))
                     for e in meta.events),
        fields=tuple(fields), item_groups=tuple(item_groups(meta, items)), code_lists=tuple(code_lists(meta)),
        pseudo_fields=pseudo,
    )


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def write_project(out: BinaryIO, meta: ProjectMetadata, records: Iterable[Record] = (), *,
                  options: ExportOptions = ExportOptions(), now: str | None = None,
                  version: str = DEFAULT_VERSION) -> None:
    """Write ``meta`` and ``records`` as REDCap's API ``project_xml`` export would.

    ``now`` is the server-local export time ``YYYY-MM-DD HH:MM:SS`` (default:
    the clock); ``version`` goes into SourceSystemVersion. Records are written
    in the order given, one ``write`` per record.
    """
    now = now or _now()
    stamp = now.replace(" ", "T")
    title = meta.title or meta.header.description
    soid = study_oid(title)
    mdv_oid = metadata_version_oid(title, now)
    items = export_items(meta, options)
    groups = item_groups(meta, items)
    head = [
        '<?xml version="1.0" encoding="UTF-8" ?>\n',
        f'<ODM {NS_DECL} ODMVersion="1.3.1" FileOID="000-00-0000" FileType="Snapshot" '
        f'Description="{esc(title)}" AsOfDateTime="{stamp}" CreationDateTime="{stamp}" '
        f'SourceSystem="REDCap" SourceSystemVersion="{esc(version)}">\n',
        f'<Study OID="{esc(soid)}">\n',
    ]
    head.extend(_global_variables(meta, title))
    head.extend(_metadata_version(meta, title, mdv_oid, items, groups, version))
    head.append("</Study>\n")
    if options.metadata_only:
        head.append("</ODM>")
        out.write("".join(head).encode("utf-8"))
        return
    head.append(f'<ClinicalData StudyOID="{esc(soid)}" MetaDataVersionOID="{esc(mdv_oid)}">\n')
    out.write("".join(head).encode("utf-8"))
    clinical = _ClinicalWriter(meta, options, {g.oid for g in groups})
    for record in records:
        out.write(clinical.subject(record).encode("utf-8"))
    out.write(b"</ClinicalData>\n</ODM>")


def project_xml(meta: ProjectMetadata, records: Iterable[Record] = (), **kw) -> bytes:
    """`write_project` into memory: for small projects and tests."""
    buf = BytesIO()
    write_project(buf, meta, records, **kw)
    return buf.getvalue()
