"""``content=project_xml``: the project as the model REDCap's export is made from.

``build_metadata`` turns a ``Design`` into the ``ProjectMetadata`` that
``harness.odm.writer`` writes as REDCap 15.7.6 would (settings in its order,
vendor groups with fresh attachment IDs, events only when truly
longitudinal); the writer derives item groups, code lists and DataTypes
itself. ``iter_odm_records`` streams the records as ``Record`` objects with
stored values only (the writer fills checkbox and form-status defaults and
orders the rows).
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from dataclasses import replace

from harness.odm import names
from harness.odm.writer import ExportOptions
from harness.odm.model import (
    DAG_FIELD, SURVEY_ID_FIELD, Event, FileValue, OdmHeader, ProjectMetadata, Record, RecordRow, RepeatingForm,
    checkbox_code,
)
from harness.sandbox import data_store
from harness.sandbox.design import TIMESTAMP, Design
from harness.sandbox.design_store import load_doc
from harness.sandbox.rows import record_rows
from harness.sandbox.vendor import export_groups

#: The project_xml flags are the writer's own options; the sandbox only decides which apply.
Flags = ExportOptions


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def effective(design: Design, flags: Flags) -> Flags:
    """The flags REDCap actually applies: DAG and survey columns only when the project has them."""
    return replace(flags, export_survey_fields=survey_fields_on(design, flags), export_dags=dags_on(design, flags))


def survey_fields_on(design: Design, flags: Flags) -> bool:
    return (flags.export_survey_fields and not flags.metadata_only and bool(design.surveys)
            and design.settings.get("SurveysEnabled") == "1")


def dags_on(design: Design, flags: Flags) -> bool:
    return flags.export_dags and not flags.metadata_only and bool(design.dags)


def build_metadata(conn: sqlite3.Connection, design: Design, flags: Flags, *, now: str,
                   version: str) -> ProjectMetadata:
    p = design.project
    title = p.title
    stamp = now.replace(" ", "T")
    settings = dict(design.settings)
    settings["Purpose"] = str(p.purpose)
    settings["PurposeOther"] = p.purpose_other
    settings["ProjectNotes"] = p.project_note
    setting_attributes = {}
    logo = conn.execute("SELECT doc_id FROM redcap_project_settings WHERE project_id = ? AND name = ?",
                        (design.pid, "ProtectedEmailModeLogo")).fetchone()
    if logo and logo[0]:
        doc = load_doc(conn, logo[0])
        if doc:
            settings["ProtectedEmailModeLogo"] = base64.b64encode(doc[2]).decode("ascii")
            setting_attributes["ProtectedEmailModeLogo"] = (("DocName", doc[0]), ("MimeType", doc[1]))
    repeating_events = tuple(design.unique_event(e) for e in design.events if design.is_repeating_event(e.event_id))
    repeating_forms = tuple(
        RepeatingForm(design.unique_event(e), f.name, design.repeating[(e.event_id, f.name)])
        for e in design.events for f in design.forms if design.is_repeating_form(e.event_id, f.name))
    events: tuple[Event, ...] = ()
    if design.longitudinal:
        events = tuple(
            Event(unique_name=e.unique_name, event_name=e.name, arm_num=e.arm_num, arm_name=e.arm_name,
                  name=design.event_label(e), custom_label=e.custom_label, day_offset=_num(e.day_offset),
                  offset_min=_num(e.offset_min), offset_max=_num(e.offset_max),
                  repeating=design.is_repeating_event(e.event_id), forms=e.forms)
            for e in design.events)
    pseudo: list[str] = []
    if dags_on(design, flags):
        pseudo.append(DAG_FIELD)
    if survey_fields_on(design, flags):
        pseudo.append(SURVEY_ID_FIELD)
        pseudo.extend(f"{f.name}{TIMESTAMP}" for f in design.forms if f.name in design.surveys)
    return ProjectMetadata(
        header=OdmHeader(description=title, as_of_datetime=stamp, creation_datetime=stamp,
                         source_system_version=version),
        study_oid=names.study_oid(title), title=title,
        study_description=f'This file contains the metadata, events, and data for REDCap project "{title}".',
        protocol_name=title, settings=settings, setting_attributes=setting_attributes,
        repeating_events=repeating_events, repeating_forms=repeating_forms,
        groups=export_groups(conn, design.pid, [d.name for d in design.dags]),
        metadata_version_oid=names.metadata_version_oid(title, now), metadata_version_name=title,
        record_id_field=design.pk, events=events, forms=design.forms, fields=design.fields,
        pseudo_fields=tuple(pseudo),
    )


def odm_record(conn: sqlite3.Connection, design: Design, stored: data_store.StoredRecord, rows, flags: Flags,
               fields: set[str] | None) -> Record | None:
    """One record as the reader would assemble it from REDCap's export."""
    pk = design.pk
    pk_form = design.fields[0].form if design.fields else ""
    out_rows = []
    for row in rows:
        forms = set(design.row_forms(row.event, row.repeat_form))
        values: dict[str, str] = {}
        files: dict[str, FileValue] = {}
        for f in design.fields:
            if f.name not in row.values or f.form not in forms and f.name != pk:
                continue
            if fields is not None and f.name not in fields and f.name != pk:
                continue
            value = row.values[f.name]
            if f.name == pk:
                if pk_form in forms:
                    values[pk] = stored.name
            elif f.field_type == "checkbox":
                for code in value:
                    values[f"{f.name}___{checkbox_code(code)}"] = "1"
            elif f.field_type == "file":
                if flags.export_files and value.isdigit():
                    doc = load_doc(conn, int(value))
                    if doc:
                        files[f.name] = FileValue(doc[0], doc[1], doc[2])
            elif f.field_type == "descriptive":
                continue
            elif f.validation.startswith("datetime"):
                values[f.name] = value.replace(" ", "T")
            else:
                values[f.name] = value
        if values or files:
            out_rows.append(RecordRow(design.unique_event(row.event), row.repeat_form, row.instance, values, files))
    if not out_rows:
        return None
    dag = ""
    if dags_on(design, flags) and stored.dag_id in design.dag_by_id:
        dag = design.dag_by_id[stored.dag_id].unique_name
    return Record(stored.name, tuple(out_rows), dag)


def iter_odm_records(conn: sqlite3.Connection, design: Design, names_: list[str], flags: Flags, *,
                     fields: set[str] | None = None, row_filter=None) -> Iterator[Record]:
    """Records in the order given (already natural-sorted), a chunk at a time."""
    checkbox = {f.name for f in design.fields if f.field_type == "checkbox"}
    for stored in data_store.iter_records(conn, design.pid, names_, checkbox):
        rows = record_rows(design, stored)
        if row_filter is not None:
            rows = [r for r in rows if row_filter(stored, r)]
        record = odm_record(conn, design, stored, rows, flags, fields)
        if record is not None:
            yield record


__all__ = ["Flags", "build_metadata", "iter_odm_records"]
