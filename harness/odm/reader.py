"""Read REDCap project XML into the model, as REDCap's importer understands it.

    with open_xml(path) as fh:
        doc = OdmDocument(fh)
        meta = doc.metadata          # ProjectMetadata (reads up to </Study>)
        for record in doc.records(): # one Record per SubjectData, streamed
            ...

Everything streams: only the Study and one SubjectData are in memory at a time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import BinaryIO

from lxml import etree

from harness.errors import OdmError
from harness.odm.model import (
    CLASSIC_EVENT,
    DAG_FIELD,
    SURVEY_ID_FIELD,
    Attachment,
    Cell,
    Choice,
    CodeList,
    Event,
    ExtensionGroup,
    ExtensionRow,
    Field,
    FileValue,
    Form,
    ItemGroup,
    ItemRef,
    OdmHeader,
    ProjectMetadata,
    Record,
    RecordRow,
    RepeatingForm,
    Subject,
    parse_choices,
)
from harness.odm.stream import O, R, Block, iter_blocks

#: ItemDef ``redcap:*`` attributes the model names; anything else lands in ``Field.extra``.
KNOWN_ITEM_ATTRS = {
    "Variable": "name", "FieldType": "field_type", "TextValidationType": "validation",
    "SliderLabels": "slider_labels", "FieldNote": "field_note", "SectionHeader": "section_header",
    "Calculation": "calculation", "Identifier": "identifier", "RequiredField": "required",
    "StopActions": "stop_actions", "MatrixRanking": "matrix_ranking", "OntologySearch": "ontology",
    "BranchingLogic": "branching_logic", "CustomAlignment": "custom_alignment",
    "QuestionNumber": "question_number", "MatrixGroupName": "matrix_group",
    "FieldAnnotation": "field_annotation", "InlineImage": "inline_image", "VideoUrl": "video_url",
    "VideoDisplayInline": "video_display_inline",
}
_FLAGS = {"identifier", "required", "matrix_ranking"}

ITEM_DATA = O + "ItemData"
ITEM_B64 = O + "ItemDataBase64Binary"
_TYPED_ITEMS = {O + t for t in (
    "ItemDataAny", "ItemDataString", "ItemDataInteger", "ItemDataFloat", "ItemDataDate",
    "ItemDataTime", "ItemDataDatetime", "ItemDataBoolean", "ItemDataDouble", "ItemDataHexBinary",
    "ItemDataBase64Float", "ItemDataHexFloat", "ItemDataPartialDate", "ItemDataPartialTime",
    "ItemDataPartialDatetime", "ItemDataDurationDatetime", "ItemDataIntervalDatetime",
    "ItemDataIncompleteDatetime", "ItemDataIncompleteDate", "ItemDataIncompleteTime", "ItemDataURI",
)}


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def redcap_attrs(el: etree._Element) -> list[tuple[str, str]]:
    return [(local(k), v) for k, v in el.attrib.items() if k.startswith(R)]


def _text(el: etree._Element | None) -> str:
    return "" if el is None else "".join(el.itertext())


def _translated(el: etree._Element | None) -> tuple[str, str | None]:
    """(TranslatedText, FormattedTranslatedText) below a Question or Decode."""
    if el is None:
        return "", None
    plain = el.find(O + "TranslatedText")
    rich = el.find(R + "FormattedTranslatedText")
    return _text(plain), (_text(rich) if rich is not None else None)


# -- header and Study ----------------------------------------------------------
def read_header(el: etree._Element) -> OdmHeader:
    g = el.get
    return OdmHeader(
        odm_version=g("ODMVersion", ""), file_oid=g("FileOID", ""), file_type=g("FileType", ""),
        description=g("Description", ""), as_of_datetime=g("AsOfDateTime", ""),
        creation_datetime=g("CreationDateTime", ""), source_system=g("SourceSystem", ""),
        source_system_version=g("SourceSystemVersion", ""),
    )


def _read_global_variables(gv: etree._Element, out: dict) -> None:
    settings: dict[str, str] = {}
    setting_attrs: dict[str, tuple] = {}
    groups: list[ExtensionGroup] = []
    rep_events: list[str] = []
    rep_forms: list[RepeatingForm] = []
    for child in gv:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag
        if tag == O + "StudyName":
            out["title"] = _text(child)
        elif tag == O + "StudyDescription":
            out["study_description"] = _text(child)
        elif tag == O + "ProtocolName":
            out["protocol_name"] = _text(child)
        elif tag == R + "RepeatingInstrumentsAndEvents":
            for el in child.iter(R + "RepeatingEvent", R + "RepeatingInstrument"):
                event = el.get(R + "UniqueEventName", "")
                if el.tag == R + "RepeatingEvent":
                    rep_events.append(event)
                else:
                    rep_forms.append(RepeatingForm(event, el.get(R + "RepeatInstrument", ""),
                                                   el.get(R + "CustomLabel", "")))
        elif tag.startswith(R) and (len(child) or local(tag).endswith("Group")):
            rows = tuple(
                ExtensionRow(tuple((local(k), v) for k, v in row.attrib.items()),
                             (row.text or "").strip() or None)
                for row in child if isinstance(row.tag, str)
            )
            row_tag = local(child[0].tag) if len(child) else local(tag).removesuffix("Group")
            groups.append(ExtensionGroup(local(tag), row_tag, rows))
        elif tag.startswith(R):
            settings[local(tag)] = _text(child)
            if child.attrib:
                setting_attrs[local(tag)] = tuple((local(k), v) for k, v in child.attrib.items())
    out.update(settings=settings, setting_attributes=setting_attrs, groups=tuple(groups),
               repeating_events=tuple(rep_events), repeating_forms=tuple(rep_forms))


def _read_event(el: etree._Element, forms_by_oid: dict[str, str]) -> Event:
    g = el.get
    unique = g(R + "UniqueEventName") or g("OID", "").removeprefix("Event.")
    arm = g(R + "ArmNum", "1")
    return Event(
        unique_name=unique,
        event_name=g(R + "EventName", g("Name", "")),
        arm_num=int(arm) if arm.strip().isdigit() else 1,
        arm_name=g(R + "ArmName", ""),
        name=g("Name", ""),
        custom_label=g(R + "CustomEventLabel", ""),
        day_offset=g(R + "DayOffset", ""),
        offset_min=g(R + "OffsetMin", ""),
        offset_max=g(R + "OffsetMax", ""),
        repeating=g("Repeating", "No") == "Yes",
        forms=tuple(
            ref.get(R + "FormName") or forms_by_oid.get(ref.get("FormOID", ""), ref.get("FormOID", "").removeprefix("Form."))
            for ref in el.iter(O + "FormRef")
        ),
    )


def _read_code_list(el: etree._Element) -> CodeList:
    items = []
    for item in el.iter(O + "CodeListItem", O + "EnumeratedItem"):
        label, rich = _translated(item.find(O + "Decode"))
        items.append(Choice(item.get("CodedValue", ""), label, rich))
    return CodeList(
        oid=el.get("OID", ""), name=el.get("Name", ""), data_type=el.get("DataType", ""),
        variable=el.get(R + "Variable", el.get("Name", "")), items=tuple(items),
        checkbox_choices=el.get(R + "CheckboxChoices"),
    )


def _field_from_itemdef(item: etree._Element, variable: str, form: str, required_ref: bool,
                        code_lists: dict[str, CodeList]) -> Field:
    kw: dict = {"name": variable, "form": form}
    extra = []
    for key, value in redcap_attrs(item):
        attr = KNOWN_ITEM_ATTRS.get(key)
        if attr is None:
            extra.append((key, value))
        elif attr in _FLAGS:
            kw[attr] = value.strip().lower() in ("y", "1", "yes")
        elif attr != "name":
            kw[attr] = value
    kw.setdefault("field_type", "text")
    if required_ref:
        kw["required"] = True
    kw["label"], kw["formatted_label"] = _translated(item.find(O + "Question"))
    kw["data_type"] = item.get("DataType", "")
    kw["length"] = item.get("Length", "")
    kw["significant_digits"] = item.get("SignificantDigits", "")
    for rc in item.iter(O + "RangeCheck"):
        value = _text(rc.find(O + "CheckValue"))
        if rc.get("Comparator") in ("GE", "GT"):
            kw["range_min"] = value
        elif rc.get("Comparator") in ("LE", "LT"):
            kw["range_max"] = value
    att = item.find(R + "Attachment")
    if att is not None:
        kw["attachment"] = Attachment(att.get("DocName", ""), att.get("MimeType", ""),
                                      "".join((att.text or "").split()))
    ref = item.find(O + "CodeListRef")
    if ref is not None and ref.get("CodeListOID") in code_lists:
        cl = code_lists[ref.get("CodeListOID")]
        if kw["field_type"] == "checkbox" and cl.checkbox_choices is not None:
            kw["checkbox_choices"] = cl.checkbox_choices
            kw["choices"] = parse_choices(cl.checkbox_choices)
        elif kw["field_type"] not in ("yesno", "truefalse"):
            kw["choices"] = cl.items
    kw["extra"] = tuple(extra)
    return Field(**kw)


def read_study(study: etree._Element, header: OdmHeader) -> ProjectMetadata:
    out: dict = {"header": header, "study_oid": study.get("OID", "")}
    gv = study.find(O + "GlobalVariables")
    if gv is not None:
        _read_global_variables(gv, out)
    mdv = study.find(O + "MetaDataVersion")
    if mdv is None:
        return ProjectMetadata(**out)
    out["metadata_version_oid"] = mdv.get("OID", "")
    out["metadata_version_name"] = mdv.get("Name", "")
    out["record_id_field"] = mdv.get(R + "RecordIdField", "")

    forms: list[Form] = []
    forms_by_oid: dict[str, str] = {}
    group_form: dict[str, str] = {}
    for fd in mdv.iter(O + "FormDef"):
        name = fd.get(R + "FormName") or fd.get("OID", "").removeprefix("Form.")
        forms.append(Form(name, fd.get("Name", "")))
        forms_by_oid[fd.get("OID", "")] = name
        for ref in fd.iter(O + "ItemGroupRef"):
            group_form.setdefault(ref.get("ItemGroupOID", ""), name)

    order = {ref.get("StudyEventOID"): i for i, ref in enumerate(mdv.iter(O + "StudyEventRef"))}
    defs = list(mdv.iter(O + "StudyEventDef"))
    defs.sort(key=lambda d: order.get(d.get("OID"), len(order)))
    out["events"] = tuple(_read_event(d, forms_by_oid) for d in defs)
    out["forms"] = tuple(forms)

    code_lists = {cl.oid: cl for cl in map(_read_code_list, mdv.iter(O + "CodeList"))}
    out["code_lists"] = tuple(code_lists.values())
    item_defs: dict[str, etree._Element] = {}
    for item in mdv.iter(O + "ItemDef"):
        item_defs.setdefault(item.get("OID", ""), item)  # duplicates happen (survey timestamps)

    groups: list[ItemGroup] = []
    fields: dict[str, Field] = {}
    pseudo: list[str] = []
    for ig in mdv.iter(O + "ItemGroupDef"):
        oid = ig.get("OID", "")
        form = group_form.get(oid) or oid.partition(".")[0]
        refs = []
        for ref in ig.iter(O + "ItemRef"):
            item_oid = ref.get("ItemOID", "")
            variable = ref.get(R + "Variable") or item_oid
            mandatory = ref.get("Mandatory", "No") == "Yes"
            refs.append(ItemRef(item_oid, mandatory, variable))
            item = item_defs.get(item_oid)
            if item is None or variable in fields:
                continue
            if item.get(R + "FieldType") is None:
                if item_oid not in pseudo:
                    pseudo.append(item_oid)
                continue
            fields[variable] = _field_from_itemdef(item, variable, form, mandatory, code_lists)
        groups.append(ItemGroup(oid, ig.get("Name", ""), form, tuple(refs)))
    out["item_groups"] = tuple(groups)
    out["fields"] = tuple(fields.values())
    out["pseudo_fields"] = tuple(pseudo)
    return ProjectMetadata(**out)


# -- ClinicalData -------------------------------------------------------------
def _decode_file(el: etree._Element, line: int) -> FileValue:
    text = "".join((el.text or "").split())
    try:
        content = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise OdmError(
            f"line {line}: the embedded file of {el.get('ItemOID')!r} is not valid base64; "
            "the archive is damaged"
        ) from None
    return FileValue(el.get(R + "DocName", ""), el.get(R + "MimeType", ""), content)


_GROUP_DATA = O + "ItemGroupData"
_new_cell = tuple.__new__  # skips namedtuple's Python-level __new__: millions of calls


def _form_cells(fd, event, event_key, cells) -> None:
    form = fd.get("FormOID", "").removeprefix("Form.")
    form_key = fd.get("FormRepeatKey", "")
    append = cells.append
    for ig in fd:
        if ig.tag != _GROUP_DATA:
            continue
        group = ig.get("ItemGroupOID", "")
        for item in ig:
            tag = item.tag
            if tag == ITEM_DATA:
                value = item.get("Value")
                if value is None:
                    value = item.text or ""
            elif tag == ITEM_B64:
                value = _decode_file(item, item.sourceline)
            elif tag in _TYPED_ITEMS:
                value = item.get("Value")
                if value is None:
                    value = item.text or ""
            else:
                continue
            append(_new_cell(Cell, (event, event_key, form, form_key, group, item.get("ItemOID", ""), value,
                                    item.sourceline or 0)))


def read_subject(el: etree._Element) -> Subject:
    cells: list[Cell] = []
    for child in el:
        if child.tag == O + "StudyEventData":
            event = child.get(R + "UniqueEventName") or child.get("StudyEventOID", "").removeprefix("Event.")
            key = child.get("StudyEventRepeatKey", "")
            for fd in child:
                if fd.tag == O + "FormData":
                    _form_cells(fd, event, key, cells)
        elif child.tag == O + "FormData":
            _form_cells(child, "", "", cells)
    return Subject(el.get("SubjectKey", ""), el.sourceline or 0, tuple(cells))


def _instance(key: str) -> int:
    return int(key) if key.isdigit() else 1


def assemble(subject: Subject, meta: ProjectMetadata) -> Record:
    """REDCap's view of one SubjectData: rows keyed (event, instrument, instance), merged."""
    rows: dict[tuple, RecordRow] = {}
    dag = survey_id = ""
    classic = not meta.events
    for c in subject.cells:
        event = c.event or (CLASSIC_EVENT if classic else "")
        if c.item_oid == DAG_FIELD:
            dag = c.value if isinstance(c.value, str) else ""
            continue
        if c.item_oid == SURVEY_ID_FIELD:
            survey_id = c.value if isinstance(c.value, str) else ""
            continue
        if meta.is_repeating_event(event):
            key = (event, "", _instance(c.event_key))
        elif meta.is_repeating_form(event, c.form):
            key = (event, c.form, _instance(c.form_key))
        else:
            key = (event, "", None)
        row = rows.get(key)
        if row is None:
            row = rows[key] = RecordRow(key[0], key[1], key[2], {}, {})
        if isinstance(c.value, str):
            row.values[c.item_oid] = c.value
        else:
            row.files[c.item_oid] = c.value
    return Record(subject.key, tuple(rows.values()), dag, survey_id)


class OdmDocument:
    """A REDCap project XML document read in one forward pass.

    ``metadata`` must be read before ``records()``; ``records()`` can be
    iterated once. ``subjects()`` gives the raw cells for semantic checks.
    """

    def __init__(self, stream: BinaryIO, *, name: str = "document", on_block=None, prepass: bool = True):
        self.name = name
        self._blocks = iter_blocks(stream, name=name, prepass=prepass)
        self._on_block = on_block
        self.header = OdmHeader()
        self._metadata: ProjectMetadata | None = None
        self._pending: Block | None = None
        self.has_clinical_data = False
        self.subject_count = 0
        self._advance_to_metadata()

    def _next(self) -> Block | None:
        block = next(self._blocks, None)
        if block is not None and self._on_block is not None:
            self._on_block(block)
        return block

    def _advance_to_metadata(self) -> None:
        while (block := self._next()) is not None:
            if block.kind == "odm":
                self.header = read_header(block.element)
            elif block.kind == "study":
                self._metadata = read_study(block.element, self.header)
                return
            elif block.kind in ("clinical", "subject"):
                self.has_clinical_data = True
                self._pending = block
                return

    @property
    def metadata(self) -> ProjectMetadata:
        if self._metadata is None:
            self._metadata = ProjectMetadata(header=self.header)
        return self._metadata

    @property
    def has_metadata(self) -> bool:
        return self._metadata is not None and bool(self._metadata.record_id_field)

    def _subject_blocks(self) -> Iterator[Block]:
        block = self._pending
        self._pending = None
        while True:
            if block is None:
                block = self._next()
                if block is None:
                    return
            if block.kind == "clinical":
                self.has_clinical_data = True
            elif block.kind == "subject":
                self.has_clinical_data = True
                self.subject_count += 1
                yield block
            block = None

    def subjects(self) -> Iterator[Subject]:
        for block in self._subject_blocks():
            yield read_subject(block.element)

    def records(self) -> Iterator[Record]:
        meta = self.metadata
        for subject in self.subjects():
            yield assemble(subject, meta)

    def drain(self) -> None:
        """Read to the end (callbacks still see every block) without building subjects."""
        for _ in self._subject_blocks():
            pass


def read_metadata(stream: BinaryIO, name: str = "document") -> ProjectMetadata:
    """Just the metadata; stops reading after ``</Study>``."""
    return OdmDocument(stream, name=name).metadata
