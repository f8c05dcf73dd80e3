"""Plain data the sandbox backend works with: one project's design, as loaded.

``Design`` is everything about a project except its records: settings,
arms/events, forms, fields (the harness's own ``Field`` model), repeating
set-up and DAGs. ``design_store`` loads it from SQLite; every operation of
the backend reads it. Nothing here touches SQLite or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from harness.odm.model import CLASSIC_EVENT, Field, Form, checkbox_code, parse_missing_codes

#: Survey pseudo-field suffix (``<form>_timestamp``).
TIMESTAMP = "_timestamp"

PURPOSES = {0: "Practice / Just for fun", 1: "Other", 2: "Research", 3: "Quality Improvement",
            4: "Operational Support"}


@dataclass(frozen=True)
class ProjectRow:
    """``redcap_projects``."""

    project_id: int
    title: str
    status: int
    creation_time: str
    production_time: str
    created_by: str
    purpose: int
    purpose_other: str
    project_note: str
    project_language: str
    repeatforms: int
    pk: str


@dataclass(frozen=True)
class EventInfo:
    event_id: int
    unique_name: str
    name: str
    arm_id: int
    arm_num: int
    arm_name: str
    day_offset: float = 0.0
    offset_min: float = 0.0
    offset_max: float = 0.0
    custom_label: str = ""
    forms: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArmInfo:
    arm_id: int
    num: int
    name: str


@dataclass(frozen=True)
class Dag:
    group_id: int
    name: str
    unique_name: str


@dataclass(frozen=True)
class Session:
    """Who is calling: the project a token opens, and that user's rights."""

    project_id: int
    username: str
    rights: dict = field(default_factory=dict)
    group_id: int | None = None

    def right(self, name: str) -> int:
        return int(self.rights.get(name, 0) or 0)


@dataclass(frozen=True)
class Design:
    """A project's design as REDCap's ``Project`` class sees it."""

    project: ProjectRow
    settings: dict[str, str]
    fields: tuple[Field, ...]
    forms: tuple[Form, ...]
    arms: tuple[ArmInfo, ...]
    events: tuple[EventInfo, ...]
    #: (event_id, form_name or None for a repeating event) -> custom label
    repeating: dict[tuple[int, str | None], str]
    dags: tuple[Dag, ...]
    surveys: tuple[str, ...] = ()

    # -- REDCap's derived flags --------------------------------------------------
    @property
    def pid(self) -> int:
        return self.project.project_id

    @property
    def pk(self) -> str:
        return self.fields[0].name if self.fields else self.project.pk

    @property
    def longitudinal(self) -> bool:
        """``$Proj->longitudinal``: the flag *and* more than one event."""
        return bool(self.project.repeatforms) and len(self.events) > 1

    @property
    def has_repeating(self) -> bool:
        return bool(self.repeating)

    @cached_property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @cached_property
    def form_map(self) -> dict[str, Form]:
        return {f.name: f for f in self.forms}

    @cached_property
    def form_fields(self) -> dict[str, tuple[Field, ...]]:
        out: dict[str, list[Field]] = {f.name: [] for f in self.forms}
        for f in self.fields:
            out.setdefault(f.form, []).append(f)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def event_by_unique(self) -> dict[str, EventInfo]:
        return {e.unique_name: e for e in self.events}

    @cached_property
    def event_by_id(self) -> dict[int, EventInfo]:
        return {e.event_id: e for e in self.events}

    @property
    def first_event(self) -> EventInfo:
        return self.events[0]

    def event_label(self, event: EventInfo) -> str:
        """The event's display name, with the arm when there are several."""
        if len({e.arm_num for e in self.events}) > 1:
            return f"{event.name} (Arm {event.arm_num}: {event.arm_name})"
        return event.name

    def unique_event(self, event: EventInfo) -> str:
        """The name written in data: classic projects always say ``event_1_arm_1``."""
        return event.unique_name if self.longitudinal else CLASSIC_EVENT

    def event_forms(self, event: EventInfo) -> tuple[str, ...]:
        if not self.longitudinal:
            return tuple(f.name for f in self.forms)
        return event.forms

    def is_repeating_event(self, event_id: int) -> bool:
        return (event_id, None) in self.repeating

    def is_repeating_form(self, event_id: int, form: str) -> bool:
        return (event_id, form) in self.repeating

    @cached_property
    def checkbox_columns(self) -> dict[str, tuple[Field, str]]:
        """``var___code`` -> (field, raw code), missing-data-code columns included."""
        out: dict[str, tuple[Field, str]] = {}
        missing = self.missing_codes
        for f in self.fields:
            if f.field_type == "checkbox":
                for c in f.choices:
                    out[f"{f.name}___{checkbox_code(c.code)}"] = (f, c.code)
                if "@NOMISSING" not in f.field_annotation.upper():
                    for c in missing:
                        out.setdefault(f"{f.name}___{checkbox_code(c.code)}", (f, c.code))
        return out

    @cached_property
    def missing_codes(self):
        return parse_missing_codes(self.settings.get("MissingDataCodes", ""))

    @cached_property
    def dag_by_unique(self) -> dict[str, Dag]:
        return {d.unique_name: d for d in self.dags}

    @cached_property
    def dag_by_id(self) -> dict[int, Dag]:
        return {d.group_id: d for d in self.dags}

    def data_fields(self) -> tuple[Field, ...]:
        """Fields that hold data (descriptive fields never do)."""
        return tuple(f for f in self.fields if f.field_type != "descriptive")

    def row_forms(self, event: EventInfo, repeat_form: str) -> tuple[str, ...]:
        """Forms whose fields belong in one (event, repeat instrument) row."""
        forms = self.event_forms(event)
        if self.is_repeating_event(event.event_id):
            return forms
        if repeat_form:
            return (repeat_form,)
        return tuple(f for f in forms if not self.is_repeating_form(event.event_id, f))

    def row_key(self, event_id: int, form: str, instance: int | None) -> tuple[int, str, int | None]:
        """Where a stored value of ``form`` in (event, instance) shows up: (event, instrument, instance)."""
        if self.is_repeating_event(event_id):
            return (event_id, "", instance or 1)
        if self.is_repeating_form(event_id, form):
            return (event_id, form, instance or 1)
        return (event_id, "", None)
