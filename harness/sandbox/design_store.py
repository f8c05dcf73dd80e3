"""Reading and writing a project's design tables (everything but record data).

``load_design`` assembles the ``Design`` a request works with; the writers
below are the only code that changes ``redcap_projects``, settings,
``redcap_metadata``, arms/events, mappings, repeating set-up and DAGs.
Callers pass an open connection, inside a transaction when writing.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterable, Mapping

from harness.odm.model import Attachment, Field, Form
from harness.odm.names import unique_dag_names, unique_event_names
from harness.sandbox.design import ArmInfo, Dag, Design, EventInfo, ProjectRow
from harness.sandbox.dictionary import METADATA_COLUMNS, field_to_row, row_to_field

#: GlobalVariables settings of a REDCap 15.7.6 API export, in its order, with a
#: fresh project's values (``redcap_config`` defaults). Purpose/PurposeOther/
#: ProjectNotes come from ``redcap_projects`` instead.
SETTINGS_DEFAULTS: dict[str, str] = {
    "RecordAutonumberingEnabled": "1", "CustomRecordLabel": "", "SecondaryUniqueField": "",
    "SecondaryUniqueFieldDisplayValue": "1", "SecondaryUniqueFieldDisplayLabel": "1",
    "SchedulingEnabled": "0", "SurveysEnabled": "0", "SurveyInvitationEmailField": "",
    "RandomizationEnabled": "0", "DisplayTodayNowButton": "1", "PreventBranchingEraseValues": "0",
    "RequireChangeReason": "0", "DataHistoryPopup": "1", "OrderRecordsByField": "",
    "taskCompleteStatus": "2", "DataResolutionWorkflowEnabled": "0",
    "FieldCommentLogOptionEditDelete": "1", "DataResolutionWorkflowHideClosedQueries": "0",
    "MyCapEnabled": "0", "Purpose": "", "PurposeOther": "", "ProjectNotes": "",
    "SurveyQueueCustomText": "", "SurveyQueueHide": "0", "SurveyAuthEnabled": "0",
    "SurveyAuthField1": "", "SurveyAuthEvent1": "", "SurveyAuthField2": "", "SurveyAuthEvent2": "",
    "SurveyAuthField3": "", "SurveyAuthEvent3": "", "SurveyAuthMinFields": "",
    "SurveyAuthApplyAllSurveys": "1", "SurveyAuthCustomMessage": "", "SurveyAuthFailLimit": "",
    "SurveyAuthFailWindow": "", "DataMartProjectEnabled": "0", "DatamartAllowRepeatRevision": "0",
    "DatamartAllowCreateRevision": "0", "DatamartCronEnabled": "0", "HideFilledForms": "1",
    "HideDisabledForms": "0", "MissingDataCodes": "", "ProtectedEmailMode": "0",
    "ProtectedEmailModeCustomText": "REDCap Secure Messaging", "ProtectedEmailModeTrigger": "ALL",
    "ProtectedEmailModeLogo": "",
}
FROM_PROJECT_ROW = ("Purpose", "PurposeOther", "ProjectNotes")


# -- loading ------------------------------------------------------------------
def load_project_row(conn: sqlite3.Connection, pid: int) -> ProjectRow | None:
    row = conn.execute(
        "SELECT project_id, app_title, status, creation_time, production_time, created_by, purpose,"
        " purpose_other, project_note, project_language, repeatforms, table_pk"
        " FROM redcap_projects WHERE project_id = ?", (pid,)).fetchone()
    if row is None:
        return None
    return ProjectRow(row[0], row[1], row[2], row[3], row[4] or "", row[5], row[6], row[7], row[8],
                      row[9], row[10], row[11])


def load_settings(conn: sqlite3.Connection, pid: int) -> dict[str, str]:
    stored = dict(conn.execute("SELECT name, value FROM redcap_project_settings WHERE project_id = ?", (pid,)))
    return {k: stored.get(k, v) for k, v in SETTINGS_DEFAULTS.items()}


def load_doc(conn: sqlite3.Connection, doc_id: int) -> tuple[str, str, bytes] | None:
    row = conn.execute("SELECT doc_name, mime_type, content FROM redcap_edocs_metadata WHERE doc_id = ?",
                       (doc_id,)).fetchone()
    return (row[0], row[1], bytes(row[2])) if row else None


def load_fields(conn: sqlite3.Connection, pid: int) -> tuple[tuple[Field, ...], tuple[Form, ...]]:
    cols = ", ".join(METADATA_COLUMNS)
    cur = conn.execute(f"SELECT {cols} FROM redcap_metadata WHERE project_id = ? ORDER BY field_order", (pid,))
    fields, forms = [], []
    labels: dict[str, str] = {}
    for values in cur:
        row = dict(zip(METADATA_COLUMNS, values))
        attachment = None
        odm = json.loads(row["odm"] or "{}")
        if row["edoc_id"]:
            doc = load_doc(conn, row["edoc_id"])
            if doc:
                attachment = Attachment(doc[0], doc[1], base64.b64encode(doc[2]).decode("ascii"))
        elif "attachment" in odm:
            attachment = Attachment(*odm["attachment"])
        fields.append(row_to_field(row, attachment))
        if row["form_name"] not in labels:
            labels[row["form_name"]] = row["form_menu_description"] or ""
            forms.append(row["form_name"])
    return tuple(fields), tuple(Form(f, labels[f]) for f in forms)


def load_design(conn: sqlite3.Connection, pid: int) -> Design | None:
    project = load_project_row(conn, pid)
    if project is None:
        return None
    fields, forms = load_fields(conn, pid)
    arms = tuple(ArmInfo(*r) for r in conn.execute(
        "SELECT arm_id, arm_num, arm_name FROM redcap_events_arms WHERE project_id = ? ORDER BY arm_num", (pid,)))
    arm_by_id = {a.arm_id: a for a in arms}
    raw = conn.execute(
        "SELECT e.event_id, e.arm_id, e.day_offset, e.offset_min, e.offset_max, e.descrip, e.custom_event_label"
        " FROM redcap_events_metadata e JOIN redcap_events_arms a ON a.arm_id = e.arm_id"
        " WHERE a.project_id = ? ORDER BY a.arm_num, e.day_offset, lower(e.descrip), e.event_id", (pid,)).fetchall()
    mapping: dict[int, set[str]] = {}
    for event_id, form in conn.execute(
            "SELECT f.event_id, f.form_name FROM redcap_events_forms f JOIN redcap_events_metadata e"
            " ON e.event_id = f.event_id JOIN redcap_events_arms a ON a.arm_id = e.arm_id WHERE a.project_id = ?",
            (pid,)):
        mapping.setdefault(event_id, set()).add(form)
    uniques = unique_event_names([(r[5], arm_by_id[r[1]].num) for r in raw])
    form_order = [f.name for f in forms]
    events = tuple(
        EventInfo(event_id=r[0], unique_name=u, name=r[5], arm_id=r[1], arm_num=arm_by_id[r[1]].num,
                  arm_name=arm_by_id[r[1]].name, day_offset=r[2], offset_min=r[3], offset_max=r[4],
                  custom_label=r[6], forms=tuple(f for f in form_order if f in mapping.get(r[0], ())))
        for r, u in zip(raw, uniques)
    )
    repeating = {(e, f): label for e, f, label in conn.execute(
        "SELECT r.event_id, r.form_name, r.custom_repeat_form_label FROM redcap_events_repeat r"
        " JOIN redcap_events_metadata e ON e.event_id = r.event_id JOIN redcap_events_arms a"
        " ON a.arm_id = e.arm_id WHERE a.project_id = ?", (pid,))}
    groups = conn.execute("SELECT group_id, group_name FROM redcap_data_access_groups WHERE project_id = ?"
                          " ORDER BY group_id", (pid,)).fetchall()
    dags = tuple(Dag(g[0], g[1], u) for g, u in zip(groups, unique_dag_names([g[1] for g in groups])))
    surveys = tuple(dict(json.loads(a)).get("form_name", "") for (a,) in conn.execute(
        "SELECT attrs FROM redcap_odm_rows WHERE project_id = ? AND group_tag = 'SurveysGroup' ORDER BY row_id",
        (pid,)))
    return Design(project=project, settings=load_settings(conn, pid), fields=fields, forms=forms, arms=arms,
                  events=events, repeating=repeating, dags=dags, surveys=tuple(s for s in surveys if s))


# -- writing ------------------------------------------------------------------
def write_settings(conn: sqlite3.Connection, pid: int, settings: Mapping[str, str]) -> None:
    conn.executemany(
        "INSERT INTO redcap_project_settings (project_id, name, value) VALUES (?, ?, ?)"
        " ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value",
        [(pid, k, v) for k, v in settings.items()])


def store_doc(conn: sqlite3.Connection, pid: int, name: str, mime: str, content: bytes, now: str) -> int:
    cur = conn.execute(
        "INSERT INTO redcap_edocs_metadata (project_id, doc_name, mime_type, doc_size, stored_date, content)"
        " VALUES (?, ?, ?, ?, ?, ?)", (pid, name, mime or "application/octet-stream", len(content), now, content))
    return cur.lastrowid


def replace_metadata(conn: sqlite3.Connection, pid: int, fields: Iterable[Field], forms: Mapping[str, str],
                     now: str) -> None:
    """Replace the data dictionary (``<form>_complete`` rows included, as given)."""
    conn.execute("DELETE FROM redcap_metadata WHERE project_id = ?", (pid,))
    rows = []
    seen_forms: set[str] = set()
    for order, f in enumerate(fields, start=1):
        label = None
        if f.form not in seen_forms:
            seen_forms.add(f.form)
            label = forms.get(f.form, f.form)
        edoc = None
        if f.attachment is not None:
            content = base64.b64decode(f.attachment.content_b64 or "")
            edoc = store_doc(conn, pid, f.attachment.doc_name, f.attachment.mime_type, content, now)
        row = field_to_row(f, order, label, edoc)
        rows.append((pid, *[row[c] for c in METADATA_COLUMNS]))
    cols = ", ".join(("project_id",) + METADATA_COLUMNS)
    marks = ", ".join("?" * (len(METADATA_COLUMNS) + 1))
    conn.executemany(f"INSERT INTO redcap_metadata ({cols}) VALUES ({marks})", rows)


def add_arm(conn: sqlite3.Connection, pid: int, num: int, name: str) -> int:
    return conn.execute("INSERT INTO redcap_events_arms (project_id, arm_num, arm_name) VALUES (?, ?, ?)",
                        (pid, num, name)).lastrowid


def add_event(conn: sqlite3.Connection, arm_id: int, name: str, day_offset: float = 0, offset_min: float = 0,
              offset_max: float = 0, custom_label: str = "") -> int:
    return conn.execute(
        "INSERT INTO redcap_events_metadata (arm_id, day_offset, offset_min, offset_max, descrip,"
        " custom_event_label) VALUES (?, ?, ?, ?, ?, ?)",
        (arm_id, day_offset, offset_min, offset_max, name, custom_label)).lastrowid


def set_event_forms(conn: sqlite3.Connection, pairs: Iterable[tuple[int, str]]) -> None:
    conn.executemany("INSERT OR IGNORE INTO redcap_events_forms (event_id, form_name) VALUES (?, ?)", pairs)


def project_event_ids(conn: sqlite3.Connection, pid: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT e.event_id FROM redcap_events_metadata e JOIN redcap_events_arms a ON a.arm_id = e.arm_id"
        " WHERE a.project_id = ?", (pid,))]


def clear_event_forms(conn: sqlite3.Connection, pid: int) -> None:
    ids = project_event_ids(conn, pid)
    conn.executemany("DELETE FROM redcap_events_forms WHERE event_id = ?", [(i,) for i in ids])


def replace_repeating(conn: sqlite3.Connection, pid: int, rows: Iterable[tuple[int, str | None, str]]) -> None:
    ids = project_event_ids(conn, pid)
    conn.executemany("DELETE FROM redcap_events_repeat WHERE event_id = ?", [(i,) for i in ids])
    conn.executemany(
        "INSERT INTO redcap_events_repeat (event_id, form_name, custom_repeat_form_label) VALUES (?, ?, ?)",
        list(rows))


def delete_events(conn: sqlite3.Connection, event_ids: Iterable[int]) -> None:
    ids = [(i,) for i in event_ids]
    conn.executemany("DELETE FROM redcap_events_forms WHERE event_id = ?", ids)
    conn.executemany("DELETE FROM redcap_events_repeat WHERE event_id = ?", ids)
    conn.executemany("DELETE FROM redcap_data WHERE event_id = ?", ids)
    conn.executemany("DELETE FROM redcap_events_metadata WHERE event_id = ?", ids)


def add_dag(conn: sqlite3.Connection, pid: int, name: str) -> int:
    return conn.execute("INSERT INTO redcap_data_access_groups (project_id, group_name) VALUES (?, ?)",
                        (pid, name)).lastrowid
