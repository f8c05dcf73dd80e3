"""Create Project (``content=project`` + ``data`` [+ ``odm``]) behaves as REDCap 15.7.6's API does."""

from __future__ import annotations

import json

import pytest
import requests

from harness.sandbox.fixtures import redcap_sandbox  # noqa: F401 - the fixture
from sandbox_helpers import (
    api, corpus_file, create_project, item_def, mini_project, post, subject,
)

API_120 = ("You do not have permissions to use the API 'Create Project' method. You must have been granted a "
           "64-character Super API Token from a REDCap administrator in order to utilize this method.")
BAD_ODM = ("The XML file could not be processed because it appears not to be valid XML or is missing certain "
           "basic components.")
MISSING = ("One or more components are missing in your input data. The following attributes are required: "
           "project_title, purpose. Also, 'purpose' must have a value of 0, 1, 2, 3, or 4.")


def create(sandbox, *, data: str, fmt: str = "json", odm=None, token=None, **extra) -> requests.Response:
    fields = {"token": token or sandbox.super_token, "content": "project", "format": fmt, "data": data, **extra}
    if odm is not None:
        fields["odm"] = odm
    return requests.post(sandbox.url, data=fields, timeout=60)


def refused(sandbox, response_of, status: int, message: str, return_format: str = "json") -> None:
    """The call fails with REDCap's text and leaves no project behind."""
    before = sandbox.backend.project_count()
    r = response_of()
    assert r.status_code == status
    if return_format == "json":
        assert r.json() == {"error": message}
    elif return_format == "csv":
        assert r.text == f"ERROR: {message}"
    else:
        assert r.text == f'<?xml version="1.0" encoding="UTF-8" ?><hash><error>{message}</error></hash>'
    assert sandbox.backend.project_count() == before


# -- the reply ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,data,ctype", [
    ("json", '[{"project_title":"J","purpose":"0"}]', "application/json"),
    ("xml", '<?xml version="1.0" encoding="UTF-8" ?>\n    <item>\n    <project_title>X</project_title>\n'
            "    <purpose>0</purpose>\n    </item>", "text/xml"),
    ("csv", "project_title,purpose,purpose_other,is_longitudinal,surveys_enabled,record_autonumbering_enabled\n"
            "C,2,,0,0,1", "text/csv"),
])
def test_the_reply_is_the_bare_32_character_token_whatever_the_format(redcap_sandbox, fmt, data, ctype):
    r = create(redcap_sandbox, data=data, fmt=fmt)
    assert r.status_code == 200
    assert len(r.text) == 32 and r.text == r.text.upper() and all(c in "0123456789ABCDEF" for c in r.text)
    assert r.headers["Content-Type"] == f"{ctype}; charset=utf-8"


def test_pycaps_last_32_characters_are_the_token(redcap_sandbox):
    raw = corpus_file("pycap-simple-11.2.3.xml").read_text(encoding="utf-8")
    data = ('<?xml version="1.0" encoding="UTF-8" ?>\n    <item>\n    <project_title>PyCap test_simple_project: '
            "01-02 03:04:05</project_title>\n    <purpose>0</purpose>\n    </item>")
    r = requests.post(redcap_sandbox.url, data={"token": redcap_sandbox.super_token, "content": "project",
                                                "format": "xml", "data": data, "odm": raw}, timeout=60)
    token = r.text[-32:]
    assert token == r.text
    assert api(redcap_sandbox, token, "project")["project_title"] == "PyCap test_simple_project: 01-02 03:04:05"


def test_the_odm_may_come_as_a_multipart_file_part(redcap_sandbox):
    raw = corpus_file("redcapr-simple-14.7.3.xml").read_bytes()
    r = requests.post(redcap_sandbox.url, data={"token": redcap_sandbox.super_token, "content": "project",
                                                "format": "json", "data": '[{"project_title":"M","purpose":"0"}]'},
                      files={"odm": ("project.xml", raw, "application/xml")}, timeout=60)
    assert r.status_code == 200
    assert len(api(redcap_sandbox, r.text, "record")) == 5


def test_a_chunked_upload_is_read_as_a_stream(redcap_sandbox):
    raw = corpus_file("etl-repeating-events-8.1.10.xml").read_bytes()
    body = requests.models.RequestEncodingMixin._encode_params(
        {"token": redcap_sandbox.super_token, "content": "project", "format": "json",
         "data": '[{"project_title":"Chunked","purpose":"0"}]', "odm": raw}).encode()

    def pieces():
        for i in range(0, len(body), 70_001):
            yield body[i:i + 70_001]
    r = requests.post(redcap_sandbox.url, data=pieces(), timeout=60,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert len({row["record_id"] for row in api(redcap_sandbox, r.text, "record")}) == 100


# -- authentication ----------------------------------------------------------------------------
def test_a_project_token_cannot_create_projects(redcap_sandbox):
    token = create_project(redcap_sandbox)
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data='[{"project_title":"T","purpose":"0"}]',
                                           token=token), 403, API_120)


@pytest.mark.parametrize("token", ["", "ABC", "0" * 64, "X" * 63])
def test_a_missing_or_unknown_super_token_is_refused(redcap_sandbox, token):
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data='[{"project_title":"T","purpose":"0"}]',
                                           token=token or " "), 403, API_120)


# -- the attributes --------------------------------------------------------------------------------
@pytest.mark.parametrize("data", ['[{"purpose":"0"}]', '[{"project_title":"","purpose":"0"}]',
                                  '[{"project_title":"T"}]', '[{"project_title":"T","purpose":"5"}]',
                                  '[{"project_title":"T","purpose":"x"}]'])
def test_title_and_a_purpose_from_0_to_4_are_required(redcap_sandbox, data):
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data=data), 400, MISSING)


def test_purpose_other_is_required_for_purpose_1(redcap_sandbox):
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data='[{"project_title":"T","purpose":"1"}]'), 400,
            "You must provide some text for 'purpose_other' since you specified 'purpose' as '1' (Other).")


def test_attributes_for_two_projects_are_refused(redcap_sandbox):
    two = "<items><item><project_title>A</project_title><purpose>0</purpose></item>" \
          "<item><project_title>B</project_title><purpose>0</purpose></item></items>"
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data=two, fmt="xml", returnFormat="json"), 400,
            "Only one project can be created at a time using the API 'Create Project' method. It appears that you "
            "have provided attributes for more than one project in the API request.")


def test_undecodable_attributes_are_not_in_the_specified_format(redcap_sandbox):
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data="[{not json"), 400,
            "The data is not in the specified format.")


def test_errors_follow_return_format_then_format_then_xml(redcap_sandbox):
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data="project_title\nx", fmt="csv"), 400, MISSING, "csv")
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data="[{}]", fmt="json", returnFormat="xml"), 400,
            "The data is not in the specified format.", "xml")


def test_without_xml_the_project_has_one_instrument_with_record_id(redcap_sandbox):
    token = create_project(redcap_sandbox, title="Empty")
    assert api(redcap_sandbox, token, "instrument") == [
        {"instrument_name": "my_first_instrument", "instrument_label": "My First Instrument"}]
    assert [m["field_name"] for m in api(redcap_sandbox, token, "metadata")] == ["record_id"]


def test_title_purpose_and_notes_come_from_data_not_from_the_xml(redcap_sandbox):
    raw = corpus_file("etl-basic-demography-7.4.23.xml").read_bytes()  # says purpose 1, "REDCap ETL testing"
    token = create_project(redcap_sandbox, raw, title="From the API", purpose="3", project_notes="API notes")
    info = api(redcap_sandbox, token, "project")
    assert (info["project_title"], info["purpose"], info["purpose_other"], info["project_notes"]) == (
        "From the API", 3, "", "API notes")


def test_empty_xml_settings_leave_the_target_default_and_set_ones_win(redcap_sandbox):
    def with_setting(value):
        return mini_project([item_def("record_id")], ["record_id"],
                            global_extra=f"<redcap:RecordAutonumberingEnabled>{value}</redcap:RecordAutonumberingEnabled>\n"
                                         "<redcap:ProtectedEmailModeCustomText></redcap:ProtectedEmailModeCustomText>\n")
    empty = create_project(redcap_sandbox, with_setting(""), record_autonumbering_enabled="0")
    assert api(redcap_sandbox, empty, "project")["record_autonumbering_enabled"] == 0
    set_ = create_project(redcap_sandbox, with_setting("1"), record_autonumbering_enabled="0")
    assert api(redcap_sandbox, set_, "project")["record_autonumbering_enabled"] == 1


# -- ODM semantics -----------------------------------------------------------------------------------
EVENTS_ONE = ('<Protocol><StudyEventRef StudyEventOID="Event.baseline_arm_1" OrderNumber="1" Mandatory="No"/>'
              '</Protocol><StudyEventDef OID="Event.baseline_arm_1" Name="Baseline" Type="Common" Repeating="No" '
              'redcap:EventName="Baseline" redcap:CustomEventLabel="" redcap:UniqueEventName="baseline_arm_1" '
              'redcap:ArmNum="1" redcap:ArmName="Arm 1" redcap:DayOffset="1" redcap:OffsetMin="0" '
              'redcap:OffsetMax="0"><FormRef FormOID="Form.form_1" OrderNumber="1" Mandatory="No" '
              'redcap:FormName="form_1"/></StudyEventDef>\n')


def test_a_longitudinal_file_with_one_event_becomes_classic(redcap_sandbox):
    xml = mini_project([item_def("record_id"), item_def("note")], ["record_id", "note"],
                       subject("1", {"record_id": "1", "note": "x"}, event="baseline_arm_1"), events=EVENTS_ONE)
    token = create_project(redcap_sandbox, xml)
    assert api(redcap_sandbox, token, "project")["is_longitudinal"] == 0
    assert api(redcap_sandbox, token, "record") == [{"record_id": "1", "note": "x", "form_1_complete": "0"}]
    r = post(redcap_sandbox.url, token=token, content="event", format="csv")
    assert (r.status_code, r.text) == (400, "ERROR: You cannot export events for classic projects")


def test_unique_event_names_are_derived_and_a_disagreeing_file_is_refused(redcap_sandbox):
    two = EVENTS_ONE.replace("</Protocol>", '<StudyEventRef StudyEventOID="Event.visit_arm_1" OrderNumber="2" '
                                            'Mandatory="No"/></Protocol>') + EVENTS_ONE.replace(
        "baseline_arm_1", "visit_arm_1").replace('"Baseline"', '"Visit"').replace('DayOffset="1"', 'DayOffset="2"')
    ok = mini_project([item_def("record_id")], ["record_id"], events=two[two.index("<Protocol>"):])
    token = create_project(redcap_sandbox, ok)
    assert [e["unique_event_name"] for e in api(redcap_sandbox, token, "event")] == ["baseline_arm_1", "visit_arm_1"]
    wrong = ok.replace('redcap:UniqueEventName="visit_arm_1"', 'redcap:UniqueEventName="visit_2_arm_1"')
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data='[{"project_title":"W","purpose":"0"}]', odm=wrong),
            400, 'The unique event name "visit_2_arm_1" does not exist in the project.')


def test_calculated_values_are_recomputed_and_survey_timestamps_ignored(redcap_sandbox):
    xml = mini_project(
        [item_def("record_id"), item_def("a", data_type="integer", extra=' redcap:TextValidationType="int"'),
         item_def("doubled", "calc", data_type="float", extra=' redcap:Calculation="[a]*2"')],
        ["record_id", "a", "doubled"],
        subject("1", {"record_id": "1", "a": "21", "doubled": "99", "form_1_timestamp": "[not completed]"}))
    token = create_project(redcap_sandbox, xml)
    assert api(redcap_sandbox, token, "record") == [
        {"record_id": "1", "a": "21", "doubled": "42", "form_1_complete": "0"}]


def test_form_status_fields_are_recreated_by_the_sandbox(redcap_sandbox):
    token = create_project(redcap_sandbox, mini_project([item_def("record_id")], ["record_id"]))
    assert [m["field_name"] for m in api(redcap_sandbox, token, "metadata")] == ["record_id"]
    assert [f["export_field_name"] for f in api(redcap_sandbox, token, "exportFieldNames")] == [
        "record_id", "form_1_complete"]


def test_multi_line_values_keep_their_line_breaks(redcap_sandbox):
    token = create_project(redcap_sandbox, corpus_file("example-longitudinal.xml").read_bytes())
    rows = api(redcap_sandbox, token, "record", **{"records[0]": "1", "fields[0]": "symptom_notes"})
    assert rows[0]["symptom_notes"] == "Dry cough for 3 days.\nNo fever."


def test_embedded_files_are_stored_as_documents(redcap_sandbox):
    token = create_project(redcap_sandbox, corpus_file("redcapr-simple-14.7.3.xml").read_bytes())
    r = post(redcap_sandbox.url, token=token, content="file", action="export", record="1", field="mugshot")
    assert r.status_code == 200
    assert r.content[:3] == b"\xff\xd8\xff"  # the JPEG the export embedded
    assert r.headers["Content-Type"] == 'image/jpeg; name="mugshot-1.jpg"'


# -- refused files leave nothing behind ------------------------------------------------------------------
MINI = mini_project([item_def("record_id")], ["record_id"])
NO_STUDY = MINI[:MINI.index("<Study ")] + MINI[MINI.index("</Study>") + len("</Study>\n"):]


@pytest.mark.parametrize("odm", [
    pytest.param("this is not xml </ODM>", id="not-xml"),
    pytest.param('<?xml version="1.0"?><Other></Other>', id="root-not-odm"),
    pytest.param(MINI[:-len("</ODM>")], id="no-closing-odm"),
    pytest.param(NO_STUDY, id="no-study"),
    pytest.param('<?xml version="1.0"?>\n<!DOCTYPE ODM [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                 + mini_project([item_def("record_id", label="&xxe;")], ["record_id"]).split("\n", 1)[1], id="xxe"),
    pytest.param('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
                 '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]>\n'
                 + mini_project([item_def("record_id", label="&lol3;")], ["record_id"]).split("\n", 1)[1],
                 id="entity-bomb"),
])
def test_a_hostile_or_malformed_file_is_refused_without_a_trace(redcap_sandbox, odm):
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data='[{"project_title":"Bad","purpose":"0"}]', odm=odm),
            400, BAD_ODM)


def test_a_data_error_rolls_back_the_whole_project(redcap_sandbox):
    xml = mini_project([item_def("record_id"), item_def("n", data_type="integer",
                                                        extra=' redcap:TextValidationType="int"')],
                       ["record_id", "n"], subject("1", {"record_id": "1", "n": "12"})
                       + subject("2", {"record_id": "2", "n": "twelve"}))
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data='[{"project_title":"D","purpose":"0"}]', odm=xml),
            400, '"2","n","twelve","The value of n must be an integer."')


def test_an_unknown_item_in_the_data_is_refused(redcap_sandbox):
    xml = mini_project([item_def("record_id")], ["record_id"], subject("1", {"record_id": "1", "ghost": "x"}))
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data='[{"project_title":"U","purpose":"0"}]', odm=xml),
            400, "The following fields were not found in the project as real data fields: ghost")


def test_a_choice_field_without_choices_is_refused_like_the_data_dictionary_check(redcap_sandbox):
    xml = mini_project([item_def("record_id"), item_def("pick", "radio")], ["record_id", "pick"])
    refused(redcap_sandbox, lambda: create(redcap_sandbox, data=json.dumps([{"project_title": "R", "purpose": "0"}]),
                                           odm=xml), 400,
            "Each multiple choice field (radio, drop-down, checkbox, etc.) must have choices listed in column F, "
            "but the following  cells have choices missing: F3")
