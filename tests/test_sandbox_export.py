"""``content=project_xml`` with every parameter, read back with the harness's own reader."""

from __future__ import annotations

import pytest

from harness.sandbox.fixtures import redcap_sandbox  # noqa: F401 - the fixture
from sandbox_helpers import corpus_file, create_project, post
from sandbox_roundtrip import read


@pytest.fixture(scope="module")
def files_and_dags(redcap_sandbox) -> str:
    """REDCapR's simple project: 5 records, two DAGs, embedded files."""
    return create_project(redcap_sandbox, corpus_file("redcapr-simple-14.7.3.xml").read_bytes(), title="REDCapR: simple")


@pytest.fixture(scope="module")
def longitudinal(redcap_sandbox) -> str:
    return create_project(redcap_sandbox, corpus_file("example-longitudinal.xml").read_bytes(), title="Example")


def export(sandbox, token, **params) -> bytes:
    r = post(sandbox.url, token=token, content="project_xml", returnFormat="json", **params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/xml; charset=utf-8"
    return r.content


def test_metadata_only_has_no_clinical_data(redcap_sandbox, files_and_dags):
    xml = export(redcap_sandbox, files_and_dags, returnMetadataOnly="true")
    assert b"<ClinicalData" not in xml and xml.endswith(b"</Study>\n</ODM>")
    meta, records = read(xml)
    assert records == [] and len(meta.fields) == 20


def test_records_and_fields_narrow_the_data_but_never_the_metadata(redcap_sandbox, files_and_dags):
    meta, records = read(export(redcap_sandbox, files_and_dags, **{"records[0]": "3", "records[1]": "1",
                                                                    "fields[0]": "name_first"}))
    assert [r.record_id for r in records] == ["1", "3"]
    assert {item for r in records for (_, _, _, item) in dict(r.items())} == {"record_id", "name_first"}
    assert len(meta.fields) == 20


def test_events_and_filter_logic_select_rows(redcap_sandbox, longitudinal):
    _, records = read(export(redcap_sandbox, longitudinal, events="follow_up_arm_1"))
    assert {row.event for r in records for row in r.rows} == {"follow_up_arm_1"}
    _, records = read(export(redcap_sandbox, longitudinal, filterLogic="[sex] = '1'"))
    assert [r.record_id for r in records] == ["2", "10"]


def test_bad_filter_logic_is_a_400(redcap_sandbox, longitudinal):
    r = post(redcap_sandbox.url, token=longitudinal, content="project_xml", returnFormat="json",
             filterLogic="[sex] = ")
    assert r.status_code == 400 and r.json()["error"].startswith("The filterLogic parameter is not valid")


def test_dag_values_only_with_export_data_access_groups(redcap_sandbox, files_and_dags):
    _, without = read(export(redcap_sandbox, files_and_dags))
    _, with_dags = read(export(redcap_sandbox, files_and_dags, exportDataAccessGroups="true"))
    assert {r.dag for r in without} == {""}
    assert [r.dag for r in with_dags] == ["dag_1", "dag_1", "dag_1", "", "dag_2"]


def test_files_are_embedded_only_with_export_files(redcap_sandbox, files_and_dags):
    assert b"<ItemDataBase64Binary" not in export(redcap_sandbox, files_and_dags)
    _, records = read(export(redcap_sandbox, files_and_dags, exportFiles="true"))
    files = [f for r in records for row in r.rows for f in row.files.values()]
    assert len(files) == 5 and all(f.mime_type == "image/jpeg" and f.content[:3] == b"\xff\xd8\xff" for f in files)


def test_survey_fields_appear_only_for_projects_with_surveys(redcap_sandbox):
    token = create_project(redcap_sandbox, corpus_file("pycap-long-15.2.1.xml").read_bytes(), title="Long")
    meta, _ = read(export(redcap_sandbox, token, exportSurveyFields="true"))
    assert meta.pseudo_fields == ("redcap_survey_identifier", "contact_info_timestamp")
    meta, _ = read(export(redcap_sandbox, token))
    assert meta.pseudo_fields == ()


def test_a_project_token_is_required(redcap_sandbox):
    r = post(redcap_sandbox.url, token=redcap_sandbox.super_token, content="project_xml", returnFormat="json")
    assert (r.status_code, r.json()) == (403, {"error": "You do not have permissions to use the API"})
