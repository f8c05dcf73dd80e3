"""The sandbox answers the REDCap API the way clients depend on (api notes §1, §2, §5)."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import requests

from harness.sandbox.fixtures import redcap_sandbox  # noqa: F401 - the fixture
from sandbox_helpers import api, corpus_file, create_project, delete_project, item_def, mini_project, post

NO_PERMISSION = "You do not have permissions to use the API"


@pytest.fixture(scope="module")
def example(redcap_sandbox) -> str:
    """The hand-written 15.7.6 example: longitudinal, one repeating form, records 1, 2, 10."""
    return create_project(redcap_sandbox, corpus_file("example-longitudinal.xml").read_bytes(), title="Example")


@pytest.fixture
def classic(redcap_sandbox) -> str:
    """A fresh classic project: text, integer, yes/no, radio with labels, checkbox."""
    xml = mini_project(
        [item_def("record_id"), item_def("name"), item_def("age", data_type="integer",
                                                           extra=' redcap:TextValidationType="int"'),
         item_def("smoker", "yesno", data_type="boolean", codelist=True),
         item_def("color", "radio", codelist=True),
         item_def("pets", "checkbox", data_type="boolean", codelist=True)],
        ["record_id", "name", "age", "smoker", "color", "pets"],
        code_lists=('<CodeList OID="smoker.choices" Name="smoker" DataType="boolean" redcap:Variable="smoker">'
                    '<CodeListItem CodedValue="1"><Decode><TranslatedText>Yes</TranslatedText></Decode></CodeListItem>'
                    '<CodeListItem CodedValue="0"><Decode><TranslatedText>No</TranslatedText></Decode></CodeListItem>'
                    '</CodeList><CodeList OID="color.choices" Name="color" DataType="text" redcap:Variable="color">'
                    '<CodeListItem CodedValue="r"><Decode><TranslatedText>Dark red</TranslatedText></Decode>'
                    '</CodeListItem><CodeListItem CodedValue="b"><Decode><TranslatedText>Blue</TranslatedText>'
                    '</Decode></CodeListItem></CodeList><CodeList OID="pets.choices" Name="pets" DataType="boolean" '
                    'redcap:Variable="pets" redcap:CheckboxChoices="1, Cat | 2, Dog"/>'))
    token = create_project(redcap_sandbox, xml, title="Classic")
    yield token
    delete_project(redcap_sandbox, token)


def records(sandbox, token, rows, **fields):
    return post(sandbox.url, token=token, content="record", format="json", data=json.dumps(rows), **fields)


# -- transport ---------------------------------------------------------------------------------------
def test_version_is_plain_text_for_project_and_super_tokens(redcap_sandbox, example):
    for token in (example, redcap_sandbox.super_token):
        r = post(redcap_sandbox.url, token=token, content="version")
        assert (r.status_code, r.text, r.headers["Content-Type"]) == (200, "15.7.6", "text/csv; charset=utf-8")


@pytest.mark.parametrize("fields,body", [
    ({"format": "json"}, '{"error":"You do not have permissions to use the API"}'),
    ({"format": "json", "returnFormat": "csv"}, "ERROR: You do not have permissions to use the API"),
    ({}, '<?xml version="1.0" encoding="UTF-8" ?><hash><error>You do not have permissions to use the API</error>'
         "</hash>"),
])
def test_an_error_is_shaped_by_return_format_then_format_then_xml(redcap_sandbox, fields, body):
    r = post(redcap_sandbox.url, token="0" * 32, content="record", **fields)
    assert (r.status_code, r.text) == (403, body)


@pytest.mark.parametrize("token", ["", "not-alphanumeric!", "A" * 32])
def test_a_missing_malformed_or_unknown_project_token_is_403(redcap_sandbox, token):
    r = post(redcap_sandbox.url, token=token, content="metadata", format="json")
    assert (r.status_code, r.json()) == (403, {"error": NO_PERMISSION})


def test_the_super_token_opens_no_project(redcap_sandbox):
    r = post(redcap_sandbox.url, token=redcap_sandbox.super_token, content="record", format="json")
    assert (r.status_code, r.json()) == (403, {"error": NO_PERMISSION})


def test_an_unknown_content_is_refused(redcap_sandbox, example):
    r = post(redcap_sandbox.url, token=example, content="nonsense", format="csv")
    assert (r.status_code, r.text) == (400, 'ERROR: The value of the parameter "content" is not valid')


def test_a_real_call_the_sandbox_lacks_says_so_in_the_log_and_never_succeeds(redcap_sandbox, example, caplog):
    caplog.set_level(logging.INFO, logger="harness.sandbox")
    r = post(redcap_sandbox.url, token=example, content="fieldValidation", format="json")
    assert r.status_code == 400 and "error" in r.json()
    assert "content=fieldValidation action=export is not implemented in sandbox" in caplog.text


def test_tokens_never_reach_the_log(redcap_sandbox, example, caplog):
    caplog.set_level(logging.DEBUG, logger="harness.sandbox")
    post(redcap_sandbox.url, token=example, content="record", format="json")
    post(redcap_sandbox.url, token=redcap_sandbox.super_token, content="version")
    assert "token=********" in caplog.text
    assert example not in caplog.text and redcap_sandbox.super_token not in caplog.text


def test_only_post_is_accepted(redcap_sandbox):
    r = requests.get(redcap_sandbox.url, timeout=10)
    assert r.status_code == 501 and "<error>The requested method is not implemented.</error>" in r.text


def test_concurrent_clients_are_served(redcap_sandbox, example):
    results = []

    def call():
        results.append(post(redcap_sandbox.url, token=example, content="record", format="json").status_code)
    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8


# -- record export ---------------------------------------------------------------------------------------
def test_records_come_in_natural_case_insensitive_order(redcap_sandbox, classic):
    records(redcap_sandbox, classic, [{"record_id": r} for r in ("10", "b", "2", "A", "1")])
    assert [r["record_id"] for r in api(redcap_sandbox, classic, "record")] == ["1", "2", "10", "A", "b"]


def test_json_values_are_strings_except_the_repeat_instance(redcap_sandbox, example):
    rows = api(redcap_sandbox, example, "record", **{"records[0]": "1"})
    assert [(r["redcap_event_name"], r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in rows] == [
        ("baseline_arm_1", "", ""), ("follow_up_arm_1", "", ""), ("follow_up_arm_1", "visit", 1),
        ("follow_up_arm_1", "visit", 2)]
    assert all(isinstance(v, str) for r in rows for k, v in r.items() if k != "redcap_repeat_instance")
    raw = post(redcap_sandbox.url, token=example, content="record", format="json", **{"records[0]": "2"}).text
    assert raw.startswith('[{"record_id":"2","redcap_event_name":"baseline_arm_1",') and ", " not in raw


def test_defaults_fill_every_requested_column(redcap_sandbox, example):
    base, follow_up = api(redcap_sandbox, example, "record", records="2,1")[:2]
    assert (base["symptoms___2"], base["demographics_complete"], base["visit_complete"]) == ("0", "2", "")
    assert (follow_up["name"], follow_up["symptoms___1"], follow_up["demographics_complete"]) == ("", "", "")


def test_csv_quotes_like_fputcsv_and_ends_with_a_newline(redcap_sandbox, example):
    r = post(redcap_sandbox.url, token=example, content="record", format="csv", rawOrLabel="label",
             **{"records[0]": "10", "fields[0]": "record_id", "fields[1]": "name", "fields[2]": "sex"})
    assert r.text == ("record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,name,sex\n"
                      '10,Baseline,,,"Cy O\'Neil",Male\n10,"Follow Up",,,,\n10,"Follow Up",Visit,1,,\n')


def test_label_headers_checkbox_labels_and_filters(redcap_sandbox, classic):
    records(redcap_sandbox, classic, [{"record_id": "1", "smoker": "1", "color": "r", "pets___2": "1"}])
    r = post(redcap_sandbox.url, token=classic, content="record", format="csv", rawOrLabelHeaders="label",
             rawOrLabel="label", exportCheckboxLabel="true", fields="record_id,smoker,pets")
    assert r.text == ('record_id,smoker,"pets (choice=Cat)","pets (choice=Dog)"\n1,Yes,,Dog\n')
    assert api(redcap_sandbox, classic, "record", filterLogic="[color] = 'b'") == []
    assert len(api(redcap_sandbox, classic, "record", filterLogic="[color] = 'r' and [pets(2)] = '1'")) == 1


@pytest.mark.parametrize("param,message", [
    ({"fields": "record_id,nope"}, "The following values in the parameter \"fields\" are not valid: 'nope'"),
    ({"forms[0]": "nope"}, "The following values in the parameter \"forms\" are not valid: 'nope'"),
    ({"events[0]": "nope_arm_1"}, "The following values in the parameter \"events\" are not valid: 'nope_arm_1'"),
])
def test_unknown_fields_forms_and_events_are_named(redcap_sandbox, example, param, message):
    r = post(redcap_sandbox.url, token=example, content="record", format="json", **param)
    assert (r.status_code, r.json()) == (400, {"error": message})


def test_eav_export_lists_stored_values(redcap_sandbox, example):
    rows = api(redcap_sandbox, example, "record", type="eav", **{"records[0]": "2"})
    assert {(r["field_name"], r["value"]) for r in rows} >= {("name", "Bob Sample"), ("sex", "1")}
    assert all(r["redcap_event_name"] == "baseline_arm_1" for r in rows)


def test_reports_kept_from_the_xml_export_their_fields(redcap_sandbox):
    token = create_project(redcap_sandbox, corpus_file("redcapr-simple-14.7.3.xml").read_bytes())
    rows = api(redcap_sandbox, token, "report", report_id="1")
    assert list(rows[0]) == ["record_id", "address", "height", "health_complete", "ethnicity"]  # metadata order
    assert len(rows) == 5
    assert api(redcap_sandbox, token, "report", report_id="R-2338YHPD7Y")[0].keys() >= {"race___1"}
    r = post(redcap_sandbox.url, token=token, content="report", report_id="9", format="json")
    assert (r.status_code, r.json()) == (400, {"error": "You must provide a valid report_id"})


def test_date_range_and_decimal_character(redcap_sandbox, example):
    assert len(api(redcap_sandbox, example, "record", dateRangeBegin="2000-01-01 00:00:00")) == 8
    assert api(redcap_sandbox, example, "record", dateRangeEnd="2000-01-01 00:00:00") == []
    weights = [r["weight"] for r in api(redcap_sandbox, example, "record", decimalCharacter=",") if r["weight"]]
    assert weights == ["61,5", "60,9"]


def test_an_empty_project_exports_an_empty_list(redcap_sandbox, classic):
    assert api(redcap_sandbox, classic, "record") == []
    assert post(redcap_sandbox.url, token=classic, content="record", format="csv").text == "\n"


# -- record import ---------------------------------------------------------------------------------------------
def test_import_replies_by_return_content_and_format(redcap_sandbox, classic):
    rows = [{"record_id": "1", "name": "a"}, {"record_id": "2"}]
    assert records(redcap_sandbox, classic, rows).text == '{"count": 2}'
    assert records(redcap_sandbox, classic, rows, returnFormat="xml").text == \
        '<?xml version="1.0" encoding="UTF-8" ?><count>2</count>'
    assert records(redcap_sandbox, classic, rows, returnFormat="csv").text == "2"
    assert records(redcap_sandbox, classic, rows, returnContent="ids").json() == ["1", "2"]
    assert records(redcap_sandbox, classic, rows, returnContent="nothing").text == ""
    assert records(redcap_sandbox, classic, rows, returnContent="auto_ids").text == '{"count": 2}'
    auto = records(redcap_sandbox, classic, [{"record_id": "x", "name": "new"}], forceAutoNumber="true",
                   returnContent="auto_ids")
    assert auto.json() == ["3,x"]


def test_normal_never_blanks_a_value_and_overwrite_does(redcap_sandbox, classic):
    records(redcap_sandbox, classic, [{"record_id": "1", "name": "kept", "pets___1": "1"}])
    records(redcap_sandbox, classic, [{"record_id": "1", "name": "", "pets___1": ""}])
    assert api(redcap_sandbox, classic, "record")[0]["name"] == "kept"
    records(redcap_sandbox, classic, [{"record_id": "1", "name": "", "pets___1": ""}],
            overwriteBehavior="overwrite")
    row = api(redcap_sandbox, classic, "record")[0]
    assert (row["name"], row["pets___1"]) == ("", "0")


def test_invalid_values_are_reported_one_line_each_and_nothing_is_saved(redcap_sandbox, classic):
    r = records(redcap_sandbox, classic, [{"record_id": "1", "age": "old", "color": "green", "pets___1": "2"}])
    assert r.status_code == 400
    assert r.json()["error"].split("\n") == [
        '"1","age","old","The value of age must be an integer."',
        '"1","color","green","The value is not a valid category for color"',
        "\"1\",\"pets___1\",\"2\",\"pets is a checkbox field and thus can only have a value of '1' (checked) or "
        "'0' (unchecked).\""]
    assert api(redcap_sandbox, classic, "record") == []


def test_unknown_columns_and_repeat_columns_are_refused(redcap_sandbox, classic):
    r = records(redcap_sandbox, classic, [{"record_id": "1", "ghost": "x", "pets": "1"}])
    assert r.json() == {"error": "The following fields were not found in the project as real data fields: "
                                 "ghost, pets"}
    r = records(redcap_sandbox, classic, [{"record_id": "1", "redcap_repeat_instance": ""}])
    assert r.status_code == 400 and r.json()["error"].startswith("Trying to import repeat instance/instrument fields!")


def test_dates_are_stored_y_m_d_whatever_the_import_format(redcap_sandbox, example):
    r = records(redcap_sandbox, example, [{"record_id": "30", "redcap_event_name": "baseline_arm_1",
                                           "dob": "12/31/1999"}], dateFormat="MDY")
    assert r.status_code == 200, r.text
    assert api(redcap_sandbox, example, "record", records="30")[0]["dob"] == "1999-12-31"
    assert post(redcap_sandbox.url, token=example, content="record", action="delete", **{"records[0]": "30"}).text == "1"


def test_delete_needs_an_array_of_existing_records(redcap_sandbox, classic):
    r = post(redcap_sandbox.url, token=classic, content="record", action="delete", records="1", format="json")
    assert r.json() == {"error": "Incorrect format for 'records' parameter. It must be passed as an array, even if "
                                 "it only contains a single record name."}
    r = post(redcap_sandbox.url, token=classic, content="record", action="delete", format="json",
             **{"records[0]": "99"})
    assert r.json() == {"error": "One or more of the records provided cannot be deleted because they do not exist "
                                 "in the project. The following records do not exist: 99"}


def test_rename_keeps_the_data_under_the_new_name(redcap_sandbox, classic):
    records(redcap_sandbox, classic, [{"record_id": "1", "name": "Ann"}])
    r = post(redcap_sandbox.url, token=classic, content="record", action="rename", record="1",
             new_record_name="101", format="json")
    assert r.text == "1"
    assert [(x["record_id"], x["name"]) for x in api(redcap_sandbox, classic, "record")] == [("101", "Ann")]


def test_next_record_name_is_one_past_the_largest_number(redcap_sandbox, classic):
    records(redcap_sandbox, classic, [{"record_id": "9"}, {"record_id": "x"}])
    assert post(redcap_sandbox.url, token=classic, content="generateNextRecordName", format="csv").text == "10"


# -- design ---------------------------------------------------------------------------------------------------------
def test_project_info_keys_and_int_typing(redcap_sandbox, example):
    info = api(redcap_sandbox, example, "project")
    assert list(info)[:5] == ["project_id", "project_title", "creation_time", "production_time", "in_production"]
    assert list(info)[-1] == "bypass_branching_erase_field_prompt" and len(info) == 26
    assert (info["is_longitudinal"], info["has_repeating_instruments_or_events"], info["purpose"]) == (1, 1, 0)
    assert isinstance(info["project_id"], int) and info["production_time"] == ""


def test_project_settings_import_replies_with_the_count_of_keys(redcap_sandbox, classic):
    r = post(redcap_sandbox.url, token=classic, content="project_settings", format="json",
             data=json.dumps({"project_title": "Renamed", "project_irb_number": "IRB-1"}))
    assert r.text == "2"
    info = api(redcap_sandbox, classic, "project")
    assert (info["project_title"], info["project_irb_number"]) == ("Renamed", "IRB-1")


def test_metadata_json_separates_items_with_comma_newline(redcap_sandbox, example):
    text = post(redcap_sandbox.url, token=example, content="metadata", format="json").text
    assert text.count("},\n{") == len(json.loads(text)) - 1
    csv = post(redcap_sandbox.url, token=example, content="metadata", format="csv").text
    assert csv.startswith("field_name,form_name,section_header,field_type,field_label,select_choices_or_calculations,")


@pytest.mark.parametrize("content,message", [
    ("arm", "You cannot export arms for classic projects"),
    ("event", "You cannot export events for classic projects"),
    ("formEventMapping", "You cannot export form/event mappings for classic projects"),
])
def test_classic_projects_refuse_with_redcaps_exact_words(redcap_sandbox, classic, content, message):
    r = post(redcap_sandbox.url, token=classic, content=content, format="csv")
    assert (r.status_code, r.text) == (400, f"ERROR: {message}")


def test_arms_events_and_mapping_use_ints_where_redcap_does(redcap_sandbox, example):
    assert api(redcap_sandbox, example, "arm") == [{"arm_num": 1, "name": "Arm 1"}]
    events = api(redcap_sandbox, example, "event")
    assert [(e["unique_event_name"], e["arm_num"]) for e in events] == [("baseline_arm_1", 1), ("follow_up_arm_1", 1)]
    assert api(redcap_sandbox, example, "formEventMapping")[0] == {
        "arm_num": 1, "unique_event_name": "baseline_arm_1", "form": "demographics"}
    assert api(redcap_sandbox, example, "repeatingFormsEvents") == [
        {"event_name": "follow_up_arm_1", "form_name": "visit", "custom_form_label": "[visit_date]"}]


def test_csv_lists_are_trimmed_and_instrument_labels_always_quoted(redcap_sandbox, example):
    assert post(redcap_sandbox.url, token=example, content="dag", format="csv").text == \
        "data_access_group_name,unique_group_name,data_access_group_id"
    assert post(redcap_sandbox.url, token=example, content="instrument", format="csv").text == \
        'instrument_name,instrument_label\ndemographics,"Demographics"\nvisit,"Visit"\n'


def test_field_names_include_form_status_and_leave_out_files(redcap_sandbox, example):
    names = [f["export_field_name"] for f in api(redcap_sandbox, example, "exportFieldNames")]
    assert names[:5] == ["record_id", "name", "dob", "sex", "symptoms___1"] and "visit_complete" in names
    r = post(redcap_sandbox.url, token=example, content="exportFieldNames", format="json", field="nope")
    assert r.json() == {"error": "Invalid field"}


def test_log_is_newest_first_with_project_creation_last(redcap_sandbox, example):
    logs = api(redcap_sandbox, example, "log")
    assert logs[-1]["action"] == "Manage/Design " and logs[-1]["details"].startswith("Create project")
    assert logs == sorted(logs, key=lambda r: r["timestamp"], reverse=True)


def test_file_calls_name_redcaps_errors(redcap_sandbox, example):
    r = post(redcap_sandbox.url, token=example, content="file", action="export", record="1", field="name",
             event="baseline_arm_1", format="json")
    assert r.json() == {"error": "The field 'name' does not exist or is not a 'file' field"}
    r = post(redcap_sandbox.url, token=example, content="file", action="frobnicate", format="json")
    assert r.json() == {"error": 'The value of the parameter "action" is not valid'}
    r = post(redcap_sandbox.url, token=example, content="fileRepository", action="export", doc_id="999",
             format="json")
    assert r.json() == {"error": "Invalid doc_id or missing doc_id"}


# -- control calls ----------------------------------------------------------------------------------------------
def test_delete_project_is_a_super_token_control_call(redcap_sandbox):
    token = create_project(redcap_sandbox, title="Doomed")
    base = redcap_sandbox.url.removesuffix("api/")
    refused = requests.post(base + "_sandbox/delete_project", data={"token": token, "project_token": token},
                            timeout=10)
    assert refused.status_code == 403
    before = redcap_sandbox.backend.project_count()
    delete_project(redcap_sandbox, token)
    assert redcap_sandbox.backend.project_count() == before - 1
    r = post(redcap_sandbox.url, token=token, content="project", format="json")
    assert (r.status_code, r.json()) == (403, {"error": NO_PERMISSION})


def test_reset_empties_a_sandbox_and_keeps_the_super_token():
    from harness.sandbox import SandboxServer

    with SandboxServer() as sb:
        create_project(sb, title="Gone")
        r = requests.post(sb.url.removesuffix("api/") + "_sandbox/reset", data={"token": sb.super_token}, timeout=10)
        assert r.status_code == 200 and sb.backend.project_count() == 0
        assert create_project(sb, title="Again")
