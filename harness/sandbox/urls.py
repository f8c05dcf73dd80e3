"""Routing: one POST endpoint, a table from (content, action) to a handler.

``dispatch`` applies REDCap's order of checks (``RestUtility::processRequest``
and ``API/index.php``): content valid, Create Project and 64-char version
calls on the super-token path, ``file`` actions valid, the project token,
then the handler. A real REDCap call without a handler here gets REDCap's
own "not valid" error and a "not implemented in sandbox" log line, never a
fake success.
"""

from __future__ import annotations

import logging

from harness.sandbox import exceptions as exc
from harness.sandbox import responses as r
from harness.sandbox.models import SandboxBackend
from harness.sandbox.params import Params

log = logging.getLogger("harness.sandbox")

#: Every ``content`` REDCap 15.7.6 accepts (API/index.php).
VALID_CONTENT = frozenset({
    "record", "metadata", "file", "fileRepository", "repeatingFormsEvents", "instrument", "event", "arm", "user",
    "project_settings", "report", "authkey", "version", "pdf", "surveyLink", "surveyAccessCode", "surveyQueueLink",
    "surveyReturnCode", "participantList", "exportFieldNames", "appRightsCheck", "formEventMapping",
    "fieldValidation", "attachment", "project", "generateNextRecordName", "project_xml", "dag", "userDagMapping",
    "log", "tableau", "mycap", "userRole", "userRoleMapping", "externalModule",
})

ROUTES = {
    ("version", "export"): r.export_version,
    ("project", "export"): r.export_project_info,
    ("project_settings", "import"): r.import_project_settings,
    ("project_xml", "export"): r.export_project_xml,
    ("record", "export"): r.export_records,
    ("record", "import"): r.import_records,
    ("record", "delete"): r.delete_records,
    ("record", "rename"): r.rename_record,
    ("report", "export"): r.export_report,
    ("generateNextRecordName", "export"): r.generate_next_record_name,
    ("metadata", "export"): r.export_metadata,
    ("metadata", "import"): r.import_metadata,
    ("instrument", "export"): r.export_instruments,
    ("exportFieldNames", "export"): r.export_field_names,
    ("arm", "export"): r.export_arms,
    ("arm", "import"): r.import_arms,
    ("arm", "delete"): r.delete_arms,
    ("event", "export"): r.export_events,
    ("event", "import"): r.import_events,
    ("event", "delete"): r.delete_events,
    ("formEventMapping", "export"): r.export_form_event_mapping,
    ("formEventMapping", "import"): r.import_form_event_mapping,
    ("repeatingFormsEvents", "export"): r.export_repeating,
    ("repeatingFormsEvents", "import"): r.import_repeating,
    ("dag", "export"): r.export_dags,
    ("dag", "import"): r.import_dags,
    ("dag", "delete"): r.delete_dags,
    ("dag", "switch"): r.switch_dag,
    ("userDagMapping", "export"): r.export_user_dag_mapping,
    ("userDagMapping", "import"): r.import_user_dag_mapping,
    ("user", "export"): r.export_users,
    ("user", "import"): r.import_users,
    ("user", "delete"): r.delete_users,
    ("userRole", "export"): r.export_user_roles,
    ("userRole", "import"): r.import_user_roles,
    ("userRole", "delete"): r.delete_user_roles,
    ("userRoleMapping", "export"): r.export_user_role_mapping,
    ("userRoleMapping", "import"): r.import_user_role_mapping,
    ("file", "export"): r.export_file,
    ("file", "import"): r.import_file,
    ("file", "delete"): r.delete_file,
    ("fileRepository", "createFolder"): r.create_folder,
    ("fileRepository", "list"): r.list_repository,
    ("fileRepository", "import"): r.import_repository_file,
    ("fileRepository", "export"): r.export_repository_file,
    ("fileRepository", "delete"): r.delete_repository_file,
    ("log", "export"): r.export_log,
    ("surveyLink", "export"): r.survey_link,
    ("surveyQueueLink", "export"): r.survey_queue_link,
    ("surveyAccessCode", "export"): r.survey_access_code,
    ("surveyReturnCode", "export"): r.survey_return_code,
    ("participantList", "export"): r.participant_list,
    ("pdf", "export"): r.export_pdf,
}


def dispatch(backend: SandboxBackend, p: Params) -> r.Reply:
    content = p.content
    if content not in VALID_CONTENT:
        raise exc.InvalidContent()
    if content == "project" and p.get("data").strip():
        return r.create_project(backend, p)
    if content == "version" and len(p.token) == 64:
        backend.super_user(p.token)
        return r.export_version(backend, None, p)
    action = p.action
    if content == "file" and action not in ("export", "import", "delete", "import_app"):
        raise exc.InvalidAction()
    session = backend.session(p.token)
    handler = ROUTES.get((content, action))
    if handler is None:
        log.warning("sandbox: content=%s action=%s is not implemented in sandbox", content, action)
        raise exc.NotImplementedInSandbox()
    return handler(backend, session, p)
