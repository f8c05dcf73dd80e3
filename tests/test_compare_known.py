"""Differences REDCap itself introduces are excused by name, with their reason.

Each test writes a backup A and a re-export B that differ only the way a
REDCap round trip makes them differ (research redcap-odm-format.md §6), and
checks that the comparison passes, reports the difference as a warning (or
masks it) under the rule that explains it, and counts the rule as fired.
The same differences without the condition that excuses them fail.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from dataclasses import replace

import pytest

from fixtures.generate import GeneratorConfig, build
from harness.compare import CompareOptions, compare_documents
from harness.compare.known import RULES, STRUCTURE_RULES, KnownDifference
from harness.odm.model import (
    CLASSIC_EVENT,
    Choice,
    Event,
    ExtensionGroup,
    ExtensionRow,
    Field,
    FileValue,
    RecordRow,
)
from harness.odm.writer import ExportOptions, project_xml

NOW = "2025-05-01 02:00:00"
LATER = "2025-05-02 03:04:05"


def project(**kw):
    return build(GeneratorConfig(seed=11, records=6, **kw))


def export(meta, records=(), options=ExportOptions(), now=NOW, version="15.7.6") -> bytes:
    return project_xml(meta, list(records), options=options, now=now, version=version)


def edit_values(records, record_id, change):
    """Records with ``change(values_dict_copy)`` applied to every row of one record."""
    out = []
    for r in records:
        if r.record_id == record_id:
            rows = tuple(RecordRow(row.event, row.repeat_instrument, row.instance, change(dict(row.values)),
                                   dict(row.files)) for row in r.rows)
            r = replace(r, rows=rows)
        out.append(r)
    return out


def with_setting(meta, **settings):
    return replace(meta, settings={**meta.settings, **settings})


def only(result, severity="warning"):
    return [d for d in result.findings if d.severity == severity]


# -- the rule registry ------------------------------------------------------------------------
def test_every_rule_has_a_stable_name_a_severity_a_reason_and_a_source():
    assert len(RULES) == len({r.name for r in RULES.values()})
    for name, rule in RULES.items():
        assert isinstance(rule, KnownDifference) and rule.name == name
        assert rule.severity in ("masked", "warning")
        assert rule.reason.endswith(".") and rule.summary
        assert rule.section.startswith("§")
    assert {rule.name for _, rule, _ in STRUCTURE_RULES} <= set(RULES)


def test_the_rules_import_without_the_comparison_machinery():
    # The sandbox imports known.py to behave like REDCap; it must stay light.
    code = ("import sys, harness.compare.known as k; "
            "heavy = [m for m in ('deepdiff', 'lxml', 'harness.compare.structure') if m in sys.modules]; "
            "print(len(k.RULES), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]"), out


# -- §6.1 always different: masked ----------------------------------------------------------------
def test_an_export_taken_later_differs_only_in_masked_items():
    p = project()
    a = export(p.meta, p.records())
    b = export(p.meta, p.records(), now=LATER)

    result = compare_documents(a, b)

    assert result.passed and result.warnings == 0 and result.findings == ()
    assert result.known_fired == {"export-timestamp": 2, "metadata-version-timestamp": 1}


def test_a_restore_target_on_another_version_masks_the_version_itself():
    p = project()

    result = compare_documents(export(p.meta, version="15.2.1"), export(p.meta))

    assert result.passed and result.findings == ()
    assert result.known_fired == {"source-system-version": 1}


def _with_logo(meta, attachment_id, content):
    surveys = ExtensionGroup("SurveysGroup", "Surveys", (ExtensionRow((("form_name", "demographics"),
                                                                      ("title", "Demographics"),
                                                                      ("logo", attachment_id))),))
    files = ExtensionGroup("OdmAttachmentGroup", "OdmAttachment", (ExtensionRow(
        (("DocName", "logo.png"), ("MimeType", "image/png"), ("ID", attachment_id)),
        base64.b64encode(content).decode()),))
    return replace(meta, groups=(surveys, files))


def test_attachments_are_compared_by_content_not_by_their_random_ids():
    meta = project().meta
    a = export(_with_logo(meta, "a" * 40, b"\x89PNG logo"))

    same = compare_documents(a, export(_with_logo(meta, "b" * 40, b"\x89PNG logo")))
    other = compare_documents(a, export(_with_logo(meta, "c" * 40, b"\x89PNG another logo")))

    assert same.passed and same.findings == ()
    assert same.known_fired == {"odm-attachment-id": 1}
    assert not other.passed
    assert {d.location for d in other.findings} == {
        "group SurveysGroup › row 1 “Demographics” › logo",
        "group OdmAttachmentGroup › row 1 “logo.png” › content",
    }


def _with_report(meta, **attrs):
    row = {"title": "Enrolment", "report_order": "1", "hash": "H1", "short_url": "", "is_public": "0",
           "ID": "1" * 40, **attrs}
    return replace(meta, groups=(ExtensionGroup("ReportsGroup", "Reports", (ExtensionRow(tuple(row.items())),)),))


def test_report_ids_and_links_are_masked_but_a_renamed_report_fails():
    meta = project().meta
    a = export(_with_report(meta))

    relinked = compare_documents(a, export(_with_report(meta, ID="2" * 40, hash="H2", is_public="1")))
    renamed = compare_documents(a, export(_with_report(meta, title="Enrollment")))

    assert relinked.passed and relinked.findings == ()
    assert relinked.known_fired == {"vendor-row-id": 1, "share-links": 2}
    assert [(d.kind, d.location) for d in renamed.findings] == [
        ("group_changed", "group ReportsGroup › row 1 “Enrolment” › title")]


def test_multilanguage_settings_differ_only_in_the_embedded_project_id():
    def blob(pid):
        text = f'a:3:{{s:7:"version";s:6:"15.7.6";s:9:"projectId";s:{len(pid)}:"{pid}";s:5:"langs";a:0:{{}}}}'
        return replace(project().meta, groups=(ExtensionGroup(
            "MultilanguageSettingsGroup", "MultilanguageSettings",
            (ExtensionRow((("settings", base64.b64encode(text.encode()).decode()),)),)),))

    result = compare_documents(export(blob("39550")), export(blob("7")))

    assert result.passed and result.findings == ()
    assert result.known_fired == {"multilanguage-project-id": 1}


# -- §6.2 conditionally different: warnings -----------------------------------------------------------
def test_a_setting_empty_in_a_shows_the_target_default_in_b_as_a_warning():
    meta = project().meta
    a = export(with_setting(meta, ProtectedEmailModeCustomText=""))
    b = export(with_setting(meta, ProtectedEmailModeCustomText="REDCap Secure Messaging"))

    result = compare_documents(a, b)

    assert result.passed
    (finding,) = result.findings
    assert (finding.kind, finding.severity, finding.location) == (
        "setting_changed", "warning", "setting ProtectedEmailModeCustomText")
    assert (finding.a, finding.b) == ("", "REDCap Secure Messaging")
    assert finding.rule == "empty-setting-default" and "default" in finding.reason
    assert result.known_fired == {"empty-setting-default": 1}


def test_a_setting_that_was_not_empty_must_survive():
    meta = project().meta

    result = compare_documents(export(with_setting(meta, CustomRecordLabel="[first_name]")),
                               export(with_setting(meta, CustomRecordLabel="")))

    assert not result.passed
    assert [(d.kind, d.location) for d in result.findings] == [("setting_changed", "setting CustomRecordLabel")]


def test_purpose_and_notes_come_from_the_api_call_and_ddp_is_not_imported():
    meta = with_setting(project().meta, Purpose="2", ProjectNotes="backup of the live project",
                        DdpType="FHIR", DdpOffsetDays="7", DdpOffsetPlusMinus="+")
    restored = with_setting(meta, Purpose="0", ProjectNotes="")
    restored = replace(restored, settings={k: v for k, v in restored.settings.items() if not k.startswith("Ddp")})

    result = compare_documents(export(meta), export(restored))

    assert result.passed
    assert result.known_fired == {"purpose-and-notes": 2, "ddp-not-imported": 3}
    assert all(d.severity == "warning" for d in result.findings)


def test_a_title_passed_differently_changes_only_title_derived_values():
    meta = project().meta
    b = export(replace(meta, title="Synthetic Drill Project (restored)",
                       header=replace(meta.header, description="Synthetic Drill Project (restored)")))

    result = compare_documents(export(meta), b)

    assert result.passed
    assert result.known_fired == {"title-derived": 7}
    assert {d.location for d in result.findings} == {
        "ODM › Description", "study › OID", "study › StudyName", "study › StudyDescription",
        "study › ProtocolName", "study › MetaDataVersion Name", "study › MetaDataVersion OID"}


def test_a_recomputed_calc_value_is_a_warning_named_recomputed():
    p = project()
    records = list(p.records())
    b_records = edit_values(records, "2", lambda v: {**v, "bmi": "99.9"} if "bmi" in v else v)

    result = compare_documents(export(p.meta, records), export(p.meta, b_records))

    assert result.passed
    (finding,) = result.findings
    assert (finding.kind, finding.severity, finding.rule) == ("value_changed", "warning", "calc-recomputed")
    assert finding.location == "record 2 › field bmi"
    assert "recomputed" in finding.reason
    assert result.known_fired == {"calc-recomputed": 1}
    assert result.records.changed_count == 0


def test_a_calc_appearing_in_an_event_where_a_had_no_row_is_a_warning_with_its_default_zeros():
    p = project(longitudinal=True)
    records = list(p.records())
    # Record 2 has no visit_2 row; suppose REDCap recomputed a calc there. The
    # writer (like REDCap) fills the row's checkbox options and form status with "0".
    grown = [replace(r, rows=r.rows + (RecordRow("visit_2_arm_1", "", None, {"bmi": "21.3"}),))
             if r.record_id == "2" else r for r in records]
    blank_row = [replace(r, rows=r.rows + (RecordRow("visit_2_arm_1", "", None, {"height": "170"}),))
                 if r.record_id == "2" else r for r in records]

    recomputed = compare_documents(export(p.meta, records), export(p.meta, grown))
    real_data = compare_documents(export(p.meta, records), export(p.meta, blank_row))

    assert recomputed.passed
    assert [(d.kind, d.location, d.rule) for d in recomputed.findings] == [
        ("row_extra", "record 2 › event visit_2_arm_1", "calc-recomputed")]
    assert [(d.kind, d.severity) for d in real_data.findings] == [("row_extra", "failure")]


def test_the_same_change_to_an_ordinary_field_fails():
    p = project()
    records = list(p.records())
    b_records = edit_values(records, "2", lambda v: {**v, "height": "199"} if "height" in v else v)

    result = compare_documents(export(p.meta, records), export(p.meta, b_records))

    assert not result.passed
    assert [(d.kind, d.location) for d in result.findings] == [("value_changed", "record 2 › field height")]
    assert result.records.changed == ("2",)


def test_survey_timestamps_present_in_a_and_absent_in_b_are_a_warning():
    p = project(surveys=True)
    records = list(p.records())
    a = export(p.meta, records, options=ExportOptions(export_survey_fields=True))
    no_survey = edit_values(records, "1", dict)  # values unchanged; the pseudo-fields go with the option
    b = export(p.meta, no_survey, options=ExportOptions(export_survey_fields=False))

    result = compare_documents(a, b)

    assert result.passed
    assert result.findings and all(d.rule == "survey-fields-not-imported" for d in result.findings)
    assert all("exported without survey fields" in d.reason for d in result.findings)
    assert {d.kind for d in result.findings} == {"not_compared"}
    assert "records › field measurements_timestamp" in {d.location for d in result.findings}
    assert result.known_fired["survey-fields-not-imported"] > 0


def _files_project():
    p = project(files=True)
    return p, list(p.records()), ExportOptions(export_files=True)


def test_files_not_exported_in_b_are_not_compared_when_the_caller_says_so():
    p, records, with_files = _files_project()
    a = export(p.meta, records, options=with_files)
    b = export(p.meta, records, options=ExportOptions(export_files=False))

    told = compare_documents(a, b, options=CompareOptions(b_files=False))
    not_told = compare_documents(a, b)

    assert told.passed
    assert {d.rule for d in told.findings} == {"files-not-exported"}
    assert not not_told.passed
    assert {d.kind for d in not_told.findings} == {"value_missing"}


def _edit_file(records, record_id, change):
    out = []
    for r in records:
        if r.record_id == record_id:
            rows = tuple(RecordRow(row.event, row.repeat_instrument, row.instance, dict(row.values),
                                   {k: change(v) for k, v in row.files.items()}) for row in r.rows)
            r = replace(r, rows=rows)
        out.append(r)
    return out


def test_an_altered_file_fails_and_a_sniffed_mime_type_is_a_warning():
    p, records, with_files = _files_project()
    rid = next(r.record_id for r in records if any(row.files for row in r.rows))
    a_records = _edit_file(records, rid, lambda f: f._replace(mime_type=""))
    sniffed = _edit_file(records, rid, lambda f: f._replace(mime_type="text/plain"))
    altered = _edit_file(records, rid, lambda f: FileValue(f.doc_name, "", f.content + b"!"))
    a = export(p.meta, a_records, options=with_files)

    ok = compare_documents(a, export(p.meta, sniffed, options=with_files))
    bad = compare_documents(a, export(p.meta, altered, options=with_files))

    assert ok.passed and ok.findings and {d.rule for d in ok.findings} == {"file-mime-sniffed"}
    assert not bad.passed
    assert {(d.kind, d.reason) for d in bad.findings} == {("file_changed", "the file's content differs")}
    assert all(d.location.startswith(f"record {rid} › ") for d in bad.findings)


def test_dag_assignments_are_compared_only_when_b_was_exported_with_dags():
    p = project(dags=2)
    records = list(p.records())
    moved = [replace(r, dag="" if r.dag else p.meta.dags[0][1]) if r.record_id == "3" else r for r in records]
    with_dags = ExportOptions(export_dags=True)
    a = export(p.meta, records, options=with_dags)

    changed = compare_documents(a, export(p.meta, moved, options=with_dags))
    unexported = compare_documents(a, export(p.meta, records, options=ExportOptions(export_dags=False)))

    assert [(d.kind, d.location) for d in changed.findings] == [("dag_changed", "record 3 › data access group")]
    assert unexported.passed
    assert [d.rule for d in unexported.findings] == ["dags-not-exported"]
    # A backup exported without its DAG column says nothing about assignments.
    no_column = compare_documents(export(p.meta, records, options=ExportOptions(export_dags=False)),
                                  export(p.meta, moved, options=with_dags))
    assert no_column.passed and no_column.findings == ()


def test_a_longitudinal_project_with_one_event_restored_as_classic_is_a_warning():
    p = project()
    records = list(p.records())
    lone = Event("baseline_arm_1", "Baseline", 1, "Arm 1", name="Baseline", day_offset="0", offset_min="0",
                 offset_max="0", forms=tuple(f.name for f in p.meta.forms))
    a_meta = replace(p.meta, events=(lone,))
    a_records = [replace(r, rows=tuple(replace(row, event="baseline_arm_1") for row in r.rows)) for r in records]
    assert all(row.event == CLASSIC_EVENT for r in records for row in r.rows)

    result = compare_documents(export(a_meta, a_records), export(p.meta, records))

    assert result.passed, [str(d) for d in result.findings]
    (finding,) = result.findings
    assert (finding.kind, finding.location, finding.rule) == (
        "event_missing", "event baseline_arm_1", "single-event-to-classic")


def test_multi_line_text_shrunk_by_the_import_pre_pass_is_a_warning():
    p = project()
    records = list(p.records())
    a = edit_values(records, "1", lambda v: {**v, "notes": "first\n\n\n\nsecond"})
    b = edit_values(records, "1", lambda v: {**v, "notes": "first\n\nsecond"})

    result = compare_documents(export(p.meta, a), export(p.meta, b))

    assert result.passed
    assert [(d.location, d.rule) for d in result.findings] == [("record 1 › field notes", "prepass-text")]


def _replace_field(meta, name, **changes):
    return replace(meta, fields=tuple(replace(f, **changes) if f.name == name else f for f in meta.fields))


def test_a_legacy_validation_name_rewritten_by_the_import_is_a_warning():
    meta = project().meta
    dob = meta.field_map["dob"]
    assert dob.validation == "date_ymd"

    result = compare_documents(export(_replace_field(meta, "dob", validation="date", data_type="text")),
                               export(meta))

    assert result.passed
    assert [(d.location, d.a, d.b) for d in result.findings] == [
        ("form demographics › field dob › validation", "date", "date_ymd")]
    assert result.known_fired == {"legacy-validation-name": 1}


def test_repeating_events_flagged_by_newer_redcap_are_a_warning_only_for_old_backups():
    p = project(longitudinal=True, repeating_events=True)
    event = p.meta.repeating_events[0]

    old = compare_documents(export(p.meta, version="13.4.8"), export(p.meta))
    unflagged = export(p.meta, version="14.7.3").replace(b'Repeating="Yes"', b'Repeating="No"')
    recent = compare_documents(unflagged, export(p.meta, version="14.7.3"))

    assert old.passed
    assert [(d.location, d.rule) for d in old.findings] == [(f"event {event} › repeating", "repeating-event-flag")]
    assert [(d.kind, d.severity, d.location) for d in recent.findings] == [
        ("repeating_changed", "failure", f"event {event} › repeating")]


def test_slider_labels_appearing_and_sql_choices_disappearing_are_version_warnings():
    meta = project().meta
    dyn = Field("dyn_site", "demographics", "sql", label="Site", choices=(Choice("1", "Leeds"), Choice("2", "York")))
    fields = list(meta.fields)
    fields.insert(3, dyn)
    a_meta = _replace_field(replace(meta, fields=tuple(fields)), "pain", slider_labels=None)
    b_meta = _replace_field(a_meta, "dyn_site", choices=())
    b_meta = _replace_field(b_meta, "pain", slider_labels=meta.field_map["pain"].slider_labels or "Low | | High")

    result = compare_documents(export(a_meta, version="10.5.1"), export(b_meta))

    assert result.passed, [str(d) for d in result.findings]
    assert {d.rule for d in result.findings} == {"slider-labels-added", "sql-choices-dropped"}


def test_alert_senders_replaced_by_the_importing_user_are_a_warning():
    def alerts(sender):
        row = ExtensionRow((("alert_title", "New record"), ("email_from", sender), ("email_deleted", "1")))
        return replace(project().meta, groups=(ExtensionGroup("AlertsGroup", "Alerts", (row,)),))

    result = compare_documents(export(alerts("pi@site.example")), export(alerts("drill@sandbox.example")))

    assert result.passed
    assert [(d.location, d.rule) for d in result.findings] == [
        ("group AlertsGroup › row 1 “New record” › email_from", "importer-email")]


# -- §6.4 route and version effects ----------------------------------------------------------------
def test_settings_and_groups_absent_in_a_are_not_compared_and_listed_once():
    meta = project().meta
    newer = ("MyCapEnabled", "DataResolutionWorkflowEnabled", "HideFilledForms")
    older = replace(meta, settings={k: v for k, v in meta.settings.items() if k not in newer})
    roles = ExtensionGroup("UserRolesGroup", "UserRoles", (ExtensionRow((("role_name", "Data entry"),)),))

    result = compare_documents(export(older), export(replace(meta, groups=meta.groups + (roles,))))

    assert result.passed
    assert [(d.location, d.b, d.rule) for d in result.findings] == [
        ("settings absent in A", ", ".join(sorted(newer)), "absent-in-a"),
        ("groups absent in A", "UserRolesGroup", "absent-in-a")]
    assert result.known_fired == {"absent-in-a": 4}


def test_a_setting_newer_redcap_retired_is_a_warning():
    meta = project().meta

    result = compare_documents(export(with_setting(meta, FormActivationSurveyAutocontinue="0"), version="11.2.3"),
                               export(meta))

    assert result.passed
    assert [(d.location, d.rule) for d in result.findings] == [
        ("setting FormActivationSurveyAutocontinue", "retired-setting")]


def test_a_default_zero_written_by_one_side_only_is_a_warning():
    p = project()
    records = list(p.records())
    a = export(p.meta, records).replace(b'<ItemData ItemOID="measurements_complete" Value="0"/>', b"", 1)
    assert a != export(p.meta, records), "the generated project has no untouched form status"

    result = compare_documents(a, export(p.meta, records))

    assert result.passed
    assert [(d.kind, d.rule) for d in result.findings] == [("value_extra", "default-zero")]


def test_settings_present_in_a_and_absent_in_b_fail():
    meta = project().meta
    lost = replace(meta, settings={k: v for k, v in meta.settings.items() if k != "CustomRecordLabel"})

    result = compare_documents(export(meta), export(lost))

    assert not result.passed
    assert [(d.kind, d.location, d.b) for d in result.findings] == [
        ("setting_changed", "setting CustomRecordLabel", None)]


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_rule_is_documented_in_the_json_of_a_result_that_fired_it(name):
    rule = RULES[name]
    from harness.compare.model import Comparison, RecordsComparison

    result = Comparison(structure=(), records=RecordsComparison(), known_fired={name: 3}, passed=True, warnings=0)

    assert result.to_dict()["known_rules"][name] == rule.to_dict()
    assert result.to_dict()["known_fired"] == {name: 3}

