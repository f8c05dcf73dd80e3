"""Create Project with ``odm=``: REDCap's ``ODM::parseOdm`` on the model (§5.3).

``import_design`` writes the design of a ``ProjectMetadata`` into a new
project, with REDCap's import semantics: settings only when non-empty in the
file, unique event names re-derived from name and arm (the file's names must
agree), a one-event "longitudinal" file becomes classic, ``<form>_complete``
recreated, data-dictionary errors refused as the API does. ``import_data``
then streams the records through the same ``saveData`` path as record
import. Both run inside the caller's transaction.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterable
from dataclasses import replace

from harness.compare.known import DDP_SETTINGS, NOT_IMPORTED_SETTINGS
from harness.odm.model import CLASSIC_EVENT, DAG_FIELD, SURVEY_ID_FIELD, Field, ProjectMetadata, Subject
from harness.sandbox import design_store
from harness.sandbox.design import Design
from harness.sandbox.design_store import FROM_PROJECT_ROW, SETTINGS_DEFAULTS
from harness.sandbox.dictionary import check_fields, complete_field, normalize_validation, with_status_fields
from harness.sandbox.exceptions import ApiError
from harness.sandbox.saving import InputRow, RecordSaver, SaveResult
from harness.sandbox.vendor import store_groups

_NOT_IMPORTED = set(NOT_IMPORTED_SETTINGS) | set(DDP_SETTINGS)
_CHOICE_OK = {"radio", "checkbox", "select", "yesno", "truefalse"}


def _number(text: str, message: str) -> float:
    text = (text or "").strip()
    if text == "":
        return 0
    try:
        return int(float(text))
    except ValueError:
        raise ApiError(message) from None


def _import_field(f: Field) -> Field:
    """A field as ``parseOdm`` builds its dictionary row."""
    changes: dict = {"validation": normalize_validation(f.validation)}
    if f.choices and f.field_type not in _CHOICE_OK:
        changes["field_type"] = "select"  # any field with a CodeListRef becomes a dropdown
    if f.field_type == "checkbox" and f.checkbox_choices is None:
        changes["checkbox_choices"] = " | ".join(f"{c.code}, {c.label}" for c in f.choices)
    return replace(f, **changes)


def import_design(conn: sqlite3.Connection, pid: int, meta: ProjectMetadata, *, autonumbering: str,
                  surveys_enabled: str, user_email: str, now: str) -> None:
    # Settings: a fresh project's values, overridden only by non-empty elements.
    settings = {k: v for k, v in SETTINGS_DEFAULTS.items() if k not in FROM_PROJECT_ROW}
    settings["RecordAutonumberingEnabled"] = autonumbering
    settings["SurveysEnabled"] = surveys_enabled
    for key, value in meta.settings.items():
        if key in settings and key not in _NOT_IMPORTED and value.strip() != "":
            settings[key] = value
    settings["MyCapEnabled"] = "0"  # MyCap is off in the sandbox, so REDCap downgrades the flag
    logo = meta.settings.get("ProtectedEmailModeLogo", "").strip()
    settings["ProtectedEmailModeLogo"] = ""
    design_store.write_settings(conn, pid, settings)
    if logo:
        attrs = dict(meta.setting_attributes.get("ProtectedEmailModeLogo", ()))
        doc_id = design_store.store_doc(conn, pid, attrs.get("DocName", "logo"), attrs.get("MimeType", ""),
                                        base64.b64decode("".join(logo.split())), now)
        conn.execute("UPDATE redcap_project_settings SET doc_id = ? WHERE project_id = ? AND name = ?",
                     (doc_id, pid, "ProtectedEmailModeLogo"))

    # Arms and events. One event means classic, whatever the file says.
    longitudinal = len(meta.events) > 1
    file_events: dict[str, int] = {}
    if longitudinal:
        arms: dict[int, int] = {}
        for e in meta.events:
            if e.arm_num < 0:
                raise ApiError(f'Arm number "{e.arm_num}" is not numeric or is less than one.')
            if e.arm_num not in arms:
                arms[e.arm_num] = design_store.add_arm(conn, pid, e.arm_num, e.arm_name or f"Arm {e.arm_num}")
        for e in meta.events:
            if len(e.event_name) > 30:
                raise ApiError(f'The event name "{e.event_name}" must be less than or equal to 30 characters '
                               "in length.")
            offset = _number(e.day_offset, f'The event\'s Days Offset "{e.day_offset}" is not numeric.')
            lo = _number(e.offset_min, f'The event\'s Offset Range Min/Max "{e.offset_min}" is not numeric or '
                                       "is less than one.")
            hi = _number(e.offset_max, f'The event\'s Offset Range Min/Max "{e.offset_max}" is not numeric or '
                                       "is less than one.")
            file_events[e.unique_name] = design_store.add_event(conn, arms[e.arm_num], e.event_name, offset, lo, hi,
                                                                e.custom_label)
        conn.execute("UPDATE redcap_projects SET repeatforms = 1 WHERE project_id = ?", (pid,))
    else:
        arm_id = design_store.add_arm(conn, pid, 1, "Arm 1")
        event_id = design_store.add_event(conn, arm_id, "Event 1", 1)
        for e in meta.events or ():
            file_events[e.unique_name] = event_id
        file_events[CLASSIC_EVENT] = event_id

    # Forms and fields; <form>_complete is REDCap's to recreate.
    fields = [_import_field(f) for f in meta.fields if not f.is_form_status]
    labels = {f.name: f.label for f in meta.forms}
    errors = check_fields(fields)
    if errors:
        raise ApiError("\n".join(errors))
    used_forms = list(dict.fromkeys(f.form for f in fields))
    all_fields = with_status_fields(fields)
    for form in meta.forms:
        # A form holding only its status field is re-created afterwards (ProjectDesigner::createForm).
        if form.name not in used_forms and any(f.form == form.name for f in meta.fields):
            all_fields.append(complete_field(form.name))
            used_forms.append(form.name)
    if all_fields:
        conn.execute("UPDATE redcap_projects SET table_pk = ? WHERE project_id = ?", (all_fields[0].name, pid))
    design_store.replace_metadata(conn, pid, all_fields, labels, now)

    # The events' real unique names are derived; the file's must match them.
    design = design_store.load_design(conn, pid)
    derived = {e.unique_name: e.event_id for e in design.events}
    if longitudinal:
        by_file_name = {}
        for e in meta.events:
            if e.unique_name not in derived:
                raise ApiError(f'The unique event name "{e.unique_name}" does not exist in the project.')
            by_file_name[e.unique_name] = derived[e.unique_name]
        file_events = by_file_name
        pairs = []
        for e in meta.events:
            for form in e.forms:
                if form not in used_forms:
                    raise ApiError(f'The instrument name (i.e., the unique form name) "{form}" does not exist '
                                   "in the project.")
                pairs.append((file_events[e.unique_name], form))
        design_store.set_event_forms(conn, pairs)
    else:
        design_store.set_event_forms(conn, [(design.first_event.event_id, f) for f in used_forms])

    # Repeating set-up; classic projects remap the event to their only event.
    rows = []
    for name in meta.repeating_events:
        if name in file_events or not longitudinal:
            rows.append((file_events.get(name, design.first_event.event_id), None, ""))
    for r in meta.repeating_forms:
        event_id = file_events.get(r.event) if longitudinal else design.first_event.event_id
        if event_id is not None and r.form in used_forms:
            rows.append((event_id, r.form, r.custom_label))
    design_store.replace_repeating(conn, pid, rows)

    # DAGs, then every other group as vendor rows.
    dag_group = meta.group("DataAccessGroupsGroup")
    for row in dag_group.rows if dag_group else ():
        design_store.add_dag(conn, pid, row.get("group_name"))
    store_groups(conn, pid, meta.groups, classic=not longitudinal, user_email=user_email, now=now)


def event_map(meta: ProjectMetadata, design: Design) -> dict[str, int]:
    """The file's event names -> the new project's event ids."""
    if not design.longitudinal:
        return {e.unique_name: design.first_event.event_id for e in meta.events} | {
            CLASSIC_EVENT: design.first_event.event_id, "": design.first_event.event_id}
    return {e.unique_name: e.event_id for e in design.events}


def import_data(conn: sqlite3.Connection, design: Design, meta: ProjectMetadata, subjects: Iterable[Subject], *,
                user: str, now: str) -> SaveResult:
    """ClinicalData through ``saveData`` (normal overwrite, Y-M-D dates, calcs recomputed).

    Like ``parseOdm``, the cells of each SubjectData are first flattened into
    rows keyed (event, repeat instrument, instance), read with the new
    project's repeat set-up (the file's, re-keyed to the derived event names).
    """
    saver = RecordSaver(conn, design, user=user, now=now, fresh=True)
    events = event_map(meta, design)
    repeating_events = {e for e, f in design.repeating if f is None}
    repeating_forms = {(e, f) for e, f in design.repeating if f is not None}
    bad_events: list[str] = []
    for subject in subjects:
        rows: dict[tuple, InputRow] = {}
        dag: int | None | bool = False
        for c in subject.cells:
            item = c.item_oid
            if item == DAG_FIELD:
                dag = _dag(design, saver, subject.key, c.value) if c.value else False
                continue
            if item == SURVEY_ID_FIELD:
                continue
            event_id = events.get(c.event)
            if event_id is None:
                if c.event not in bad_events:
                    bad_events.append(c.event)
                continue
            if event_id in repeating_events:
                key = (event_id, "", int(c.event_key) if c.event_key.isdigit() else 1)
            elif (event_id, c.form) in repeating_forms:
                key = (event_id, c.form, int(c.form_key) if c.form_key.isdigit() else 1)
            else:
                key = (event_id, "", None)
            row = rows.get(key)
            if row is None:
                row = rows[key] = InputRow(*key, {})
            if isinstance(c.value, str):
                row.values[item] = c.value
            else:
                row.files[item] = c.value
        for row in rows.values():
            saver.check_columns(list(row.values) + list(row.files), ignore_timestamps=True)
        if rows:
            saver.save(subject.key, list(rows.values()), dag)
    if bad_events:
        raise ApiError("The following values of redcap_event_name are invalid: " + ", ".join(bad_events))
    return saver.finish()


def _dag(design: Design, saver: RecordSaver, record: str, name) -> int | bool:
    found = design.dag_by_unique.get(name) if isinstance(name, str) else None
    if found is None:
        saver.errors.append(f'"{record}","redcap_data_access_group","{name}","The value is not a valid unique group '
                            'name for a Data Access Group"')
        return False
    return found.group_id
