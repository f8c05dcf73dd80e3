"""Every other ``redcap:*Group``: kept as rows, written back as REDCap would.

REDCap's ``ODM::addArrayToTable`` spreads these groups over dozens of
``redcap_*`` tables and ``getOdmFromArray`` writes them back. The sandbox
keeps each row as an ordered attribute list in ``redcap_odm_rows`` and
applies the same transformations on the way in and out (§5.3, §6.1):

* ``OdmAttachment`` contents become documents; references to an attachment
  ``ID`` point at the document, and every export invents new random IDs;
* ``ID`` of reports, dashboards and e-consent rows is ``sha1`` of the new
  internal id; report ``hash``/``short_url``/``is_public`` are dropped;
* alert senders and ASI senders become the importing user's address;
* classic projects point survey-queue and ASI events at ``event_1_arm_1``;
* MyCap groups are dropped (MyCap is off in the sandbox).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3

from fnmatch import fnmatchcase

from harness.compare.known import DROPPED_ON_IMPORT, IMPORTER_EMAIL_ATTRIBUTES
from harness.odm.model import CLASSIC_EVENT, ExtensionGroup, ExtensionRow
from harness.sandbox.design_store import load_doc, store_doc

ATTACHMENT_GROUP = "OdmAttachmentGroup"
DAG_GROUP = "DataAccessGroupsGroup"
_DOC = "\x00doc:"  # marks an attribute that references a stored attachment

#: 15.7.6's order of groups in GlobalVariables; unknown ones follow in stored order.
GROUP_ORDER = (
    "DataQualityRulesGroup", "DataAccessGroupsGroup", "SurveysGroup", "EconsentGroup", "EconsentFormsGroup",
    "PdfSnapshotsGroup", "SurveysSchedulerGroup", "SurveysQueueGroup", "UserRolesGroup", "UserRoles2Group",
    "ReportsGroup", "ReportsFoldersGroup", "ReportsFoldersItemsGroup", "RecordDashboardsGroup",
    "DdpMappingGroup", "DdpPreviewFieldsGroup", "AlertsGroup", "RandomizationGroup",
    "DescriptivePopupsGroup", "EhrDatamartRevisionsGroup", "ProjectDashboardsGroup",
    "ProjectDashboardsFoldersGroup", "ProjectDashboardsFoldersItemsGroup", "FormDisplayLogicConditionsGroup",
    "MultilanguageSettingsGroup",
)
_ID_GROUPS = {"ReportsGroup", "ProjectDashboardsGroup", "EconsentGroup"}
_SENDER = {group: attrs[0] for group, attrs in IMPORTER_EMAIL_ATTRIBUTES.items()}


def _dropped(group: str, attr: str) -> bool:
    return any(fnmatchcase(attr, pattern) for pattern in DROPPED_ON_IMPORT.get(group, ()))


def store_groups(conn: sqlite3.Connection, pid: int, groups: tuple[ExtensionGroup, ...], *, classic: bool,
                 user_email: str, now: str) -> None:
    """``addArrayToTable`` for every group except DAGs (stored as DAGs) and MyCap."""
    docs: dict[str, int] = {}
    for g in groups:
        if g.tag != ATTACHMENT_GROUP:
            continue
        for row in g.rows:
            content = base64.b64decode("".join((row.text or "").split()) or b"")
            doc_id = store_doc(conn, pid, row.get("DocName"), row.get("MimeType"), content, now)
            docs[row.get("ID")] = doc_id
            conn.execute("INSERT INTO redcap_odm_rows (project_id, group_tag, row_tag, attrs, doc_id)"
                         " VALUES (?, ?, ?, ?, ?)", (pid, g.tag, g.row_tag,
                                                     json.dumps([["DocName", row.get("DocName")],
                                                                 ["MimeType", row.get("MimeType")]]), doc_id))
    rows = []
    for g in groups:
        if g.tag in (ATTACHMENT_GROUP, DAG_GROUP) or g.tag.lower().startswith("mycap"):
            continue
        for row in g.rows:
            attrs = []
            for key, value in row.attrs:
                if value in docs and value:
                    value = f"{_DOC}{docs[value]}"
                elif _dropped(g.tag, key):
                    value = "0" if key == "is_public" else ""
                elif _SENDER.get(g.tag) == key and value and value.lower() != user_email.lower():
                    value = user_email
                elif classic and key.endswith("event_id") and value and g.tag in (
                        "SurveysQueueGroup", "SurveysSchedulerGroup"):
                    value = CLASSIC_EVENT
                attrs.append([key, value])
            rows.append((pid, g.tag, g.row_tag, json.dumps(attrs)))
        if not g.rows:
            # An empty wrapper leaves no trace: REDCap 15.7 writes none for an empty table.
            continue
    conn.executemany("INSERT INTO redcap_odm_rows (project_id, group_tag, row_tag, attrs) VALUES (?, ?, ?, ?)",
                     rows)


def group_rows(conn: sqlite3.Connection, pid: int, tag: str) -> list[tuple[int, list[list[str]]]]:
    return [(rid, json.loads(a)) for rid, a in conn.execute(
        "SELECT row_id, attrs FROM redcap_odm_rows WHERE project_id = ? AND group_tag = ? ORDER BY row_id",
        (pid, tag))]


def export_groups(conn: sqlite3.Connection, pid: int, dag_names: list[str]) -> tuple[ExtensionGroup, ...]:
    """The groups as ``getOdmFromArray`` writes them, with fresh attachment IDs."""
    by_tag: dict[str, tuple[str, list[ExtensionRow]]] = {}
    order: list[str] = []
    fresh_ids: dict[int, str] = {}

    def attachment_id(doc_id: int) -> str:
        if doc_id not in fresh_ids:
            fresh_ids[doc_id] = hashlib.sha1(os.urandom(16)).hexdigest()
        return fresh_ids[doc_id]

    if dag_names:
        by_tag[DAG_GROUP] = ("DataAccessGroups", [ExtensionRow((("group_name", n),)) for n in dag_names])
        order.append(DAG_GROUP)
    for rid, tag, row_tag, attrs, doc_id in conn.execute(
            "SELECT row_id, group_tag, row_tag, attrs, doc_id FROM redcap_odm_rows WHERE project_id = ?"
            " ORDER BY row_id", (pid,)):
        if tag == ATTACHMENT_GROUP:
            continue
        out = []
        for key, value in json.loads(attrs):
            if value.startswith(_DOC):
                value = attachment_id(int(value[len(_DOC):]))
            elif key == "ID" and tag in _ID_GROUPS:
                value = hashlib.sha1(f"{pid}:{rid}".encode()).hexdigest()
            out.append((key, value))
        if tag not in by_tag:
            by_tag[tag] = (row_tag, [])
            order.append(tag)
        by_tag[tag][1].append(ExtensionRow(tuple(out)))
    if fresh_ids:
        rows = []
        for doc_id, new_id in fresh_ids.items():
            doc = load_doc(conn, doc_id)
            if doc is None:
                continue
            rows.append(ExtensionRow((("DocName", doc[0]), ("MimeType", doc[1]), ("ID", new_id)),
                                     base64.b64encode(doc[2]).decode("ascii")))
        by_tag[ATTACHMENT_GROUP] = ("OdmAttachment", rows)
        order.append(ATTACHMENT_GROUP)
    rank = {t: i for i, t in enumerate(GROUP_ORDER)}
    order.sort(key=lambda t: (t == ATTACHMENT_GROUP, rank.get(t, len(rank))))
    return tuple(ExtensionGroup(t, by_tag[t][0], tuple(by_tag[t][1])) for t in order)
