"""``SandboxBackend``: REDCap's API operations on SQLite, one method per operation.

This is moto's ``models.py`` for REDCap: state and logic, no HTTP. Each
public method is one API call (``create_project``, ``export_records``, …),
takes plain values, returns plain data (rows, counts, bytes, iterators) and
raises ``ApiError`` subclasses carrying REDCap's status and text. Tokens
resolve to a ``Session`` (project + user), as REDCap's per-project token
table does. Writes run in one transaction each, so a failed call changes
nothing (Create Project included, which REDCap does not guarantee).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import string
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from typing import BinaryIO

from harness.errors import OdmError
from harness.odm.model import DAG_FIELD, CLASSIC_EVENT, ProjectMetadata, Record, checkbox_code
from harness.odm.reader import OdmDocument
from harness.sandbox import data_store, design_store, exceptions as exc
from harness.sandbox.calc import RecordContext
from harness.sandbox.data_store import StoredRecord
from harness.sandbox.design import Design, Session
from harness.sandbox.dictionary import (
    dictionary_to_fields, field_to_dictionary, with_status_fields,
)
from harness.sandbox.flat import Column, check_events, columns, eav_rows, flat_values, select_fields
from harness.sandbox.logic import Logic, LogicError
from harness.sandbox.odm_export import Flags, build_metadata, effective, iter_odm_records
from harness.sandbox.odm_import import import_data, import_design
from harness.sandbox.rows import Row, record_rows
from harness.sandbox.saving import InputRow, RecordSaver
from harness.sandbox.vendor import group_rows

log = logging.getLogger("harness.sandbox")

ADMIN = "sandbox_admin"
ADMIN_EMAIL = "sandbox_admin@example.org"

#: The rights REDCap's user export shows, in order; the creator's values (§2.3).
USER_RIGHTS = (
    ("design", 1), ("alerts", 1), ("user_rights", 1), ("data_access_groups", 1), ("reports", 1),
    ("stats_and_charts", 1), ("manage_survey_participants", 1), ("calendar", 1), ("data_import_tool", 1),
    ("data_comparison_tool", 1), ("logging", 1), ("email_logging", 0), ("file_repository", 1),
    ("data_quality_create", 1), ("data_quality_execute", 1), ("api_export", 1), ("api_import", 1),
    ("api_modules", 1), ("mobile_app", 1), ("mobile_app_download_data", 0), ("record_create", 1),
    ("record_rename", 0), ("record_delete", 0), ("lock_records_all_forms", 0), ("lock_records", 0),
    ("lock_records_customization", 0),
)
#: Legacy role attribute (``redcap:UserRoles``) -> API name.
ROLE_ATTRS = (
    ("design", "design"), ("alerts", "alerts"), ("user_rights", "user_rights"),
    ("data_access_groups", "data_access_groups"), ("reports", "reports"), ("graphical", "stats_and_charts"),
    ("participants", "manage_survey_participants"), ("calendar", "calendar"),
    ("data_import_tool", "data_import_tool"), ("data_comparison_tool", "data_comparison_tool"),
    ("data_logging", "logging"), ("email_logging", "email_logging"), ("file_repository", "file_repository"),
    ("data_quality_design", "data_quality_create"), ("data_quality_execute", "data_quality_execute"),
    ("api_export", "api_export"), ("api_import", "api_import"), ("api_modules", "api_modules"),
    ("mobile_app", "mobile_app"), ("mobile_app_download_data", "mobile_app_download_data"),
    ("record_create", "record_create"), ("record_rename", "record_rename"), ("record_delete", "record_delete"),
    ("lock_record_customize", "lock_records_customization"), ("lock_record", "lock_records"),
    ("lock_record_multiform", "lock_records_all_forms"),
)
CREATE_ATTRS = ("project_title", "purpose", "purpose_other", "project_notes", "is_longitudinal",
                "surveys_enabled", "record_autonumbering_enabled")
PROJECT_INFO_KEYS = (
    "project_id", "project_title", "creation_time", "production_time", "in_production", "project_language",
    "purpose", "purpose_other", "project_notes", "custom_record_label", "secondary_unique_field",
    "is_longitudinal", "has_repeating_instruments_or_events", "surveys_enabled", "scheduling_enabled",
    "record_autonumbering_enabled", "randomization_enabled", "ddp_enabled", "project_irb_number",
    "project_grant_number", "project_pi_firstname", "project_pi_lastname", "display_today_now_button",
    "missing_data_codes", "external_modules", "bypass_branching_erase_field_prompt",
)
#: project_settings keys -> redcap_project_settings name (XML tag) for settings stored there.
SETTING_KEYS = {
    "custom_record_label": "CustomRecordLabel", "secondary_unique_field": "SecondaryUniqueField",
    "surveys_enabled": "SurveysEnabled", "scheduling_enabled": "SchedulingEnabled",
    "record_autonumbering_enabled": "RecordAutonumberingEnabled", "randomization_enabled": "RandomizationEnabled",
    "display_today_now_button": "DisplayTodayNowButton",
    "bypass_branching_erase_field_prompt": "PreventBranchingEraseValues",
    "project_irb_number": "project_irb_number", "project_grant_number": "project_grant_number",
    "project_pi_firstname": "project_pi_firstname", "project_pi_lastname": "project_pi_lastname",
}
_INTISH = re.compile(r"^-?\d+$")


def now_text() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def new_project_token() -> str:
    """REDCap: ``strtoupper(md5(...))``."""
    return hashlib.md5(os.urandom(32)).hexdigest().upper()


def new_super_token() -> str:
    """REDCap: ``strtoupper(hash('sha256', ...))``."""
    return hashlib.sha256(os.urandom(32)).hexdigest().upper()


def _int_or_text(value):
    if isinstance(value, str) and _INTISH.match(value) and len(value) < 16:
        return int(value)
    return "" if value is None else value


def _parse_rights(text: str) -> dict[str, int]:
    """``[form,1][form2,2]`` -> {form: 1, form2: 2}."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"\[([^,\]]+),(\d+)\]", text or "")}


def _rights_text(rights: dict) -> str:
    return "".join(f"[{k},{v}]" for k, v in rights.items())


@dataclass
class ProjectXml:
    """What ``project_xml`` writes: the metadata and a stream of records."""

    metadata: ProjectMetadata
    records: Iterator[Record]
    flags: Flags  # as REDCap applies them (no DAG column without DAGs, ...)
    now: str
    #: fields[]: the variables ClinicalData is restricted to (None: all).
    fields: frozenset[str] | None = None


@dataclass
class FlatExport:
    columns: list[Column]
    rows: Iterator[list]
    #: Column headers for ``rawOrLabelHeaders=label``.
    labels: list[str]


@dataclass
class FileDownload:
    name: str
    mime_type: str
    content: bytes


class SandboxBackend:
    """Every REDCap API operation the sandbox models, on one SQLite database."""

    def __init__(self, db, *, super_token: str, version: str = "15.7.6", base_url: str = "http://127.0.0.1/"):
        self.db = db
        self.version = version
        self.base_url = base_url
        self.super_token = super_token
        self._seed()

    # -- control ---------------------------------------------------------------
    def _seed(self) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO redcap_user_information (username, user_email, user_firstname, user_lastname,"
                " super_user, api_token) VALUES (?, ?, 'Sandbox', 'Admin', 1, ?)"
                " ON CONFLICT (username) DO UPDATE SET api_token = excluded.api_token",
                (ADMIN, ADMIN_EMAIL, self.super_token))

    def reset(self) -> None:
        """Back to a freshly installed REDCap with only the super-token user."""
        self.db.reset()
        self._seed()

    def project_count(self) -> int:
        with self.db.connection() as conn:
            return conn.execute("SELECT COUNT(*) FROM redcap_projects").fetchone()[0]

    # -- authentication ----------------------------------------------------------
    def super_user(self, token: str) -> str:
        """The username behind a super token (api_120 otherwise)."""
        if len(token) != 64 or not token.isalnum():
            raise exc.SuperTokenRequired()
        with self.db.connection() as conn:
            row = conn.execute("SELECT username FROM redcap_user_information WHERE api_token = ?",
                               (token.upper(),)).fetchone()
        if row is None:
            raise exc.SuperTokenRequired()
        return row[0]

    def session(self, token: str) -> Session:
        """The project and user behind a project token."""
        if not token or not token.isalnum() or len(token) == 64:
            raise exc.InvalidToken()
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT r.project_id, r.username, r.rights, r.group_id, u.super_user FROM redcap_user_rights r"
                " LEFT JOIN redcap_user_information u ON u.username = r.username WHERE r.api_token = ?",
                (token.upper(),)).fetchone()
        if row is None:
            raise exc.InvalidToken()
        rights = json.loads(row[2])
        if row[4]:
            rights = {k: 1 for k, _ in USER_RIGHTS} | {"super_user": 1}
        return Session(row[0], row[1], rights, row[3])

    def _design(self, conn: sqlite3.Connection, s: Session) -> Design:
        design = design_store.load_design(conn, s.project_id)
        if design is None:
            raise exc.ApiError("The REDCap project no longer exists because it was deleted.")
        return design

    def _log(self, conn, pid: int, user: str, event: str, description: str, pk: str = "", details: str = "",
             when: str | None = None) -> None:
        conn.execute("INSERT INTO redcap_log_event (project_id, ts, user, event, description, pk, data_values)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", (pid, when or now_text(), user, event, description, pk, details))

    @staticmethod
    def _need(s: Session, right: str, error: exc.ApiError | None = None) -> None:
        if not s.right(right):
            raise error or exc.ApiError(f"You do not have the '{right}' privilege in this project.")

    # -- version and projects ----------------------------------------------------
    def export_version(self) -> str:
        return self.version

    def create_project(self, super_token: str, attrs: dict[str, str], odm: BinaryIO | None) -> str:
        """Create Project (``content=project`` + ``data``); returns the new 32-char token."""
        user = self.super_user(super_token)
        title = (attrs.get("project_title") or "").strip()
        purpose = (attrs.get("purpose") or "").strip()
        if not title or purpose not in ("0", "1", "2", "3", "4"):
            raise exc.ProjectAttributesMissing()
        purpose_other = (attrs.get("purpose_other") or "").strip()
        if purpose == "1" and not purpose_other:
            raise exc.PurposeOtherMissing()
        flag = lambda k, d: "1" if (attrs.get(k) or d).strip() in ("1", "true", "True") else "0"  # noqa: E731
        longitudinal = flag("is_longitudinal", "0")
        surveys = flag("surveys_enabled", "0")
        autonumbering = flag("record_autonumbering_enabled", "1")
        doc = None
        if odm is not None:
            doc = self._open_odm(odm)
        now = now_text()
        token = new_project_token()
        with self.db.transaction() as conn:
            pid = conn.execute(
                "INSERT INTO redcap_projects (project_name, app_title, creation_time, created_by, purpose,"
                " purpose_other, project_note, repeatforms) VALUES ('', ?, ?, ?, ?, ?, ?, ?)",
                (title, now, user, int(purpose), purpose_other if purpose == "1" else "",
                 attrs.get("project_notes") or "", int(longitudinal))).lastrowid
            conn.execute("UPDATE redcap_projects SET project_name = ? WHERE project_id = ?",
                         (f"redcap_sandbox_{pid}", pid))
            # Logged first, as REDCap does: the records imported from the file come after it.
            self._log(conn, pid, user, "MANAGE", "Create project using REDCap XML file (API)" if doc is not None
                      else "Create project (API)", when=now)
            if doc is None:
                self._default_design(conn, pid, autonumbering, surveys, now)
            else:
                try:
                    meta = doc.metadata
                    import_design(conn, pid, meta, autonumbering=autonumbering, surveys_enabled=surveys,
                                  user_email=ADMIN_EMAIL if user == ADMIN else f"{user}@example.org", now=now)
                    design = design_store.load_design(conn, pid)
                    result = import_data(conn, design, meta, doc.subjects(), user=user, now=now)
                except OdmError as e:
                    log.info("sandbox: create project refused: %s", e)
                    raise exc.InvalidOdm() from None
                log.info("sandbox: project %s created from XML with %d records", pid, len(result.records))
            rights = {k: v for k, v in USER_RIGHTS}
            design = design_store.load_design(conn, pid)
            forms = {f.name: 1 for f in design.forms}
            conn.execute(
                "INSERT INTO redcap_user_rights (project_id, username, api_token, rights, forms, forms_export)"
                " VALUES (?, ?, ?, ?, ?, ?)", (pid, user, token, json.dumps(rights), json.dumps(forms),
                                               json.dumps(forms)))
        return token

    def _open_odm(self, odm: BinaryIO) -> OdmDocument:
        """``ODM::validateOdmInitial``: root ODM, Study with metadata, ends with ``</ODM>``."""
        odm.seek(0, os.SEEK_END)
        size = odm.tell()
        odm.seek(max(0, size - 64))
        if not odm.read().rstrip().endswith(b"</ODM>"):
            raise exc.InvalidOdm()
        odm.seek(0)
        try:
            doc = OdmDocument(odm, name="odm")
        except OdmError as e:
            log.info("sandbox: create project refused: %s", e)
            raise exc.InvalidOdm() from None
        if not doc.has_metadata:
            raise exc.InvalidOdm()
        return doc

    def _default_design(self, conn, pid: int, autonumbering: str, surveys: str, now: str) -> None:
        """A project without XML: one arm, one event, ``my_first_instrument``."""
        from harness.odm.model import Field

        settings = {k: v for k, v in design_store.SETTINGS_DEFAULTS.items()
                    if k not in design_store.FROM_PROJECT_ROW}
        settings.update(RecordAutonumberingEnabled=autonumbering, SurveysEnabled=surveys)
        design_store.write_settings(conn, pid, settings)
        arm = design_store.add_arm(conn, pid, 1, "Arm 1")
        event = design_store.add_event(conn, arm, "Event 1", 1)
        fields = with_status_fields([Field("record_id", "my_first_instrument", "text", label="Record ID")])
        design_store.replace_metadata(conn, pid, fields, {"my_first_instrument": "My First Instrument"}, now)
        design_store.set_event_forms(conn, [(event, "my_first_instrument")])

    def delete_project(self, super_token: str, project_token: str) -> int:
        """Sandbox control call: remove a project and everything in it (REDCap's API has none)."""
        self.super_user(super_token)
        s = self.session(project_token)
        pid = s.project_id
        with self.db.transaction() as conn:
            event_ids = design_store.project_event_ids(conn, pid)
            design_store.delete_events(conn, event_ids)
            for table in ("redcap_events_arms", "redcap_project_settings", "redcap_user_rights",
                          "redcap_data_access_groups", "redcap_metadata", "redcap_data", "redcap_record_list",
                          "redcap_edocs_metadata", "redcap_docs_folders", "redcap_docs_to_edocs",
                          "redcap_odm_rows", "redcap_surveys_response", "redcap_log_event", "redcap_projects"):
                conn.execute(f"DELETE FROM {table} WHERE project_id = ?", (pid,))
        return pid

    def export_project_info(self, s: Session) -> dict:
        with self.db.connection() as conn:
            d = self._design(conn, s)
            extra = dict(conn.execute("SELECT name, value FROM redcap_project_settings WHERE project_id = ?",
                                      (s.project_id,)))
        p, st = d.project, d.settings
        codes = " | ".join(f"{c.code}, {c.label}" for c in d.missing_codes)
        values = {
            "project_id": p.project_id, "project_title": p.title, "creation_time": p.creation_time,
            "production_time": p.production_time, "in_production": 1 if p.status == 1 else 0,
            "project_language": p.project_language, "purpose": p.purpose, "purpose_other": p.purpose_other,
            "project_notes": p.project_note, "custom_record_label": st["CustomRecordLabel"],
            "secondary_unique_field": st["SecondaryUniqueField"], "is_longitudinal": 1 if d.longitudinal else 0,
            "has_repeating_instruments_or_events": 1 if d.has_repeating else 0,
            "surveys_enabled": st["SurveysEnabled"], "scheduling_enabled": st["SchedulingEnabled"],
            "record_autonumbering_enabled": st["RecordAutonumberingEnabled"],
            "randomization_enabled": st["RandomizationEnabled"], "ddp_enabled": 0,
            "project_irb_number": extra.get("project_irb_number", ""),
            "project_grant_number": extra.get("project_grant_number", ""),
            "project_pi_firstname": extra.get("project_pi_firstname", ""),
            "project_pi_lastname": extra.get("project_pi_lastname", ""),
            "display_today_now_button": st["DisplayTodayNowButton"], "missing_data_codes": codes,
            "external_modules": "", "bypass_branching_erase_field_prompt": st["PreventBranchingEraseValues"],
        }
        return {k: _int_or_text(values[k]) for k in PROJECT_INFO_KEYS}

    def import_project_settings(self, s: Session, data: dict[str, str]) -> int:
        self._need(s, "design", exc.ApiError("You do not have permissions to modify the project design."))
        with self.db.transaction() as conn:
            pid = s.project_id
            count = 0
            for key, value in data.items():
                value = "" if value is None else str(value)
                if key == "project_title":
                    if value.strip():
                        conn.execute("UPDATE redcap_projects SET app_title = ? WHERE project_id = ?", (value, pid))
                elif key == "project_language":
                    conn.execute("UPDATE redcap_projects SET project_language = ? WHERE project_id = ?",
                                 (value, pid))
                elif key == "purpose":
                    if value not in ("0", "1", "2", "3", "4"):
                        raise exc.ApiError("'purpose' must have a value of 0, 1, 2, 3, or 4.")
                    conn.execute("UPDATE redcap_projects SET purpose = ? WHERE project_id = ?", (int(value), pid))
                elif key == "purpose_other":
                    conn.execute("UPDATE redcap_projects SET purpose_other = ? WHERE project_id = ?", (value, pid))
                elif key == "project_notes":
                    conn.execute("UPDATE redcap_projects SET project_note = ? WHERE project_id = ?", (value, pid))
                elif key == "is_longitudinal":
                    conn.execute("UPDATE redcap_projects SET repeatforms = ? WHERE project_id = ?",
                                 (1 if value == "1" else 0, pid))
                elif key == "missing_data_codes":
                    text = "\n".join(p.strip() for p in value.split("|") if p.strip())
                    design_store.write_settings(conn, pid, {"MissingDataCodes": text})
                elif key in SETTING_KEYS:
                    design_store.write_settings(conn, pid, {SETTING_KEYS[key]: value})
                else:
                    continue
                count += 1
            self._log(conn, pid, s.username, "MANAGE", "Modify project settings (API)")
        return count

    # -- project XML -----------------------------------------------------------------
    def export_project_xml(self, s: Session, flags: Flags, *, records: list[str], fields: list[str],
                           events: list[str], filter_logic: str) -> ProjectXml:
        self._need(s, "api_export", exc.NoExportRights())
        now = now_text()
        with ExitStack() as stack:
            conn = stack.enter_context(self.db.connection())
            d = self._design(conn, s)
            if s.group_id is not None:
                flags = replace(flags, export_dags=False)
            flags = effective(d, flags)
            meta = build_metadata(conn, d, flags, now=now, version=self.version)
            if flags.metadata_only:
                return ProjectXml(meta, iter(()), flags, now)
            field_set = None
            if fields:
                select_fields(d, fields, [])
                field_set = set(fields) | {d.pk}
            event_ids = check_events(d, events)
            row_filter = self._row_filter(d, filter_logic, event_ids)
            names = data_store.record_names(conn, d.pid, dag_id=s.group_id, only=records or None)
            with self.db.transaction() as wconn:
                self._log(wconn, d.pid, s.username, "DATA_EXPORT", "Export REDCap project XML file (API)",
                          when=now)
            # The records stream after this call returns: the connection goes with them.
            held = stack.pop_all()

        def stream() -> Iterator[Record]:
            with held:
                yield from iter_odm_records(conn, d, names, flags, fields=field_set, row_filter=row_filter)
        return ProjectXml(meta, stream(), flags, now, frozenset(field_set) if field_set else None)

    def _row_filter(self, d: Design, filter_logic: str, event_ids: set[int] | None):
        logic = None
        if filter_logic.strip():
            try:
                logic = Logic(filter_logic, fields=d.field_map, events=set(d.event_by_unique) | {CLASSIC_EVENT})
            except LogicError as e:
                raise exc.ApiError(f"The filterLogic parameter is not valid: {e}") from None
        if logic is None and event_ids is None:
            return None

        def keep(stored: StoredRecord, row: Row) -> bool:
            if event_ids is not None and row.event.event_id not in event_ids:
                return False
            if logic is not None:
                return logic.is_true(RecordContext(d, stored, row.event.event_id, row.stored_instance))
            return True
        return keep

    # -- records ------------------------------------------------------------------------
    def export_records(self, s: Session, *, records: list[str], fields: list[str], forms: list[str],
                       events: list[str], raw_or_label: str = "raw", export_checkbox_label: bool = False,
                       export_survey_fields: bool = False, export_dags: bool = False, filter_logic: str = "",
                       blank_gray: bool = False, eav: bool = False, date_begin: str = "", date_end: str = "",
                       decimal: str = "") -> FlatExport:
        self._need(s, "api_export", exc.NoExportRights())
        with ExitStack() as stack:
            conn = stack.enter_context(self.db.connection())
            d = self._design(conn, s)
            chosen, with_pk = select_fields(d, fields, forms)
            event_ids = check_events(d, events)
            row_filter = self._row_filter(d, filter_logic, event_ids)
            dags = export_dags and s.group_id is None
            survey = export_survey_fields and bool(d.surveys)
            cols = columns(d, chosen, with_pk, survey_fields=survey, dags=dags)
            names = data_store.record_names(conn, d.pid, dag_id=s.group_id, only=records or None)
            if date_begin or date_end:
                # REDCap reads the window from the logging of record creation and updates.
                changed = {r for (r,) in conn.execute(
                    "SELECT DISTINCT pk FROM redcap_log_event WHERE project_id = ? AND event IN ('INSERT', 'UPDATE')"
                    " AND ts >= ? AND ts <= ?", (d.pid, date_begin or "0000", date_end or now_text()))}
                names = [n for n in names if n in changed]
            doc_names = dict((str(i), n) for i, n in conn.execute(
                "SELECT doc_id, doc_name FROM redcap_edocs_metadata WHERE project_id = ?", (d.pid,)))
            with self.db.transaction() as wconn:
                self._log(wconn, d.pid, s.username, "DATA_EXPORT", "Export data (API)")
            held = stack.pop_all()
        label = raw_or_label == "label"
        chosen_names = {f.name for f in chosen} | ({d.pk} if with_pk else set())
        checkbox = {f.name for f in d.fields if f.field_type == "checkbox"}

        def rows() -> Iterator:
            # Records are read a chunk at a time; the connection goes when the rows are done.
            with held:
                for stored in data_store.iter_records(conn, d.pid, names, checkbox):
                    rs = record_rows(d, stored)
                    if row_filter is not None:
                        rs = [r for r in rs if row_filter(stored, r)]
                    if eav:
                        yield from eav_rows(d, stored, rs, chosen_names, label=label)
                        continue
                    for r in rs:
                        yield flat_values(d, stored, r, cols, label=label, checkbox_label=export_checkbox_label,
                                          blank_gray=blank_gray, doc_names=doc_names, decimal=decimal)
        return FlatExport(cols, rows(), [c.header(d) for c in cols])

    def export_report(self, s: Session, report_id: str, *, raw_or_label: str = "raw",
                      export_checkbox_label: bool = False, decimal: str = "") -> FlatExport:
        """A report kept from the project XML: its fields, events and logic.

        ``report_id`` is the report's position (1, 2, …) in report order, or its
        ``unique_report_name``; the sandbox has no UI to show REDCap's internal ids.
        """
        with self.db.connection() as conn:
            d = self._design(conn, s)
            reports = [dict(attrs) for _, attrs in group_rows(conn, d.pid, "ReportsGroup")]
        reports.sort(key=lambda r: int(r.get("report_order") or 0) if str(r.get("report_order", "")).isdigit() else 0)
        chosen = None
        if report_id.strip().isdigit() and 1 <= int(report_id) <= len(reports):
            chosen = reports[int(report_id) - 1]
        else:
            chosen = next((r for r in reports if r.get("unique_report_name") == report_id.strip()), None)
        if chosen is None:
            raise exc.ApiError("You must provide a valid report_id")
        fields = [f for f in (chosen.get("redcap_reports_fields") or "").split(",") if f in d.field_map]
        events = [e for e in (chosen.get("redcap_reports_filter_events") or "").split(",") if e]
        return self.export_records(s, records=[], fields=fields, forms=[], events=events, raw_or_label=raw_or_label,
                                   export_checkbox_label=export_checkbox_label,
                                   export_dags=chosen.get("output_dags") == "1",
                                   export_survey_fields=chosen.get("output_survey_fields") == "1",
                                   filter_logic=chosen.get("advanced_logic") or "", decimal=decimal)

    def _event_for_row(self, d: Design, row: dict, errors: list[str]) -> int | None:
        if not d.longitudinal:
            return d.first_event.event_id
        name = (row.get("redcap_event_name") or "").strip()
        event = d.event_by_unique.get(name)
        if event is None:
            for e in d.events:  # label form is accepted too
                if d.event_label(e) == name:
                    return e.event_id
            errors.append(name)
            return None
        return event.event_id

    def import_records(self, s: Session, rows: list[dict], *, eav: bool = False, overwrite: bool = False,
                       force_auto_number: bool = False, date_format: str = "YMD") -> tuple[list[str], dict]:
        """Returns (distinct record names touched, {new name: original name} for auto-numbering)."""
        self._need(s, "api_import", exc.NoImportRights())
        if not rows:
            raise exc.NoDataProvided()
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            pk = d.pk
            if eav:
                rows = self._eav_to_flat(d, rows)
            keys = list(dict.fromkeys(k for r in rows for k in r))
            if pk not in keys:
                raise exc.ApiError(f"The record id field ({pk}) is missing.")
            reserved = ("redcap_repeat_instrument", "redcap_repeat_instance")
            if not d.has_repeating and any(k in keys for k in reserved):
                raise exc.ApiError(
                    "Trying to import repeat instance/instrument fields! The fields 'redcap_repeat_instrument' and "
                    "'redcap_repeat_instance' are reserved for projects with repeating instruments or repeating "
                    "events, and this project has none.")
            pseudo = {"redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance", DAG_FIELD,
                      "redcap_survey_identifier"}
            saver = RecordSaver(conn, d, user=s.username, now=now_text(), overwrite=overwrite,
                                date_format=date_format)
            saver.check_columns([k for k in keys if k not in pseudo], ignore_timestamps=True)
            grouped: dict[str, list[tuple[InputRow, str | None]]] = {}
            bad_events: list[str] = []
            auto: dict[str, str] = {}
            next_id = self._next_record_number(conn, d.pid) if force_auto_number else 0
            for row in rows:
                name = (row.get(pk) or "").strip()
                if force_auto_number:
                    if name not in auto.values():
                        auto[str(next_id)] = name
                        next_id += 1
                    name = next(k for k, v in auto.items() if v == name)
                event_id = self._event_for_row(d, row, bad_events)
                if event_id is None:
                    continue
                instance = (row.get("redcap_repeat_instance") or "").strip()
                inst = int(instance) if instance.isdigit() else None
                values = {k: v for k, v in row.items() if k not in pseudo and isinstance(v, str)}
                grouped.setdefault(name, []).append(
                    (InputRow(event_id, (row.get("redcap_repeat_instrument") or "").strip(), inst, values),
                     row.get(DAG_FIELD) if DAG_FIELD in row else None))
            if bad_events:
                raise exc.ApiError("The following values of redcap_event_name are invalid: "
                                   + ", ".join(dict.fromkeys(bad_events)))
            for name, items in grouped.items():
                dag = False
                for _, dag_name in items:
                    if dag_name is None:
                        continue
                    if dag_name == "":
                        dag = None if overwrite else dag
                    elif dag_name in d.dag_by_unique:
                        dag = d.dag_by_unique[dag_name].group_id
                    else:
                        saver.errors.append(f'"{name}","{DAG_FIELD}","{dag_name}","The value is not a valid unique '
                                            'group name for a Data Access Group"')
                if s.group_id is not None:
                    dag = s.group_id
                saver.save(name, [r for r, _ in items], dag)
            result = saver.finish()
        return result.records, auto

    def _eav_to_flat(self, d: Design, rows: list[dict]) -> list[dict]:
        out: dict[tuple, dict] = {}
        for r in rows:
            key = (r.get("record", ""), r.get("redcap_event_name", ""), r.get("redcap_repeat_instrument", ""),
                   r.get("redcap_repeat_instance", ""))
            flat = out.setdefault(key, {d.pk: key[0]} | ({"redcap_event_name": key[1]} if d.longitudinal else {}) |
                                  ({"redcap_repeat_instrument": key[2], "redcap_repeat_instance": key[3]}
                                   if d.has_repeating else {}))
            name, value = r.get("field_name", ""), r.get("value", "")
            f = d.field_map.get(name)
            if f is not None and f.field_type == "checkbox":
                flat[f"{name}___{checkbox_code(value)}"] = "1"
            else:
                flat[name] = value
        return list(out.values())

    def _next_record_number(self, conn, pid: int) -> int:
        numbers = [int(r) for (r,) in conn.execute(
            "SELECT record FROM redcap_record_list WHERE project_id = ?", (pid,)) if r.isdigit()]
        return max(numbers, default=0) + 1

    def generate_next_record_name(self, s: Session) -> str:
        with self.db.connection() as conn:
            n = self._next_record_number(conn, s.project_id)
        return f"{s.group_id}-{n}" if s.group_id is not None else str(n)

    def delete_records(self, s: Session, records: list[str], *, arm: str = "", event: str = "",
                       instrument: str = "", repeat_instance: str = "") -> int:
        if not (s.right("api_import") and s.right("record_delete")):
            raise exc.DeletePrivileges()
        if not records:
            raise exc.RecordsEmpty()
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            missing = [r for r in records if not data_store.record_exists(conn, d.pid, r)]
            if missing:
                raise exc.ApiError("One or more of the records provided cannot be deleted because they do not exist "
                                   "in the project. The following records do not exist: " + ", ".join(missing))
            event_ids = None
            if event:
                if event not in d.event_by_unique and d.longitudinal:
                    raise exc.ApiError(f"The event '{event}' is not valid.")
                event_ids = {d.event_by_unique[event].event_id} if d.longitudinal else {d.first_event.event_id}
            elif arm:
                arm_events = [e.event_id for e in d.events if str(e.arm_num) == arm.strip()]
                if not arm_events:
                    raise exc.ApiError("The arm provided is not correct for the project.")
                event_ids = set(arm_events)
            if instrument and instrument not in d.form_map:
                raise exc.ApiError(f"The instrument '{instrument}' is not valid.")
            if instrument and d.longitudinal and not event:
                raise exc.ApiError("The 'event' parameter is required when 'instrument' is provided in a "
                                   "longitudinal project.")
            inst = int(repeat_instance) if str(repeat_instance).strip().isdigit() else None
            count = 0
            for name in records:
                if event_ids is None and not instrument and inst is None:
                    data_store.delete_record(conn, d.pid, name)
                    self._log(conn, d.pid, s.username, "DELETE", "Deleted Record", name)
                    count += 1
                    continue
                sql = "DELETE FROM redcap_data WHERE project_id = ? AND record = ?"
                args: list = [d.pid, name]
                if event_ids is not None:
                    sql += f" AND event_id IN ({','.join('?' * len(event_ids))})"
                    args += list(event_ids)
                if instrument:
                    fields = [f.name for f in d.form_fields.get(instrument, ()) if f.name != d.pk]
                    sql += f" AND field_name IN ({','.join('?' * len(fields))})"
                    args += fields
                if inst is not None:
                    sql += " AND instance IS ?" if inst == 1 else " AND instance = ?"
                    args.append(None if inst == 1 else inst)
                deleted = conn.execute(sql, args).rowcount
                if not conn.execute("SELECT 1 FROM redcap_data WHERE project_id = ? AND record = ? LIMIT 1",
                                    (d.pid, name)).fetchone():
                    data_store.delete_record(conn, d.pid, name)
                if deleted:
                    count += 1
                    self._log(conn, d.pid, s.username, "DELETE", "Deleted Record", name)
        return count

    def rename_record(self, s: Session, record: str, new_name: str, arm: str = "") -> str:
        if not (s.right("api_import") and s.right("record_rename")):
            raise exc.ApiError("You do not have Rename Record privileges")
        new_name = new_name.strip()
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            if not data_store.record_exists(conn, d.pid, record):
                raise exc.ApiError(f"The record '{record}' does not exist.")
            if not new_name:
                raise exc.ApiError("The new record name is missing.")
            if data_store.record_exists(conn, d.pid, new_name):
                raise exc.ApiError(f"The record '{new_name}' already exists.")
            for table in ("redcap_data", "redcap_record_list", "redcap_surveys_response"):
                conn.execute(f"UPDATE {table} SET record = ? WHERE project_id = ? AND record = ?",
                             (new_name, d.pid, record))
            conn.execute("UPDATE redcap_data SET value = ? WHERE project_id = ? AND record = ? AND field_name = ?",
                         (new_name, d.pid, new_name, d.pk))
            self._log(conn, d.pid, s.username, "UPDATE", f"Rename record {record} to {new_name}", new_name)
        return "1"

    # -- metadata and instruments ------------------------------------------------------------------
    def export_metadata(self, s: Session, fields: list[str], forms: list[str]) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
        bad = [f for f in fields if f not in d.field_map]
        if bad:
            raise exc.ApiError('The following values in the parameter "fields" are not valid: '
                               + ", ".join(f"'{b}'" for b in bad))
        out = []
        for f in d.fields:
            if f.is_form_status:
                continue
            if (fields or forms) and f.name not in fields and f.form not in forms:
                continue
            out.append(field_to_dictionary(f))
        return out

    def import_metadata(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "design", exc.ApiError("You do not have Project Setup/Design privileges"))
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            if d.project.status > 0:
                raise exc.ApiError("This method cannot be used while the project is in Production status.")
            fields = dictionary_to_fields(rows)
            labels = {f.name: f.label for f in d.forms}
            for f in fields:
                labels.setdefault(f.form, f.form.replace("_", " ").title())
            design_store.replace_metadata(conn, d.pid, with_status_fields(fields), labels, now_text())
            new_forms = set(labels) & {f.form for f in fields}
            if not d.longitudinal:
                design_store.clear_event_forms(conn, d.pid)
                design_store.set_event_forms(conn, [(e.event_id, f) for e in d.events for f in new_forms])
            else:
                for e in d.events:
                    conn.executemany("DELETE FROM redcap_events_forms WHERE event_id = ? AND form_name = ?",
                                     [(e.event_id, f) for f in e.forms if f not in new_forms])
            conn.executemany("DELETE FROM redcap_events_repeat WHERE event_id = ? AND form_name = ?",
                             [(e, f) for (e, f) in d.repeating if f is not None and f not in new_forms])
            self._log(conn, d.pid, s.username, "MANAGE", "Upload data dictionary (API)")
        return len(fields)

    def export_instruments(self, s: Session) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
        return [{"instrument_name": f.name, "instrument_label": f.label} for f in d.forms]

    def export_field_names(self, s: Session, field: str = "") -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
        if field and field not in d.field_map:
            raise exc.ApiError("Invalid field")
        out = []
        for f in d.fields:
            if f.field_type in ("file", "descriptive") or (field and f.name != field):
                continue
            if f.field_type == "checkbox":
                for name, (cf, code) in d.checkbox_columns.items():
                    if cf.name == f.name:
                        out.append({"original_field_name": f.name, "choice_value": code, "export_field_name": name})
            else:
                out.append({"original_field_name": f.name, "choice_value": "", "export_field_name": f.name})
        return out

    # -- arms, events, mappings, repeating ----------------------------------------------------------------
    def export_arms(self, s: Session, arms: list[str]) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
        if not d.longitudinal:
            raise exc.ClassicArms()
        with_events = {e.arm_num for e in d.events}
        return [{"arm_num": a.num, "name": a.name} for a in d.arms
                if a.num in with_events and (not arms or str(a.num) in arms)]

    def import_arms(self, s: Session, rows: list[dict], override: bool) -> int:
        self._need(s, "design")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            if override:
                design_store.delete_events(conn, [e.event_id for e in d.events])
                conn.execute("DELETE FROM redcap_events_arms WHERE project_id = ?", (d.pid,))
                existing = {}
            else:
                existing = {a.num: a for a in d.arms}
            count = 0
            for row in rows:
                num = str(row.get("arm_num", "")).strip()
                if not num.isdigit() or not 1 <= int(num) <= 99:
                    raise exc.ApiError(f'Arm number "{num}" is not numeric or is less than one.')
                name = (row.get("name") or "").strip()[:50] or f"Arm {num}"
                if int(num) in existing:
                    conn.execute("UPDATE redcap_events_arms SET arm_name = ? WHERE arm_id = ?",
                                 (name, existing[int(num)].arm_id))
                else:
                    design_store.add_arm(conn, d.pid, int(num), name)
                count += 1
            self._log(conn, d.pid, s.username, "MANAGE", "Create arms (API)")
        return count

    def delete_arms(self, s: Session, arms: list[str]) -> int:
        self._need(s, "design")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            by_num = {str(a.num): a for a in d.arms}
            bad = [a for a in arms if a not in by_num]
            if bad or not arms:
                raise exc.ApiError("One or more of the arm numbers provided are either not numeric or do not exist "
                                   "in this project. Note: No arms were deleted. Arm numbers that do not exist: "
                                   + ", ".join(bad))
            for a in arms:
                arm = by_num[a]
                design_store.delete_events(conn, [e.event_id for e in d.events if e.arm_id == arm.arm_id])
                conn.execute("DELETE FROM redcap_events_arms WHERE arm_id = ?", (arm.arm_id,))
            self._log(conn, d.pid, s.username, "MANAGE", "Delete arms (API)")
        return len(arms)

    def export_events(self, s: Session, arms: list[str]) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
        if not d.project.repeatforms:
            raise exc.ClassicEvents()
        scheduling = d.settings.get("SchedulingEnabled") == "1"
        out = []
        for e in d.events:
            if arms and str(e.arm_num) not in arms:
                continue
            row = {"event_name": e.name, "arm_num": e.arm_num}
            if scheduling:
                row.update(day_offset=int(e.day_offset), offset_min=int(e.offset_min), offset_max=int(e.offset_max))
            row.update(unique_event_name=e.unique_name, custom_event_label=e.custom_label, event_id=e.event_id)
            out.append(row)
        return out

    def import_events(self, s: Session, rows: list[dict], override: bool) -> int:
        self._need(s, "design")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            if any("event_name" not in r or "arm_num" not in r for r in rows):
                raise exc.ApiError("One or more components are missing in your input data. The following attributes "
                                   "are required: event_name,arm_num,unique_event_name")
            if override:
                design_store.delete_events(conn, [e.event_id for e in d.events])
                existing = {}
            else:
                existing = {e.unique_name: e for e in d.events}
            arms = {str(a.num): a for a in d.arms}
            count = 0
            for row in rows:
                name = str(row.get("event_name", "")).strip()
                arm = str(row.get("arm_num", "")).strip()
                if len(name) > 30:
                    raise exc.ApiError(f'The event name "{name}" must be less than or equal to 30 characters in '
                                       "length.")
                if arm not in arms:
                    raise exc.ApiError(f'The arm number "{arm}" does not exist in the project.')
                offsets = []
                for key in ("day_offset", "offset_min", "offset_max"):
                    v = str(row.get(key, "") or "0").strip()
                    try:
                        offsets.append(float(v))
                    except ValueError:
                        raise exc.ApiError(f'The event\'s Days Offset "{v}" is not numeric.') from None
                label = str(row.get("custom_event_label", "") or "")
                unique = str(row.get("unique_event_name", "") or "").strip()
                if unique in existing:
                    conn.execute(
                        "UPDATE redcap_events_metadata SET descrip = ?, arm_id = ?, day_offset = ?, offset_min = ?,"
                        " offset_max = ?, custom_event_label = ? WHERE event_id = ?",
                        (name, arms[arm].arm_id, *offsets, label, existing[unique].event_id))
                else:
                    design_store.add_event(conn, arms[arm].arm_id, name, *offsets, label)
                count += 1
            self._log(conn, d.pid, s.username, "MANAGE", "Create events (API)")
        return count

    def delete_events(self, s: Session, events: list[str]) -> int:
        self._need(s, "design")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            bad = [e for e in events if e not in d.event_by_unique]
            if bad or not events:
                raise exc.ApiError("One or more of the unique event names provided do not exist in this project. "
                                   "Note: No events were deleted. Unique event names that do not exist: "
                                   + ", ".join(bad))
            design_store.delete_events(conn, [d.event_by_unique[e].event_id for e in events])
            self._log(conn, d.pid, s.username, "MANAGE", "Delete events (API)")
        return len(events)

    def export_form_event_mapping(self, s: Session, arms: list[str]) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
        if not d.project.repeatforms:
            raise exc.ClassicFormEventMapping()
        out = [{"arm_num": e.arm_num, "unique_event_name": e.unique_name, "form": f}
               for e in d.events if not arms or str(e.arm_num) in arms for f in e.forms]
        return out or [{"arm_num": "", "unique_event_name": "", "form": ""}]

    def import_form_event_mapping(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "design")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            pairs = []
            for row in rows:
                unique = str(row.get("unique_event_name", "")).strip()
                form = str(row.get("form", "")).strip()
                if unique not in d.event_by_unique:
                    raise exc.ApiError(f'The unique event name "{unique}" does not exist in the project.')
                if form not in d.form_map:
                    raise exc.ApiError(f'The instrument name (i.e., the unique form name) "{form}" does not exist in '
                                       "the project.")
                pairs.append((d.event_by_unique[unique].event_id, form))
            design_store.clear_event_forms(conn, d.pid)
            design_store.set_event_forms(conn, pairs)
            self._log(conn, d.pid, s.username, "MANAGE", "Designate instruments for events (API)")
        return len(pairs)

    def export_repeating(self, s: Session) -> list[dict]:
        self._need(s, "design", exc.ApiError("You do not have Project Setup/Design privileges"))
        with self.db.connection() as conn:
            d = self._design(conn, s)
        if not d.has_repeating:
            raise exc.NoRepeatingSetup()
        out = []
        for e in d.events:
            if d.is_repeating_event(e.event_id):
                out.append({"event_name": e.unique_name, "form_name": "",
                            "custom_form_label": d.repeating[(e.event_id, None)]})
            for f in d.forms:
                if d.is_repeating_form(e.event_id, f.name):
                    label = d.repeating[(e.event_id, f.name)]
                    out.append({"event_name": e.unique_name, "form_name": f.name, "custom_form_label": label}
                               if d.longitudinal else {"form_name": f.name, "custom_form_label": label})
        return out

    def import_repeating(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "design", exc.ApiError("You do not have Project Setup/Design privileges"))
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            title = d.project.title
            errors, out = [], []
            for row in rows:
                form = str(row.get("form_name", "") or "").strip()
                label = str(row.get("custom_form_label", "") or "")
                if d.longitudinal:
                    name = str(row.get("event_name", "") or "").strip()
                    event = d.event_by_unique.get(name)
                    if event is None:
                        errors.append(f"event '{name}' is not available in project '{title}'")
                        continue
                else:
                    event = d.first_event
                if form and form not in d.form_map:
                    errors.append(f"instrument '{form}' is not available in project '{title}'")
                    continue
                out.append((event.event_id, form or None, label))
            if errors:
                raise exc.ApiError("; ".join(errors))
            design_store.replace_repeating(conn, d.pid, out)
            self._log(conn, d.pid, s.username, "MANAGE", "Set up repeating instruments/events (API)")
        return len(out)

    # -- DAGs ---------------------------------------------------------------------------------------------------------
    def export_dags(self, s: Session) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
        if s.group_id is not None:
            raise exc.ApiError("You do not have permission to export Data Access Groups because you are assigned "
                               "to a Data Access Group.")
        return [{"data_access_group_name": g.name, "unique_group_name": g.unique_name, "data_access_group_id": g.group_id}
                for g in d.dags]

    def import_dags(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "data_access_groups")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            count = 0
            for row in rows:
                name = str(row.get("data_access_group_name", "")).strip()
                unique = str(row.get("unique_group_name", "") or "").strip()
                if not name:
                    raise exc.ApiError("The data_access_group_name is missing.")
                if unique == "":
                    design_store.add_dag(conn, d.pid, name)
                elif unique in d.dag_by_unique:
                    conn.execute("UPDATE redcap_data_access_groups SET group_name = ? WHERE group_id = ?",
                                 (name, d.dag_by_unique[unique].group_id))
                else:
                    raise exc.ApiError(f"The unique_group_name \"{unique}\" is not valid.")
                count += 1
            self._log(conn, d.pid, s.username, "MANAGE", "Create data access groups (API)")
        return count

    def delete_dags(self, s: Session, dags: list[str]) -> int:
        self._need(s, "data_access_groups")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            bad = [g for g in dags if g not in d.dag_by_unique]
            if bad or not dags:
                raise exc.ApiError("The following unique group names are not valid: " + ", ".join(bad))
            for g in dags:
                gid = d.dag_by_unique[g].group_id
                conn.execute("DELETE FROM redcap_data_access_groups WHERE group_id = ?", (gid,))
                conn.execute("UPDATE redcap_record_list SET dag_id = NULL WHERE dag_id = ?", (gid,))
                conn.execute("UPDATE redcap_user_rights SET group_id = NULL WHERE group_id = ?", (gid,))
            self._log(conn, d.pid, s.username, "MANAGE", "Delete data access groups (API)")
        return len(dags)

    def switch_dag(self, s: Session, dag: str) -> str:
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            gid = d.dag_by_unique[dag].group_id if dag in d.dag_by_unique else None
            if dag and gid is None:
                raise exc.ApiError(f"The DAG '{dag}' is not valid.")
            conn.execute("UPDATE redcap_user_rights SET group_id = ? WHERE project_id = ? AND username = ?",
                         (gid, d.pid, s.username))
        return "1"

    def export_user_dag_mapping(self, s: Session) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
            users = conn.execute("SELECT username, group_id FROM redcap_user_rights WHERE project_id = ?"
                                 " ORDER BY username", (d.pid,)).fetchall()
        return [{"username": u, "redcap_data_access_group": d.dag_by_id[g].unique_name if g in d.dag_by_id else ""}
                for u, g in users]

    def import_user_dag_mapping(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "data_access_groups")
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            count = 0
            for row in rows:
                user = str(row.get("username", "")).strip().lower()
                dag = str(row.get("redcap_data_access_group", "") or "").strip()
                if dag and dag not in d.dag_by_unique:
                    raise exc.ApiError(f"The Data Access Group '{dag}' does not exist.")
                cur = conn.execute("UPDATE redcap_user_rights SET group_id = ? WHERE project_id = ? AND username = ?",
                                   (d.dag_by_unique[dag].group_id if dag else None, d.pid, user))
                if cur.rowcount == 0:
                    raise exc.ApiError(f"The user '{user}' is not a user in this project.")
                count += 1
        return count

    # -- users and roles ------------------------------------------------------------------------------------------------
    def export_users(self, s: Session) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
            users = conn.execute(
                "SELECT r.username, u.user_email, u.user_firstname, u.user_lastname, r.expiration, r.group_id,"
                " r.rights, r.forms, r.forms_export FROM redcap_user_rights r LEFT JOIN redcap_user_information u"
                " ON u.username = r.username WHERE r.project_id = ? ORDER BY r.username", (d.pid,)).fetchall()
        out = []
        for name, email, first, last, expiration, gid, rights, forms, forms_export in users:
            rights, forms, forms_export = json.loads(rights), json.loads(forms), json.loads(forms_export)
            dag = d.dag_by_id.get(gid)
            row = {"username": name, "email": email or "", "firstname": first or "", "lastname": last or "",
                   "expiration": expiration or "", "data_access_group": dag.unique_name if dag else "",
                   "data_access_group_id": dag.group_id if dag else ""}
            row.update({k: int(rights.get(k, 0)) for k, _ in USER_RIGHTS})
            row["forms"] = {f.name: int(forms.get(f.name, 0)) for f in d.forms}
            row["forms_export"] = {f.name: int(forms_export.get(f.name, 0)) for f in d.forms}
            out.append(row)
        return out

    def import_users(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "user_rights", exc.ApiError("You do not have User Rights privileges"))
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            count = 0
            for row in rows:
                name = str(row.get("username", "")).strip().lower()
                if not name:
                    raise exc.ApiError("The username is missing.")
                current = conn.execute("SELECT rights, forms, forms_export FROM redcap_user_rights WHERE"
                                       " project_id = ? AND username = ?", (d.pid, name)).fetchone()
                if current is None:
                    rights = {k: 0 for k, _ in USER_RIGHTS}
                    forms = {f.name: 1 for f in d.forms}
                    forms_export = {f.name: 0 for f in d.forms}
                    conn.execute("INSERT INTO redcap_user_rights (project_id, username) VALUES (?, ?)", (d.pid, name))
                    conn.execute("INSERT OR IGNORE INTO redcap_user_information (username, user_email) VALUES (?, ?)",
                                 (name, name if "@" in name else ""))
                else:
                    rights, forms, forms_export = (json.loads(x) for x in current)
                for key, _ in USER_RIGHTS:
                    if key in row and str(row[key]).strip() != "":
                        rights[key] = int(float(str(row[key])))
                for key, target in (("forms", forms), ("forms_export", forms_export)):
                    value = row.get(key)
                    if isinstance(value, dict):
                        target.update({k: int(v) for k, v in value.items()})
                    elif isinstance(value, str) and value:
                        target.update({k: int(v) for k, _, v in (p.partition(":") for p in value.split(","))
                                       if v.strip().isdigit()})
                gid = None
                if row.get("data_access_group"):
                    dag = d.dag_by_unique.get(str(row["data_access_group"]))
                    gid = dag.group_id if dag else None
                conn.execute("UPDATE redcap_user_rights SET rights = ?, forms = ?, forms_export = ?, expiration = ?,"
                             " group_id = COALESCE(?, group_id) WHERE project_id = ? AND username = ?",
                             (json.dumps(rights), json.dumps(forms), json.dumps(forms_export),
                              str(row.get("expiration", "") or ""), gid, d.pid, name))
                count += 1
            self._log(conn, d.pid, s.username, "MANAGE", "Add/edit users (API)")
        return count

    def delete_users(self, s: Session, users: list[str]) -> int:
        self._need(s, "user_rights", exc.ApiError("You do not have User Rights privileges"))
        with self.db.transaction() as conn:
            count = 0
            for u in users:
                count += conn.execute("DELETE FROM redcap_user_rights WHERE project_id = ? AND username = ?",
                                      (s.project_id, u.strip().lower())).rowcount
            self._log(conn, s.project_id, s.username, "MANAGE", "Delete users (API)")
        return count

    def _roles(self, conn, pid: int) -> list[tuple[int, dict]]:
        return [(rid, dict(attrs)) for rid, attrs in group_rows(conn, pid, "UserRolesGroup")]

    def export_user_roles(self, s: Session) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
            roles = self._roles(conn, d.pid)
        out = []
        for _, r in roles:
            row = {"unique_role_name": r.get("unique_role_name", ""), "role_label": r.get("role_name", "")}
            for legacy, api in ROLE_ATTRS:
                row[api] = str(r.get(legacy, "0") or "0")
            entry = _parse_rights(r.get("data_entry", ""))
            export = _parse_rights(r.get("data_export_instruments", ""))
            row["forms"] = {f.name: entry.get(f.name, 0) for f in d.forms}
            row["forms_export"] = {f.name: export.get(f.name, 0) for f in d.forms}
            out.append(row)
        return out

    def import_user_roles(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "user_rights", exc.ApiError("You do not have User Rights privileges"))
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            roles = {r.get("unique_role_name"): (rid, r) for rid, r in self._roles(conn, d.pid)}
            for row in rows:
                unique = str(row.get("unique_role_name", "") or "").strip()
                if unique and unique in roles:
                    rid, attrs = roles[unique]
                else:
                    rid = None
                    unique = "U-" + "".join(secrets.choice(string.digits + string.ascii_uppercase) for _ in range(10))
                    attrs = {"role_name": "", "unique_role_name": unique} | {legacy: "0" for legacy, _ in ROLE_ATTRS}
                if "role_label" in row:
                    attrs["role_name"] = str(row["role_label"])
                for legacy, api in ROLE_ATTRS:
                    if api in row and str(row[api]).strip() != "":
                        attrs[legacy] = str(row[api])
                for key, legacy in (("forms", "data_entry"), ("forms_export", "data_export_instruments")):
                    if isinstance(row.get(key), dict):
                        attrs[legacy] = _rights_text({k: int(v) for k, v in row[key].items()})
                if rid is None:
                    conn.execute("INSERT INTO redcap_odm_rows (project_id, group_tag, row_tag, attrs) VALUES"
                                 " (?, 'UserRolesGroup', 'UserRoles', ?)", (d.pid, json.dumps(list(attrs.items()))))
                else:
                    conn.execute("UPDATE redcap_odm_rows SET attrs = ? WHERE row_id = ?",
                                 (json.dumps(list(attrs.items())), rid))
            self._log(conn, d.pid, s.username, "MANAGE", "Add/edit user roles (API)")
        return len(rows)

    def delete_user_roles(self, s: Session, roles: list[str]) -> int:
        self._need(s, "user_rights", exc.ApiError("You do not have User Rights privileges"))
        with self.db.transaction() as conn:
            existing = {r.get("unique_role_name"): rid for rid, r in self._roles(conn, s.project_id)}
            bad = [r for r in roles if r not in existing]
            if bad:
                raise exc.ApiError("The following roles are not valid: " + ", ".join(bad))
            for r in roles:
                conn.execute("DELETE FROM redcap_odm_rows WHERE row_id = ?", (existing[r],))
                conn.execute("UPDATE redcap_user_rights SET role_id = NULL WHERE project_id = ? AND role_id = ?",
                             (s.project_id, existing[r]))
        return len(roles)

    def export_user_role_mapping(self, s: Session) -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
            roles = {rid: r.get("unique_role_name", "") for rid, r in self._roles(conn, d.pid)}
            users = conn.execute("SELECT username, role_id, group_id FROM redcap_user_rights WHERE project_id = ?"
                                 " ORDER BY username", (d.pid,)).fetchall()
        return [{"username": u, "unique_role_name": roles.get(rid, ""),
                 "data_access_group": d.dag_by_id[g].unique_name if g in d.dag_by_id else ""} for u, rid, g in users]

    def import_user_role_mapping(self, s: Session, rows: list[dict]) -> int:
        self._need(s, "user_rights", exc.ApiError("You do not have User Rights privileges"))
        with self.db.transaction() as conn:
            roles = {r.get("unique_role_name"): rid for rid, r in self._roles(conn, s.project_id)}
            count = 0
            for row in rows:
                user = str(row.get("username", "")).strip().lower()
                role = str(row.get("unique_role_name", "") or "").strip()
                if role and role not in roles:
                    raise exc.ApiError(f"The role '{role}' does not exist.")
                cur = conn.execute("UPDATE redcap_user_rights SET role_id = ? WHERE project_id = ? AND username = ?",
                                   (roles.get(role), s.project_id, user))
                if cur.rowcount == 0:
                    raise exc.ApiError(f"The user '{user}' is not a user in this project.")
                count += 1
        return count

    # -- files --------------------------------------------------------------------------------------------------------
    def _file_target(self, conn, d: Design, record: str, field: str, event: str, repeat_instance: str,
                     must_exist: bool = True):
        f = d.field_map.get(field)
        if f is None or f.field_type != "file":
            raise exc.ApiError(f"The field '{field}' does not exist or is not a 'file' field")
        if d.longitudinal:
            if event not in d.event_by_unique:
                raise exc.ApiError("invalid event")
            event_id = d.event_by_unique[event].event_id
        else:
            event_id = d.first_event.event_id
        if must_exist and not data_store.record_exists(conn, d.pid, record):
            raise exc.ApiError(f'The record "{record}" does not exist')
        inst = int(repeat_instance) if str(repeat_instance).strip().isdigit() else 1
        repeating = d.is_repeating_event(event_id) or d.is_repeating_form(event_id, f.form)
        return f, event_id, (data_store.instance_key(inst) if repeating else None)

    def export_file(self, s: Session, record: str, field: str, event: str = "", repeat_instance: str = "") -> FileDownload:
        self._need(s, "api_export", exc.NoExportRights())
        with self.db.connection() as conn:
            d = self._design(conn, s)
            f, event_id, inst = self._file_target(conn, d, record, field, event, repeat_instance)
            row = conn.execute("SELECT value FROM redcap_data WHERE project_id = ? AND record = ? AND event_id = ?"
                               " AND field_name = ? AND instance IS ?", (d.pid, record, event_id, f.name, inst)).fetchone()
            doc = design_store.load_doc(conn, int(row[0])) if row and row[0].isdigit() else None
        if doc is None:
            raise exc.ApiError("There is no file to download for this record")
        return FileDownload(*doc)

    def import_file(self, s: Session, record: str, field: str, event: str, repeat_instance: str, name: str,
                    mime: str, content: bytes) -> None:
        self._need(s, "api_import", exc.NoImportRights())
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            if not data_store.record_exists(conn, d.pid, record):
                raise exc.ApiError(f"The record '{record}' does not exist. It must exist to upload a file")
            f, event_id, inst = self._file_target(conn, d, record, field, event, repeat_instance, must_exist=False)
            if f.validation == "signature":
                raise exc.ApiError("Signature fields cannot be uploaded via the API.")
            now = now_text()
            doc_id = design_store.store_doc(conn, d.pid, os.path.basename(name) or "file", mime, content, now)
            conn.execute("DELETE FROM redcap_data WHERE project_id = ? AND record = ? AND event_id = ? AND"
                         " field_name = ? AND instance IS ?", (d.pid, record, event_id, f.name, inst))
            rows = [(d.pid, event_id, record, f.name, str(doc_id), inst)]
            have = {n for (n,) in conn.execute(
                "SELECT field_name FROM redcap_data WHERE project_id = ? AND record = ? AND event_id = ? AND"
                " instance IS ?", (d.pid, record, event_id, inst))}
            if f"{f.form}_complete" not in have:
                rows.append((d.pid, event_id, record, f"{f.form}_complete", "0", inst))
            if d.pk not in have:
                rows.append((d.pid, event_id, record, d.pk, record, None))
            conn.executemany(data_store.INSERT_DATA, rows)
            self._log(conn, d.pid, s.username, "UPDATE", "Upload document (API)", record)

    def delete_file(self, s: Session, record: str, field: str, event: str = "", repeat_instance: str = "") -> None:
        self._need(s, "api_import", exc.NoImportRights())
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            f, event_id, inst = self._file_target(conn, d, record, field, event, repeat_instance)
            cur = conn.execute("DELETE FROM redcap_data WHERE project_id = ? AND record = ? AND event_id = ? AND"
                               " field_name = ? AND instance IS ?", (d.pid, record, event_id, f.name, inst))
            if cur.rowcount == 0:
                raise exc.ApiError("There is no file to delete for this record")
            self._log(conn, d.pid, s.username, "UPDATE", "Delete uploaded document (API)", record)

    # -- file repository ---------------------------------------------------------------------------------------------------
    def create_folder(self, s: Session, name: str, parent: str = "", dag_id: str = "", role_id: str = "") -> int:
        self._need(s, "file_repository")
        with self.db.transaction() as conn:
            return conn.execute(
                "INSERT INTO redcap_docs_folders (project_id, name, parent_folder_id, dag_id, role_id)"
                " VALUES (?, ?, ?, ?, ?)", (s.project_id, name, int(parent) if parent.isdigit() else None,
                                            int(dag_id) if dag_id.isdigit() else None,
                                            int(role_id) if role_id.isdigit() else None)).lastrowid

    def list_repository(self, s: Session, folder: str = "") -> list[dict]:
        self._need(s, "file_repository")
        parent = int(folder) if folder.isdigit() else None
        with self.db.connection() as conn:
            folders = conn.execute("SELECT folder_id, name FROM redcap_docs_folders WHERE project_id = ? AND"
                                   " parent_folder_id IS ?", (s.project_id, parent)).fetchall()
            files = conn.execute(
                "SELECT d.doc_id, e.doc_name FROM redcap_docs_to_edocs d JOIN redcap_edocs_metadata e ON"
                " e.doc_id = d.doc_id WHERE d.project_id = ? AND d.folder_id IS ?", (s.project_id, parent)).fetchall()
        out = [{"folder_id": i, "name": n} for i, n in sorted(folders, key=lambda r: data_store.natural_key(r[1]))]
        out += [{"doc_id": i, "name": n} for i, n in sorted(files, key=lambda r: data_store.natural_key(r[1]))]
        return out

    def import_repository_file(self, s: Session, name: str, mime: str, content: bytes, folder: str = "") -> None:
        self._need(s, "file_repository")
        with self.db.transaction() as conn:
            doc_id = design_store.store_doc(conn, s.project_id, os.path.basename(name) or "file", mime, content,
                                            now_text())
            conn.execute("INSERT INTO redcap_docs_to_edocs (project_id, doc_id, folder_id) VALUES (?, ?, ?)",
                         (s.project_id, doc_id, int(folder) if folder.isdigit() else None))

    def _repository_doc(self, conn, s: Session, doc_id: str) -> int:
        row = conn.execute("SELECT doc_id FROM redcap_docs_to_edocs WHERE project_id = ? AND doc_id = ?",
                           (s.project_id, int(doc_id) if doc_id.isdigit() else -1)).fetchone()
        if row is None:
            raise exc.ApiError("Invalid doc_id or missing doc_id")
        return row[0]

    def export_repository_file(self, s: Session, doc_id: str) -> FileDownload:
        self._need(s, "file_repository")
        with self.db.connection() as conn:
            doc = design_store.load_doc(conn, self._repository_doc(conn, s, doc_id))
        return FileDownload(*doc)

    def delete_repository_file(self, s: Session, doc_id: str) -> None:
        self._need(s, "file_repository")
        with self.db.transaction() as conn:
            doc = self._repository_doc(conn, s, doc_id)
            conn.execute("DELETE FROM redcap_docs_to_edocs WHERE doc_id = ?", (doc,))
            conn.execute("DELETE FROM redcap_edocs_metadata WHERE doc_id = ?", (doc,))

    # -- logging -----------------------------------------------------------------------------------------------------------
    _LOG_TYPES = {
        "export": ("DATA_EXPORT",), "manage": ("MANAGE",), "user": ("MANAGE",), "record": ("INSERT", "UPDATE", "DELETE"),
        "record_add": ("INSERT",), "record_edit": ("UPDATE",), "record_delete": ("DELETE",),
        "lock_record": ("LOCK_RECORD",), "page_view": ("PAGE_VIEW",),
    }
    _ACTIONS = {"MANAGE": "Manage/Design ", "INSERT": "Created Record", "UPDATE": "Updated Record",
                "DELETE": "Deleted Record", "DATA_EXPORT": "Data Export"}

    def export_log(self, s: Session, *, logtype: str = "", user: str = "", record: str = "", dag: str = "",
                   begin: str = "", end: str = "") -> list[dict]:
        self._need(s, "logging", exc.ApiError("You do not have Logging privileges"))
        sql = "SELECT ts, user, event, description, pk, data_values FROM redcap_log_event WHERE project_id = ?"
        args: list = [s.project_id]
        if logtype in self._LOG_TYPES:
            kinds = self._LOG_TYPES[logtype]
            sql += f" AND event IN ({','.join('?' * len(kinds))})"
            args += kinds
            if logtype == "user":
                sql += " AND description LIKE '%user%'"
        if user:
            sql += " AND user = ?"
            args.append(user)
        if record:
            sql += " AND pk = ?"
            args.append(record)
        if begin:
            sql += " AND ts >= ?"
            args.append(begin)
        if end:
            sql += " AND ts <= ?"
            args.append(end if len(end) > 16 else end + ":59")
        sql += " ORDER BY log_event_id DESC"
        with self.db.connection() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [{"timestamp": ts[:16], "username": u, "action": self._ACTIONS.get(ev, ev.title()),
                 "details": desc + (f" ({details})" if details else ""), "record": pk}
                for ts, u, ev, desc, pk, details in rows]

    # -- surveys and PDF --------------------------------------------------------------------------------------------------------
    def _survey_target(self, conn, d: Design, record: str, instrument: str, event: str, repeat_instance: str):
        if not record:
            raise exc.ApiError("The parameter 'record' is missing")
        if instrument not in d.form_map:
            raise exc.ApiError(f"The instrument '{instrument}' does not exist")
        if instrument not in d.surveys:
            raise exc.ApiError(f"The instrument '{instrument}' has not been enabled as a survey")
        if d.longitudinal:
            if event not in d.event_by_unique:
                raise exc.ApiError("invalid event")
            event_id = d.event_by_unique[event].event_id
        else:
            event_id = d.first_event.event_id
        inst = int(repeat_instance) if str(repeat_instance).strip().isdigit() else 1
        return event_id, inst

    def _participant(self, s: Session, record: str, instrument: str, event: str, repeat_instance: str) -> tuple:
        with self.db.transaction() as conn:
            d = self._design(conn, s)
            event_id, inst = self._survey_target(conn, d, record, instrument, event, repeat_instance)
            row = conn.execute("SELECT hash, access_code, return_code FROM redcap_surveys_response WHERE project_id = ?"
                               " AND record = ? AND event_id = ? AND form_name = ? AND instance = ?",
                               (d.pid, record, event_id, instrument, inst)).fetchone()
            if row is None:
                alphabet = string.ascii_uppercase + string.digits
                row = ("".join(secrets.choice(alphabet) for _ in range(10)),
                       "".join(secrets.choice(alphabet) for _ in range(9)),
                       "".join(secrets.choice(string.ascii_uppercase) for _ in range(8)))
                conn.execute("INSERT INTO redcap_surveys_response (project_id, record, event_id, form_name, instance,"
                             " hash, access_code, return_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (d.pid, record, event_id, instrument, inst, *row))
        return row

    def survey_link(self, s: Session, record: str, instrument: str, event: str = "", repeat_instance: str = "") -> str:
        return f"{self.base_url}surveys/?s={self._participant(s, record, instrument, event, repeat_instance)[0]}"

    def survey_access_code(self, s: Session, record: str, instrument: str, event: str = "",
                           repeat_instance: str = "") -> str:
        return self._participant(s, record, instrument, event, repeat_instance)[1]

    def survey_return_code(self, s: Session, record: str, instrument: str, event: str = "",
                           repeat_instance: str = "") -> str:
        return self._participant(s, record, instrument, event, repeat_instance)[2]

    def survey_queue_link(self, s: Session, record: str) -> str:
        if not record:
            raise exc.ApiError("The parameter 'record' is missing")
        with self.db.connection() as conn:
            d = self._design(conn, s)
            if not data_store.record_exists(conn, d.pid, record):
                raise exc.ApiError(f"The record '{record}' does not exist")
        digest = hashlib.sha1(f"{d.pid}:{record}".encode()).hexdigest().upper()[:10]
        return f"{self.base_url}surveys/?sq={digest}"

    def participant_list(self, s: Session, instrument: str, event: str = "") -> list[dict]:
        with self.db.connection() as conn:
            d = self._design(conn, s)
            event_id, _ = self._survey_target(conn, d, "-", instrument, event, "")
            rows = conn.execute("SELECT record, hash, access_code FROM redcap_surveys_response WHERE project_id = ?"
                                " AND event_id = ? AND form_name = ? ORDER BY record", (d.pid, event_id, instrument)
                                ).fetchall()
        return [{"email": "", "email_occurrence": 1, "identifier": "", "phone": "", "record": record,
                 "invitation_sent_status": 0, "invitation_send_time": "", "response_status": 0,
                 "survey_access_code": code, "survey_link": f"{self.base_url}surveys/?s={h}",
                 "survey_queue_link": ""} for record, h, code in rows]

    def export_pdf(self, s: Session, *, record: str = "", event: str = "", instrument: str = "") -> FileDownload:
        from harness.sandbox.pdf import instruments_pdf

        with self.db.connection() as conn:
            d = self._design(conn, s)
        if instrument and instrument not in d.form_map:
            raise exc.ApiError(f"The instrument '{instrument}' does not exist")
        forms = [f for f in d.forms if not instrument or f.name == instrument]
        lines = [d.project.title, ""] + [f"{f.label} ({f.name})" for f in forms]
        if record:
            lines.insert(1, f"Record {record}")
        return FileDownload(f"{re.sub(r'[^A-Za-z0-9]+', '', d.project.title)[:30] or 'project'}.pdf",
                            "application/pdf", instruments_pdf(lines))


__all__ = ["SandboxBackend", "Session", "ProjectXml", "FlatExport", "FileDownload", "Flags"]
