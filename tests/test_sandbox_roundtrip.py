"""Restore every real export into the sandbox and export it again: only REDCap's own differences remain."""

from __future__ import annotations

import json

import pytest
import requests

from harness.sandbox.fixtures import redcap_sandbox  # noqa: F401 - the fixture
from sandbox_helpers import corpus_file, corpus_files
from sandbox_roundtrip import compare, read

VALIDATION_TYPES = "redcapr-validation-types-14.7.3.xml"


def restore_and_export(sandbox, raw: bytes) -> bytes:
    """Create Project with A's own title/purpose/notes, then API project_xml with every flag on."""
    meta, _ = read(raw)
    attrs = {"project_title": meta.title, "purpose": meta.settings.get("Purpose") or "0",
             "purpose_other": meta.settings.get("PurposeOther", ""),
             "project_notes": meta.settings.get("ProjectNotes", "")}
    r = requests.post(sandbox.url, data={"token": sandbox.super_token, "content": "project", "format": "json",
                                         "data": json.dumps([attrs]), "odm": raw}, timeout=120)
    assert r.status_code == 200, r.text
    x = requests.post(sandbox.url, data={"token": r.text, "content": "project_xml", "returnFormat": "json",
                                         "exportFiles": "true", "exportDataAccessGroups": "true",
                                         "exportSurveyFields": "true"}, timeout=120)
    assert x.status_code == 200, x.text
    return x.content


@pytest.mark.parametrize("path", [p for p in corpus_files() if p.name != VALIDATION_TYPES] or
                         [pytest.param(None, marks=pytest.mark.skip(reason="shared corpus absent"))],
                         ids=lambda p: p.stem if p else "none")
def test_a_restored_export_reexports_with_only_documented_differences(redcap_sandbox, path):
    raw = path.read_bytes()
    result = compare(raw, restore_and_export(redcap_sandbox, raw))
    assert result.differences == []


def test_the_reexport_is_a_15_7_6_api_export(redcap_sandbox):
    raw = corpus_file("pycap-simple-11.2.3.xml").read_bytes()
    b = restore_and_export(redcap_sandbox, raw)
    assert b.startswith(b'<?xml version="1.0" encoding="UTF-8" ?>\n<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"')
    assert b.endswith(b"</ODM>")
    meta, _ = read(b)
    assert meta.header.source_system_version == "15.7.6"
    assert meta.header.file_oid == "000-00-0000"


def test_settings_unknown_to_15_7_and_empty_ones_are_the_only_setting_changes(redcap_sandbox):
    raw = corpus_file("pycap-simple-11.2.3.xml").read_bytes()
    result = compare(raw, restore_and_export(redcap_sandbox, raw))
    assert result.excused >= {"setting unknown to REDCap 15.7 dropped", "empty setting shows the target default"}


def test_report_ids_and_share_links_are_regenerated(redcap_sandbox):
    raw = corpus_file("redcapr-simple-14.7.3.xml").read_bytes()
    b_meta, _ = read(restore_and_export(redcap_sandbox, raw))
    a_meta, _ = read(raw)
    a_reports, b_reports = a_meta.group("ReportsGroup").rows, b_meta.group("ReportsGroup").rows
    assert [r.get("title") for r in a_reports] == [r.get("title") for r in b_reports]
    assert all(r.get("hash") == "" and r.get("ID") for r in b_reports)
    assert {r.get("ID") for r in a_reports}.isdisjoint({r.get("ID") for r in b_reports})


def test_a_repeating_event_from_before_14_is_flagged_repeating_on_reexport(redcap_sandbox):
    raw = corpus_file("etl-repeating-events-8.1.10.xml").read_bytes()
    b_meta, _ = read(restore_and_export(redcap_sandbox, raw))
    assert [e.unique_name for e in b_meta.events if e.repeating] == ["visit_arm_1", "visit_arm_2", "visit_arm_3"]


def test_the_dynamic_sql_field_of_a_15_x_export_is_refused_as_real_redcap_refuses_it(redcap_sandbox):
    raw = corpus_file(VALIDATION_TYPES).read_bytes()
    before = redcap_sandbox.backend.project_count()
    r = requests.post(redcap_sandbox.url, data={
        "token": redcap_sandbox.super_token, "content": "project", "format": "json",
        "data": json.dumps([{"project_title": "sql", "purpose": "0"}]), "odm": raw}, timeout=60)
    assert r.status_code == 400
    assert r.json() == {"error": "Each multiple choice field (radio, drop-down, checkbox, etc.) must have choices "
                                 "listed in column F, but the following  cells have choices missing: F12"}
    assert redcap_sandbox.backend.project_count() == before
