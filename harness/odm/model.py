"""Plain data for one REDCap project, as REDCap itself thinks of it.

The reader turns project XML into these objects the way REDCap's importer
does (fields keyed by variable, checkboxes collapsed, choices parsed); the
writer turns them back into project XML the way REDCap's exporter does. Every
later stage (validation, the sandbox, the comparator, reports) works on this
model and never on lxml elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

#: The event REDCap uses for every row of a classic (non-longitudinal) project.
CLASSIC_EVENT = "event_1_arm_1"

#: ``redcap:FieldType`` values, i.e. REDCap's back-end field types.
FIELD_TYPES = (
    "text", "textarea", "select", "radio", "checkbox", "yesno", "truefalse",
    "calc", "file", "slider", "descriptive", "sql",
)
CHOICE_TYPES = frozenset({"select", "radio", "checkbox", "sql"})
BOOLEAN_TYPES = frozenset({"yesno", "truefalse"})

DAG_FIELD = "redcap_data_access_group"
SURVEY_ID_FIELD = "redcap_survey_identifier"


@dataclass(frozen=True)
class OdmHeader:
    """Attributes of the ``<ODM>`` root."""

    odm_version: str = "1.3.1"
    file_oid: str = "000-00-0000"
    file_type: str = "Snapshot"
    description: str = ""
    as_of_datetime: str = ""
    creation_datetime: str = ""
    source_system: str = "REDCap"
    source_system_version: str = ""


@dataclass(frozen=True)
class Choice:
    code: str
    label: str
    #: The HTML label (``redcap:FormattedTranslatedText``) when it has markup.
    formatted_label: str | None = None


@dataclass(frozen=True)
class Attachment:
    """An embedded document: descriptive-field image, logo, alert attachment."""

    doc_name: str
    mime_type: str
    #: Base64 text exactly as it stood in the XML (whitespace removed).
    content_b64: str


@dataclass(frozen=True)
class Field:
    """One REDCap variable, as a row of the data dictionary plus its ODM facts.

    Checkbox fields are one ``Field`` here even though ODM spells them as one
    ItemDef per option (``var___code``).
    """

    name: str
    form: str
    field_type: str
    label: str = ""
    formatted_label: str | None = None
    validation: str = ""
    range_min: str = ""
    range_max: str = ""
    choices: tuple[Choice, ...] = ()
    #: ``redcap:CheckboxChoices`` verbatim (checkboxes only); import reads this, not the items.
    checkbox_choices: str | None = None
    required: bool = False
    identifier: bool = False
    field_note: str = ""
    section_header: str = ""
    calculation: str = ""
    branching_logic: str = ""
    custom_alignment: str = ""
    question_number: str = ""
    matrix_group: str = ""
    matrix_ranking: bool = False
    field_annotation: str = ""
    slider_labels: str | None = None
    stop_actions: str = ""
    ontology: str = ""
    inline_image: str = ""
    video_url: str = ""
    video_display_inline: str = ""
    attachment: Attachment | None = None
    # What the ItemDef said; derived by REDCap from the above, kept to diff.
    data_type: str = "text"
    length: str = "999"
    significant_digits: str = ""
    #: ``redcap:*`` attributes this version of the harness does not know, in order.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def is_form_status(self) -> bool:
        return self.name == f"{self.form}_complete"

    def export_names(self) -> tuple[str, ...]:
        """The ItemOIDs REDCap uses for this field in ClinicalData."""
        if self.field_type == "checkbox":
            return tuple(f"{self.name}___{checkbox_code(c.code)}" for c in self.choices)
        if self.field_type == "descriptive":
            return ()
        return (self.name,)


@dataclass(frozen=True)
class Form:
    name: str
    label: str


@dataclass(frozen=True)
class ItemRef:
    item_oid: str
    mandatory: bool
    variable: str


@dataclass(frozen=True)
class ItemGroup:
    oid: str
    name: str
    form: str
    items: tuple[ItemRef, ...]


@dataclass(frozen=True)
class CodeList:
    oid: str
    name: str
    data_type: str
    variable: str
    items: tuple[Choice, ...]
    checkbox_choices: str | None = None


@dataclass(frozen=True)
class Event:
    unique_name: str
    event_name: str
    arm_num: int
    arm_name: str
    #: The ``Name`` attribute (event name plus " (Arm n: name)" in multi-arm projects).
    name: str = ""
    custom_label: str = ""
    day_offset: str = ""
    offset_min: str = ""
    offset_max: str = ""
    #: ``Repeating="Yes"``: written for repeating events from REDCap 14.0 on.
    repeating: bool = False
    forms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arm:
    num: int
    name: str


@dataclass(frozen=True)
class RepeatingForm:
    event: str
    form: str
    custom_label: str = ""


@dataclass(frozen=True)
class ExtensionRow:
    """One row of a ``redcap:*Group`` (one DB row in REDCap), attributes in order."""

    attrs: tuple[tuple[str, str], ...]
    #: Character content (base64 of an ``OdmAttachment``), if any.
    text: str | None = None

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.attrs:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class ExtensionGroup:
    """A ``redcap:FooBarGroup`` of ``redcap:FooBar`` rows (REDCap table ``redcap_foo_bar``)."""

    tag: str
    row_tag: str
    rows: tuple[ExtensionRow, ...]


@dataclass(frozen=True)
class ProjectMetadata:
    """Everything in ``<Study>``: settings, arms/events, forms, fields, code lists."""

    header: OdmHeader = OdmHeader()
    study_oid: str = ""
    title: str = ""
    study_description: str = ""
    protocol_name: str = ""
    #: Single-value ``redcap:*`` settings of GlobalVariables, local name -> text, in order.
    settings: dict[str, str] = field(default_factory=dict)
    #: Attributes of the few settings that carry them (``ProtectedEmailModeLogo``).
    setting_attributes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    repeating_events: tuple[str, ...] = ()
    repeating_forms: tuple[RepeatingForm, ...] = ()
    groups: tuple[ExtensionGroup, ...] = ()
    metadata_version_oid: str = ""
    metadata_version_name: str = ""
    record_id_field: str = ""
    #: Empty for a classic project (the file has no StudyEventDef).
    events: tuple[Event, ...] = ()
    forms: tuple[Form, ...] = ()
    fields: tuple[Field, ...] = ()
    item_groups: tuple[ItemGroup, ...] = ()
    code_lists: tuple[CodeList, ...] = ()
    #: Export pseudo-fields present (DAG, survey identifier, ``<form>_timestamp``).
    pseudo_fields: tuple[str, ...] = ()

    # -- derived views -------------------------------------------------------
    @property
    def longitudinal(self) -> bool:
        """As REDCap decides on import: more than one event."""
        return len(self.events) > 1

    @cached_property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @cached_property
    def form_map(self) -> dict[str, Form]:
        return {f.name: f for f in self.forms}

    @cached_property
    def event_map(self) -> dict[str, Event]:
        return {e.unique_name: e for e in self.events}

    @cached_property
    def arms(self) -> tuple[Arm, ...]:
        seen: dict[int, Arm] = {}
        for e in self.events:
            seen.setdefault(e.arm_num, Arm(e.arm_num, e.arm_name))
        return tuple(sorted(seen.values(), key=lambda a: a.num))

    @cached_property
    def item_oids(self) -> dict[str, Field]:
        """Every ClinicalData ItemOID the metadata defines -> its field."""
        out: dict[str, Field] = {}
        for f in self.fields:
            for oid in f.export_names():
                out[oid] = f
        return out

    def fields_of(self, form: str) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.form == form)

    def event_forms(self) -> dict[str, tuple[str, ...]]:
        """Event -> designated forms; a classic project has every form in its one event."""
        if not self.events:
            return {CLASSIC_EVENT: tuple(f.name for f in self.forms)}
        return {e.unique_name: e.forms for e in self.events}

    @cached_property
    def _repeating_sets(self) -> tuple[frozenset, frozenset, frozenset]:
        # Looked up for every ItemData of a large archive: sets, not scans.
        return (
            frozenset((r.event, r.form) for r in self.repeating_forms),
            frozenset(r.form for r in self.repeating_forms),
            frozenset(self.repeating_events),
        )

    def is_repeating_form(self, event: str, form: str) -> bool:
        by_event, forms, _ = self._repeating_sets
        # A classic project's set-up may name any event (REDCap remaps it to the first).
        return (event, form) in by_event or (not self.events and form in forms)

    def is_repeating_event(self, event: str) -> bool:
        return event in self._repeating_sets[2]

    @property
    def has_repeating(self) -> bool:
        return bool(self.repeating_events or self.repeating_forms)

    def group(self, tag: str) -> ExtensionGroup | None:
        for g in self.groups:
            if g.tag == tag:
                return g
        return None

    @cached_property
    def dags(self) -> tuple[tuple[str, str], ...]:
        """(label, unique group name) for each Data Access Group."""
        from harness.odm.names import unique_dag_names

        g = self.group("DataAccessGroupsGroup")
        labels = [r.get("group_name") for r in g.rows] if g else []
        return tuple(zip(labels, unique_dag_names(labels)))

    @cached_property
    def missing_data_codes(self) -> tuple[Choice, ...]:
        return parse_missing_codes(self.settings.get("MissingDataCodes", ""))

    @property
    def surveys(self) -> tuple[str, ...]:
        """Forms enabled as surveys (from ``SurveysGroup``)."""
        g = self.group("SurveysGroup")
        return tuple(r.get("form_name") for r in g.rows) if g else ()


class FileValue(NamedTuple):
    """An uploaded file (``ItemDataBase64Binary``)."""

    doc_name: str
    mime_type: str
    content: bytes


class Cell(NamedTuple):
    """One ItemData as it stood in ClinicalData, before REDCap's row logic.

    A tuple rather than a dataclass: a 1 GB archive holds tens of millions.
    """

    event: str  # unique event name; "" in a classic layout
    event_key: str  # StudyEventRepeatKey ("" when absent)
    form: str  # form name (FormOID without "Form.")
    form_key: str  # FormRepeatKey
    group_oid: str  # ItemGroupOID, may be ""
    item_oid: str
    value: str | FileValue
    line: int


@dataclass(frozen=True)
class Subject:
    """One ``<SubjectData>`` exactly as read (cells in document order)."""

    key: str
    line: int
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class RecordRow:
    """One row of REDCap's flat data: (event, repeat instrument, instance)."""

    event: str
    repeat_instrument: str
    instance: int | None
    values: dict[str, str]
    files: dict[str, FileValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    record_id: str
    rows: tuple[RecordRow, ...]
    dag: str = ""
    survey_identifier: str = ""

    def items(self):
        """Flat (event, instrument, instance, item) -> value, REDCap's tuple model."""
        for row in self.rows:
            for item, value in row.values.items():
                yield (row.event, row.repeat_instrument, row.instance, item), value


# -- small pure helpers used by reader, writer and sandbox alike ---------------
def checkbox_code(code: str) -> str:
    """REDCap's ``getExtendedCheckboxCodeFormatted``: the ``var___code`` suffix."""
    out = code.lower().replace("-", "_").replace(".", "_")
    return "".join(ch for ch in out if ch.isascii() and (ch.isalnum() or ch == "_"))


def parse_choices(text: str) -> tuple[Choice, ...]:
    """Parse ``"1, One | 2, Two"`` (REDCap's choice syntax)."""
    out = []
    for part in text.replace("\n", "|").split("|"):
        if not part.strip():
            continue
        code, sep, label = part.partition(",")
        out.append(Choice(code.strip(), label.strip() if sep else code.strip()))
    return tuple(out)


def parse_missing_codes(text: str) -> tuple[Choice, ...]:
    return parse_choices(text.replace("\r", "\n"))
