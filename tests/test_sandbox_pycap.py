"""PyCap 2.7 drives the sandbox unchanged, as it drives a real REDCap.

The projects are PyCap's own integration-test projects (in the shared corpus
as ``pycap-simple-11.2.3.xml`` and ``pycap-long-15.2.1.xml``), created the
way PyCap's ``tests/integration/conftest.py`` does; the assertions follow
PyCap's integration tests against redcapdemo.
"""

from __future__ import annotations

import io
import tempfile
from datetime import datetime

import pytest
import requests
import semantic_version

redcap = pytest.importorskip("redcap", reason="PyCap is not installed (pip install -e '.[test]')")
from redcap import Project, RedcapError  # noqa: E402

from harness.sandbox.fixtures import redcap_sandbox  # noqa: E402,F401 - the fixture
from sandbox_helpers import corpus_file  # noqa: E402


def pycap_create(url: str, super_token: str, xml: str, stem: str) -> str:
    """PyCap's ``create_project``: XML attributes with their indentation, then ``res.text[-32:]``."""
    title = f"PyCap {stem}: {datetime.now().strftime('%m-%d %H:%M:%S')}"
    info = f"""<?xml version="1.0" encoding="UTF-8" ?>
    <item>
    <project_title>{title}</project_title>
    <purpose>0</purpose>
    </item>"""
    res = requests.post(url=url, data={"token": super_token, "content": "project", "format": "xml",
                                       "data": info, "odm": xml}, timeout=60)
    return res.text[-32:]


def grant_superuser_rights(proj: Project) -> Project:
    superuser = proj.export_users()[0]
    superuser.update(record_delete=1, record_rename=1, lock_records_all_forms=1, lock_records=1)
    assert proj.import_users([superuser]) == 1
    return proj


def add_files_to_repository(proj: Project) -> Project:
    new_folder = proj.create_folder_in_repository("test").pop()
    with tempfile.NamedTemporaryFile(mode="w+t") as tmp_file:
        tmp_file.write("hello")
        tmp_file.seek(0)
        proj.import_file_into_repository(file_name="test.txt", file_object=tmp_file)
        proj.import_file_into_repository(file_name="test_in_folder.txt", file_object=tmp_file,
                                         folder_id=new_folder["folder_id"])
    return proj


@pytest.fixture(scope="module")
def simple(redcap_sandbox) -> Project:
    xml = corpus_file("pycap-simple-11.2.3.xml").read_text(encoding="utf-8")
    token = pycap_create(redcap_sandbox.url, redcap_sandbox.super_token, xml, "test_simple_project")
    return add_files_to_repository(grant_superuser_rights(Project(redcap_sandbox.url, token)))


@pytest.fixture(scope="module")
def long(redcap_sandbox) -> Project:
    xml = corpus_file("pycap-long-15.2.1.xml").read_text(encoding="utf-8")
    token = pycap_create(redcap_sandbox.url, redcap_sandbox.super_token, xml, "test_long_project")
    return grant_superuser_rights(Project(redcap_sandbox.url, token))


# -- the simple (classic) project ----------------------------------------------------------------
def test_simple_project_is_not_longitudinal(simple):
    assert not simple.is_longitudinal


def test_records_export_and_always_carry_the_record_id(simple):
    assert len(simple.export_records()) == 3
    assert "record_id" in simple.export_records(fields=["first_name"])[0]


def test_eav_export_has_one_row_per_stored_value(simple):
    rows = simple.export_records(record_type="eav")
    assert {r["record"] for r in rows} == {"1", "2", "3"}
    # PyCap's redcapdemo test sees 30: those 3 records without the 4 values of the calc fields
    # age and bmi. The sandbox recomputes calcs on import as the research says REDCap does, so
    # it stores those 4 as well; see the note in the sandbox report.
    assert len(rows) == 34
    assert len([r for r in rows if r["field_name"] not in ("age", "bmi")]) == 30


def test_import_and_delete_records_with_each_return_content(simple):
    new = [{"record_id": i} for i in (4, 5, 6)]
    assert simple.import_records(new)["count"] == 3
    assert simple.import_records(new, return_content="ids") == ["4", "5", "6"]
    assert simple.import_records(new, return_content="nothing") == [{}]
    assert simple.delete_records([4, 5, 6]) == 3


@pytest.mark.parametrize("return_format_type,import_output,delete_output", [
    ("csv", "3", "3"),
    ("xml", '<?xml version="1.0" encoding="UTF-8" ?><count>3</count>', "3"),
])
def test_import_and_delete_records_non_json(simple, return_format_type, import_output, delete_output):
    csv = "record_id\n" + "\n".join(["4", "5", "6"])
    assert simple.import_records(csv, import_format="csv", return_format_type=return_format_type) == import_output
    assert simple.delete_records(["4", "5", "6"], return_format_type=return_format_type) == delete_output


def test_exported_records_import_back_unchanged(simple):
    before = simple.export_records()
    assert simple.import_records(before)["count"] == 3
    assert simple.export_records() == before


def test_dataframes_round_trip_when_pandas_is_there(simple):
    pd = pytest.importorskip("pandas", reason="pandas is not installed; PyCap's df format needs it")
    df = simple.export_records(format_type="df")
    assert len(df) == 3
    assert simple.import_records(pd.DataFrame(df).reset_index(), import_format="df")["count"] == 3


def test_version_is_15_7_6(simple):
    assert simple.export_version() == semantic_version.Version("15.7.6")


def test_users_export_and_roles(simple):
    users = simple.export_users()
    assert len(users) == 1 and users[0]["api_export"] == 1
    roles = simple.export_user_roles()
    assert len(roles) == 1 and roles[0]["role_label"] == "Example Role"
    assert simple.import_user_roles([{"role_label": "New Role"}]) == 1
    new_role = simple.export_user_roles()[-1]["unique_role_name"]
    assert new_role.startswith("U-") and len(new_role) == 12
    assert simple.delete_user_roles([new_role]) == 1


def test_user_role_assignments(simple):
    new_user = "pandeharris@gmail.com"
    simple.import_users([{"username": new_user}])
    role = simple.export_user_roles()[0]["unique_role_name"]
    assert simple.import_user_role_assignment([{"username": new_user, "unique_role_name": role}]) == 1
    mapping = {m["username"]: m["unique_role_name"] for m in simple.export_user_role_assignment()}
    assert mapping[new_user] == role
    assert simple.delete_users([new_user]) == 1


def test_dags_and_user_dag_assignment(simple):
    assert len(simple.export_dags()) == 1
    assert simple.import_dags([{"data_access_group_name": "New DAG", "unique_group_name": ""}],
                              return_format_type="csv") == "1"
    assert simple.delete_dags(["new_dag"]) == 1
    mapping = simple.export_user_dag_assignment()
    assert len(mapping) == 1
    assert simple.import_user_dag_assignment(mapping, return_format_type="csv") == "1"


def test_field_names_and_instruments(simple):
    assert len(simple.export_field_names()) == 16
    assert len(simple.export_field_names(field="first_name")) == 1
    assert len(simple.export_instruments()) == 1


def test_pdf_is_a_pdf(simple):
    content, headers = simple.export_pdf()
    assert content.startswith(b"%PDF-") and headers["name"].endswith(".pdf")


def test_metadata_export_and_import(simple):
    original = simple.export_metadata()
    assert len(original) == 15
    assert simple.import_metadata(original[:14]) == 14
    assert simple.import_metadata(original) == 15
    csv = simple.export_metadata("csv")
    assert "field_name,form_name" in csv
    assert simple.import_metadata(to_import=csv, import_format="csv") == 15


def test_project_info_and_logging(simple):
    assert simple.export_project_info()["is_longitudinal"] == 0
    first = simple.export_logging(log_type="manage").pop()
    assert "manage/design" in first["action"].lower()


@pytest.mark.parametrize("method", ["export_arms", "export_events", "export_instrument_event_mappings"])
def test_classic_projects_refuse_arm_event_and_mapping_exports(simple, method):
    with pytest.raises(RedcapError):
        getattr(simple, method)()


def test_file_repository(simple):
    assert simple.create_folder_in_repository(name="New Folder")[0]["folder_id"] > 0
    directory = simple.export_file_repository()
    text_file = [f for f in directory if f["name"] == "test.txt"].pop()
    content, headers = simple.export_file_from_repository(doc_id=text_file["doc_id"])
    assert content == b"hello" and headers["name"] == "test.txt"
    before = len(simple.export_file_repository())
    simple.import_file_into_repository(file_name="new_upload.txt", file_object=tempfile.TemporaryFile())
    assert len(simple.export_file_repository()) > before
    assert simple.delete_file_from_repository(doc_id=text_file["doc_id"]) == [{}]


def test_reports_export_through_pycap(redcap_sandbox):
    xml = corpus_file("redcapr-simple-14.7.3.xml").read_text(encoding="utf-8")
    proj = Project(redcap_sandbox.url, pycap_create(redcap_sandbox.url, redcap_sandbox.super_token, xml, "reports"))
    assert len(proj.export_report(report_id="1")) == 5
    assert proj.export_report(report_id="2", format_type="csv").startswith("record_id,race___1,")


def test_generate_next_record_name(simple):
    assert simple.generate_next_record_name() == "4"


# -- the longitudinal project -----------------------------------------------------------------------------
def test_long_project_is_longitudinal(long):
    assert long.is_longitudinal


def test_survey_links_and_codes(long, redcap_sandbox):
    base = redcap_sandbox.url.removesuffix("api/")
    link = long.export_survey_link(instrument="contact_info", event="enrollment_arm_1", record="1")
    assert link.startswith(base + "surveys/?s=")
    assert long.export_survey_queue_link(record="1").startswith(base + "surveys/?sq=")
    assert len(long.export_survey_access_code(record="1", instrument="contact_info", event="enrollment_arm_1")) == 9
    assert len(long.export_survey_return_code(record="1", instrument="contact_info", event="enrollment_arm_1")) == 8
    participants = long.export_survey_participant_list(instrument="contact_info", event="enrollment_arm_1")
    assert len(participants) == 1 and "email" in participants[0]


def test_project_info_purpose_is_an_int(long):
    assert long.export_project_info()["purpose"] == 0


def test_users_import_and_delete(long):
    assert long.import_users([{"username": "pandeharris@gmail.com"}], return_format_type="csv") == "1"
    assert long.delete_users(["pandeharris@gmail.com"]) == 1


def test_label_headers_name_the_fields(long):
    assert "Study ID" in long.export_records(format_type="csv", raw_or_label_headers="label")


def test_repeating_setup_round_trips_in_every_format(long):
    assert isinstance(long.export_repeating_instruments_events(format_type="json"), list)
    for fmt in ("xml", "json", "csv"):
        rep = long.export_repeating_instruments_events(format_type=fmt)
        assert long.import_repeating_instruments_events(to_import=rep, import_format=fmt) == 1


def test_forms_and_fields_limit_the_export(long):
    rows = long.export_records(forms=["demographics", "baseline_data"])
    assert [k for k in rows[0] if k.endswith("_complete")] == ["demographics_complete", "baseline_data_complete"]
    assert long.def_field in long.export_records(fields=["study_comments"])[0]
    rows = long.export_records(forms=["baseline_data"], fields=["study_comments"])
    assert [k for k in rows[0] if k.endswith("_complete")] == ["baseline_data_complete"]


def test_delete_records_from_one_event_only(long):
    new = [{"study_id": "3", "redcap_event_name": e, "redcap_repeat_instrument": "", "redcap_repeat_instance": ""}
           for e in ("enrollment_arm_1", "visit_1_arm_1")]
    assert long.import_records(new)["count"] == 1
    assert len(long.export_records(records=["3"])) == 2
    assert long.delete_records(records=["3"], event="visit_1_arm_1") == 1
    assert len(long.export_records(records=["3"])) == 1
    assert long.delete_records(["3"]) == 1


def test_arms_events_and_mappings(long):
    arms = long.export_arms()
    assert [a["arm_num"] for a in arms] == [1, 2] and [a["name"] for a in arms] == ["Drug A", "Drug B"]
    assert len(long.export_events()) == 16
    assert len(long.export_instrument_event_mappings()) == 44

    assert long.import_arms([{"arm_num": 3, "name": "Drug C"}]) == 1
    assert len(long.export_arms()) == 2  # an arm without events is not listed
    long.import_events([{"event_name": "new_event", "arm_num": "3"}])
    assert [a["name"] for a in long.export_arms()] == ["Drug A", "Drug B", "Drug C"]
    assert long.import_arms([{"arm_num": 1, "name": "Drug Alpha"}]) == 1
    assert long.delete_arms([3]) == 1
    assert [a["name"] for a in long.export_arms()] == ["Drug Alpha", "Drug B"]

    assert long.import_events([{"event_name": "XYZ", "arm_num": "2"}]) == 1
    assert len(long.export_events()) == 17
    assert long.delete_events(["xyz_arm_2"]) == 1
    assert len(long.export_events()) == 16

    state = {"events": long.export_events(), "fem": long.export_instrument_event_mappings()}
    assert long.import_arms([{"arm_num": 1, "name": "Drug A"}, {"arm_num": 2, "name": "Drug B"}], override=1) == 2
    assert long.import_events(state["events"]) == 16
    assert long.import_instrument_event_mappings(state["fem"]) == 44
    assert [a["name"] for a in long.export_arms()] == ["Drug A", "Drug B"]


def test_form_event_mapping_import_replaces_all(long):
    current = long.export_instrument_event_mappings()
    one = [{"arm_num": "1", "unique_event_name": "enrollment_arm_1", "form": "demographics"}]
    assert long.import_instrument_event_mappings(one) == 1
    assert long.export_instrument_event_mappings() == [
        {"arm_num": 1, "unique_event_name": "enrollment_arm_1", "form": "demographics"}]
    assert long.import_instrument_event_mappings(current) == 44


def test_instruments_and_pdf(long):
    assert len(long.export_instruments()) == 9
    assert isinstance(long.export_pdf()[0], bytes)


def test_files_upload_download_delete(long):
    long.import_records([{"study_id": "7", "redcap_event_name": "enrollment_arm_1"}])
    long.import_file(record="7", field="patient_document", file_name="hello.txt", file_object=io.BytesIO(b"hi there"),
                     event="enrollment_arm_1")
    content, headers = long.export_file(record="7", field="patient_document", event="enrollment_arm_1")
    assert content == b"hi there"
    assert headers == {"name": "hello.txt", "charset": "UTF-8"}
    assert long.delete_file(record="7", field="patient_document", event="enrollment_arm_1") == [{}]
    with pytest.raises(RedcapError):
        long.export_file(record="7", field="patient_document", event="enrollment_arm_1")
    assert long.delete_records(["7"]) == 1


def test_metadata_fields_forms_and_field_names(long):
    assert len(long.metadata) == len(long.export_metadata())
    assert long.def_field == "study_id"
    assert set(long.forms) == {i["instrument_name"] for i in long.export_instruments()}
