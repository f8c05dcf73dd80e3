"""Semantic checks: what REDCap's importer would trip over, beyond what the XSD can see.

Each rule has a document that triggers it and one that does not. The documents
are small, hand-made REDCap project XML: a longitudinal project (baseline with
demographics; follow-up with a repeating "visit" instrument) or the same forms
as a classic project, validated through the real schema and the real reader.
"""

from __future__ import annotations

import io

import pytest

from harness.schema import validate

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema

HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
    'xmlns:redcap="https://projectredcap.org" ODMVersion="1.3.1" FileOID="000-00-0000" FileType="Snapshot" '
    'Description="Semantic" AsOfDateTime="2025-03-14T09:26:53" CreationDateTime="2025-03-14T09:26:53" '
    'SourceSystem="REDCap" SourceSystemVersion="15.7.6">\n'
)

FIELDS = {
    # name: (form, field type, validation, choices)
    "record_id": ("demographics", "text", "", ""),
    "redcap_data_access_group": ("demographics", None, "", ""),
    "sex": ("demographics", "radio", "", "0, Female | 1, Male"),
    "dob": ("demographics", "text", "date_ymd", ""),
    "age": ("demographics", "text", "int", ""),
    "consent": ("demographics", "yesno", "", ""),
    "symptoms": ("demographics", "checkbox", "", "1, Cough | 2, Fever"),
    "lookup": ("demographics", "sql", "", ""),
    "demographics_complete": ("demographics", "select", "", "0, Incomplete | 1, Unverified | 2, Complete"),
    "visit_date": ("visit", "text", "date_ymd", ""),
    "visit_complete": ("visit", "select", "", "0, Incomplete | 1, Unverified | 2, Complete"),
}


def _choices(text: str) -> list[tuple[str, str]]:
    return [tuple(p.strip() for p in part.split(",", 1)) for part in text.split("|") if part.strip()]


def study(*, longitudinal: bool = True, dags: tuple[str, ...] = ("site_a",), missing: str = "",
          fields: dict = FIELDS, checkbox_refs: tuple[str, ...] | None = None) -> str:
    """A Study in REDCap 15.7's shape; only what the rules need."""
    g = ['<GlobalVariables><StudyName>Semantic</StudyName><StudyDescription>x</StudyDescription>'
         '<ProtocolName>Semantic</ProtocolName>',
         f"<redcap:MissingDataCodes>{missing}</redcap:MissingDataCodes>",
         '<redcap:RepeatingInstrumentsAndEvents><redcap:RepeatingInstruments>'
         f'<redcap:RepeatingInstrument redcap:UniqueEventName="{"follow_up_arm_1" if longitudinal else "event_1_arm_1"}" '
         'redcap:RepeatInstrument="visit" redcap:CustomLabel=""/>'
         "</redcap:RepeatingInstruments></redcap:RepeatingInstrumentsAndEvents>"]
    if dags:
        g.append("<redcap:DataAccessGroupsGroup>"
                 + "".join(f'<redcap:DataAccessGroups group_name="{d}"/>' for d in dags)
                 + "</redcap:DataAccessGroupsGroup>")
    g.append("</GlobalVariables>")
    m = ['<MetaDataVersion OID="Metadata.Semantic_2025-03-14_0926" Name="Semantic" redcap:RecordIdField="record_id">']
    if longitudinal:
        m.append('<Protocol><StudyEventRef StudyEventOID="Event.baseline_arm_1" OrderNumber="1" Mandatory="No"/>'
                 '<StudyEventRef StudyEventOID="Event.follow_up_arm_1" OrderNumber="2" Mandatory="No"/></Protocol>')
        for n, (unique, name, form) in enumerate((("baseline_arm_1", "Baseline", "demographics"),
                                                 ("follow_up_arm_1", "Follow Up", "visit")), 1):
            m.append(f'<StudyEventDef OID="Event.{unique}" Name="{name}" Type="Common" Repeating="No" '
                     f'redcap:EventName="{name}" redcap:CustomEventLabel="" redcap:UniqueEventName="{unique}" '
                     f'redcap:ArmNum="1" redcap:ArmName="Arm 1" redcap:DayOffset="{n}" redcap:OffsetMin="0" '
                     f'redcap:OffsetMax="0"><FormRef FormOID="Form.{form}" OrderNumber="1" Mandatory="No" '
                     f'redcap:FormName="{form}"/></StudyEventDef>')
    for form, label in (("demographics", "Demographics"), ("visit", "Visit")):
        m.append(f'<FormDef OID="Form.{form}" Name="{label}" Repeating="No" redcap:FormName="{form}">'
                 f'<ItemGroupRef ItemGroupOID="{form}.grp" Mandatory="No"/></FormDef>')
    defs, lists = [], []
    for form in ("demographics", "visit"):
        refs = []
        for name, (f, ftype, validation, choices) in fields.items():
            if f != form:
                continue
            if ftype == "checkbox":
                codes = [c for c, _ in _choices(choices)]
                for oid in checkbox_refs if checkbox_refs is not None else [f"{name}___{c}" for c in codes]:
                    refs.append(f'<ItemRef ItemOID="{oid}" Mandatory="No" redcap:Variable="{name}"/>')
                for c in codes:
                    defs.append(f'<ItemDef OID="{name}___{c}" Name="{name}___{c}" DataType="boolean" Length="1" '
                                f'redcap:Variable="{name}" redcap:FieldType="checkbox">'
                                f'<CodeListRef CodeListOID="{name}___{c}.choices"/></ItemDef>')
                    lists.append(f'<CodeList OID="{name}___{c}.choices" Name="{name}___{c}" DataType="boolean" '
                                 f'redcap:Variable="{name}" redcap:CheckboxChoices="{choices}">'
                                 '<CodeListItem CodedValue="1"><Decode><TranslatedText>Checked</TranslatedText></Decode></CodeListItem>'
                                 '<CodeListItem CodedValue="0"><Decode><TranslatedText>Unchecked</TranslatedText></Decode></CodeListItem>'
                                 "</CodeList>")
                continue
            refs.append(f'<ItemRef ItemOID="{name}" Mandatory="No" redcap:Variable="{name}"/>')
            attrs = f' redcap:Variable="{name}" redcap:FieldType="{ftype}"' if ftype else ""
            if validation:
                attrs += f' redcap:TextValidationType="{validation}"'
            body = ""
            if ftype in ("radio", "select", "yesno") or (ftype == "sql" and choices):
                body = f'<CodeListRef CodeListOID="{name}.choices"/>'
                items = _choices(choices) if ftype != "yesno" else [("1", "Yes"), ("0", "No")]
                lists.append(f'<CodeList OID="{name}.choices" Name="{name}" '
                             f'DataType="{"boolean" if ftype == "yesno" else "text"}" redcap:Variable="{name}">'
                             + "".join(f'<CodeListItem CodedValue="{c}"><Decode><TranslatedText>{lbl}</TranslatedText>'
                                       "</Decode></CodeListItem>" for c, lbl in items)
                             + "</CodeList>")
            defs.append(f'<ItemDef OID="{name}" Name="{name}" DataType="text" Length="999"{attrs}>{body}</ItemDef>')
        m.append(f'<ItemGroupDef OID="{form}.grp" Name="{form}" Repeating="No">{"".join(refs)}</ItemGroupDef>')
    m.extend(defs)
    m.extend(lists)
    m.append("</MetaDataVersion>")
    return '<Study OID="Project.Semantic">' + "".join(g) + "".join(m) + "</Study>\n"


def item(oid: str, value: str) -> str:
    return f'<ItemData ItemOID="{oid}" Value="{value}"/>'


def form(name: str, *items: str, key: str = "1", group: str | None = None) -> str:
    group = f"{name}.grp" if group is None else group
    return (f'<FormData FormOID="Form.{name}" FormRepeatKey="{key}">'
            f'<ItemGroupData ItemGroupOID="{group}" ItemGroupRepeatKey="1">{"".join(items)}</ItemGroupData></FormData>')


def event(unique: str, *forms: str, key: str = "1") -> str:
    return (f'<StudyEventData StudyEventOID="Event.{unique}" StudyEventRepeatKey="{key}" '
            f'redcap:UniqueEventName="{unique}">{"".join(forms)}</StudyEventData>')


def subject(key: str, *blocks: str) -> str:
    return f'<SubjectData SubjectKey="{key}" redcap:RecordIdField="record_id">{"".join(blocks)}</SubjectData>'


def baseline(key: str, *items: str) -> str:
    """A longitudinal record whose baseline demographics hold ``items`` (after the record ID)."""
    return subject(key, event("baseline_arm_1", form("demographics", item("record_id", key), *items)))


def run(*subjects: str, meta: str | None = None, **study_kw):
    body = (meta if meta is not None else study(**study_kw))
    body += '<ClinicalData StudyOID="Project.Semantic" MetaDataVersionOID="Metadata.Semantic_2025-03-14_0926">'
    body += "".join(subjects) + "</ClinicalData>"
    return validate(io.BytesIO((HEAD + body + "</ODM>").encode()), name="semantic.xml", max_messages=200)


def codes(result) -> set[str]:
    return {f.code for f in result.findings}


# -- the baseline: a clean project has nothing to report --------------------------------------------
def test_a_clean_longitudinal_project_has_no_semantic_findings():
    result = run(
        baseline("1", item("sex", "0"), item("dob", "1970-01-31"), item("age", "54"), item("consent", "1"),
                 item("symptoms___1", "1"), item("symptoms___2", "0"), item("redcap_data_access_group", "site_a")),
        subject("2", event("follow_up_arm_1", form("visit", item("visit_date", "2025-01-02"), key="1"),
                           form("visit", item("visit_date", "2025-02-02"), key="2"))),
    )
    assert result.valid
    # Only the sql field's restore blocker, which this project has on purpose.
    assert {c for c in codes(result) if c.startswith("SEM-")} == {"SEM-RESTORE-BLOCKER-SQL"}


# -- references ---------------------------------------------------------------------------------------
def test_an_item_oid_that_is_no_field_is_an_error():
    result = run(baseline("1", item("weight", "70")))
    [finding] = result.by_code("SEM-UNDEFINED-ITEM")
    assert finding.severity == "error" and finding.field == "weight" and finding.record == "1"
    assert finding.event == "baseline_arm_1"
    assert not result.valid


def test_checkbox_options_and_export_pseudo_fields_are_defined_items():
    result = run(baseline("1", item("symptoms___2", "1"), item("redcap_data_access_group", "site_a")))
    assert "SEM-UNDEFINED-ITEM" not in codes(result)


def test_a_checkbox_option_that_is_not_a_choice_is_undefined():
    result = run(baseline("1", item("symptoms___3", "1")))
    assert [f.field for f in result.by_code("SEM-UNDEFINED-ITEM")] == ["symptoms___3"]


def test_missing_data_codes_add_checkbox_pseudo_options():
    result = run(baseline("1", item("symptoms___ni", "1")), missing="NI, No information")
    assert "SEM-UNDEFINED-ITEM" not in codes(result)


def test_an_undefined_event_is_an_error():
    result = run(subject("1", event("week_52_arm_1", form("demographics", item("record_id", "1")))))
    [finding] = result.by_code("SEM-UNDEFINED-EVENT")
    assert finding.event == "week_52_arm_1" and finding.severity == "error"


def test_an_undefined_form_is_an_error():
    result = run(subject("1", event("baseline_arm_1", form("labs", item("record_id", "1")))))
    assert result.by_code("SEM-UNDEFINED-FORM")
    negative = run(baseline("1"))
    assert "SEM-UNDEFINED-FORM" not in codes(negative)


def test_a_form_in_an_event_it_is_not_mapped_to_is_an_error():
    result = run(subject("1", event("baseline_arm_1", form("visit", item("visit_date", "2025-01-01")))))
    [finding] = result.by_code("SEM-FORM-NOT-IN-EVENT")
    assert "'visit'" in finding.message and finding.event == "baseline_arm_1"


def test_classic_projects_have_every_form_in_their_one_event():
    result = run(subject("1", form("demographics", item("record_id", "1")), form("visit", item("visit_date", "2025-01-01"))),
                 longitudinal=False)
    assert not codes(result) & {"SEM-FORM-NOT-IN-EVENT", "SEM-UNDEFINED-EVENT", "SEM-UNDEFINED-FORM"}


def test_an_item_group_oid_that_is_not_defined_is_only_a_warning():
    result = run(subject("1", event("baseline_arm_1", form("demographics", item("record_id", "1"), group="demographics.nope"))))
    [finding] = result.by_code("SEM-UNDEFINED-ITEMGROUP")
    assert finding.severity == "warning"
    # REDCap's empty ItemGroupOID is its dialect (a note), not an undefined group.
    empty = run(subject("1", event("baseline_arm_1", form("demographics", item("record_id", "1"), group=""))))
    assert "SEM-UNDEFINED-ITEMGROUP" not in codes(empty)
    assert "DIALECT-EMPTY-ITEMGROUPOID" in codes(empty)


# -- codes and values -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("oid", "bad", "good"), [
    ("sex", "2", "1"),
    ("consent", "yes", "0"),
    ("symptoms___1", "2", "1"),
    ("demographics_complete", "3", "2"),
])
def test_a_coded_value_outside_its_code_list_is_an_error(oid, bad, good):
    result = run(baseline("1", item(oid, bad)))
    [finding] = result.by_code("SEM-CODE-NOT-IN-LIST")
    assert finding.field == oid and bad in finding.message and finding.severity == "error"
    assert "SEM-CODE-NOT-IN-LIST" not in codes(run(baseline("1", item(oid, good))))


def test_missing_data_codes_are_allowed_in_any_field():
    result = run(baseline("1", item("sex", "NI"), item("dob", "UNK"), item("consent", "NI")), missing="NI, No information\nUNK, Unknown")
    assert not codes(result) & {"SEM-CODE-NOT-IN-LIST", "SEM-VALIDATION-TYPE"}
    assert "SEM-CODE-NOT-IN-LIST" in codes(run(baseline("1", item("sex", "NI"))))


def test_sql_fields_without_choices_are_not_checked_but_flagged_as_a_restore_blocker():
    result = run(baseline("1", item("lookup", "anything")))
    assert "SEM-CODE-NOT-IN-LIST" not in codes(result)
    [blocker] = result.by_code("SEM-RESTORE-BLOCKER-SQL")
    assert blocker.severity == "warning" and blocker.field == "lookup"
    with_choices = dict(FIELDS, lookup=("demographics", "sql", "", "a, A | b, B"))
    assert "SEM-RESTORE-BLOCKER-SQL" not in codes(run(baseline("1"), fields=with_choices))


@pytest.mark.parametrize(("oid", "bad", "good"), [
    ("dob", "31/01/1970", "1970-01-31"),
    ("dob", "2023-02-30", "2024-02-29"),
    ("age", "54.5", "-3"),
])
def test_a_value_that_does_not_fit_its_validation_is_a_warning(oid, bad, good):
    result = run(baseline("1", item(oid, bad)))
    [finding] = result.by_code("SEM-VALIDATION-TYPE")
    assert finding.severity == "warning" and finding.field == oid
    assert result.valid  # REDCap itself stores such values; a warning, not an error
    assert "SEM-VALIDATION-TYPE" not in codes(run(baseline("1", item(oid, good))))


@pytest.mark.parametrize(("validation", "bad", "good"), [
    ("datetime_ymd", "2024-01-31 10:00", "2024-01-31T10:00"),
    ("datetime_seconds_dmy", "2024-01-31T10:00", "2024-01-31T10:00:59"),
    ("time", "24:00", "23:59"),
    ("time_mm_ss", "61:00", "59:59"),
    ("number_2dp", "1.5", "1.50"),
    ("number_1dp_comma_decimal", "1.5", "1,5"),
    ("email", "someone", "someone@example.org"),
    ("phone", "12345", "(615) 322-2222"),
    ("zipcode", "1234", "37232-0001"),
    ("alpha_only", "abc1", "abc"),
])
def test_each_validation_type_is_checked_in_its_stored_form(validation, bad, good):
    fields = dict(FIELDS, measure=("demographics", "text", validation, ""))
    assert "SEM-VALIDATION-TYPE" in codes(run(baseline("1", item("measure", bad)), fields=fields))
    assert "SEM-VALIDATION-TYPE" not in codes(run(baseline("1", item("measure", good)), fields=fields))


def test_many_bad_values_of_one_field_are_one_finding_with_a_count():
    result = run(*(baseline(str(n), item("dob", "yesterday")) for n in range(1, 31)))
    [finding] = result.by_code("SEM-VALIDATION-TYPE")
    assert finding.count == 30 and finding.record == "1"
    assert result.counts["warning"] == 2  # that one, and the project's sql restore blocker


def test_dag_values_must_be_data_access_groups_of_the_project():
    result = run(baseline("1", item("redcap_data_access_group", "site_z")))
    [finding] = result.by_code("SEM-UNKNOWN-DAG")
    assert "site_z" in finding.message and "site_a" in finding.message
    assert "SEM-UNKNOWN-DAG" not in codes(run(baseline("1", item("redcap_data_access_group", "site_a"))))


def test_dag_values_are_not_checked_when_the_file_has_no_dag_list():
    result = run(baseline("1", item("redcap_data_access_group", "anything")), dags=())
    assert "SEM-UNKNOWN-DAG" not in codes(result)


# -- checkbox metadata --------------------------------------------------------------------------------
def test_checkbox_items_must_match_its_choices():
    result = run(baseline("1"), checkbox_refs=("symptoms___1", "symptoms___9"))
    [finding] = result.by_code("SEM-CHECKBOX-MISMATCH")
    assert finding.field == "symptoms" and "symptoms___2" in finding.message and "symptoms___9" in finding.message
    assert "SEM-CHECKBOX-MISMATCH" not in codes(run(baseline("1")))


def test_a_radio_without_choices_cannot_be_restored():
    fields = dict(FIELDS, sex=("demographics", "radio", "", ""))
    [finding] = run(baseline("1"), fields=fields).by_code("SEM-NO-CHOICES")
    assert finding.field == "sex" and finding.severity == "error"


# -- records, rows and instances -------------------------------------------------------------------------
def test_an_empty_subject_key_is_an_error():
    result = run(subject("", event("baseline_arm_1", form("demographics", item("record_id", "")))))
    assert result.by_code("SEM-EMPTY-SUBJECTKEY")
    assert "SEM-EMPTY-SUBJECTKEY" not in codes(run(baseline("1")))


def test_instances_above_one_only_on_repeating_instruments():
    result = run(subject("1", event("baseline_arm_1", form("demographics", item("record_id", "1"), key="2"))))
    [finding] = result.by_code("SEM-REPEAT-KEY")
    assert "instance 2" in finding.message and "'demographics'" in finding.message and finding.instance == "2"
    repeating = run(subject("1", event("follow_up_arm_1", form("visit", item("visit_date", "2025-01-01"), key="2"))))
    assert "SEM-REPEAT-KEY" not in codes(repeating)


def test_instances_above_one_only_on_repeating_events():
    result = run(subject("1", event("baseline_arm_1", form("demographics", item("record_id", "1")), key="3")))
    [finding] = result.by_code("SEM-REPEAT-KEY")
    assert "StudyEventRepeatKey" not in finding.message and "event 'baseline_arm_1'" in finding.message
    meta = study().replace(
        "<redcap:RepeatingInstruments>",
        '<redcap:RepeatingEvent redcap:UniqueEventName="baseline_arm_1"/><redcap:RepeatingInstruments>')
    ok = run(subject("1", event("baseline_arm_1", form("demographics", item("record_id", "1")), key="3")), meta=meta)
    assert "SEM-REPEAT-KEY" not in codes(ok)


def test_repeat_keys_must_be_instance_numbers():
    result = run(subject("1", event("follow_up_arm_1", form("visit", item("visit_date", "2025-01-01"), key="two"))))
    [finding] = result.by_code("SEM-REPEAT-KEY")
    assert "'two'" in finding.message


def test_classic_repeating_instruments_use_event_1_arm_1():
    result = run(subject("1", form("visit", item("visit_date", "2025-01-01"), key="2")), longitudinal=False)
    assert "SEM-REPEAT-KEY" not in codes(result)


def test_the_same_event_twice_inside_one_subject_data_is_merged_not_flagged():
    # REDCap writes the non-repeating forms of an event, then later the same event again for its
    # repeating instances (research §3.2).
    record = subject(
        "1",
        event("baseline_arm_1", form("demographics", item("record_id", "1"))),
        event("follow_up_arm_1", form("visit", item("visit_date", "2025-01-01"), key="1")),
        event("baseline_arm_1", form("demographics", item("sex", "1"))),
    )
    assert not codes(run(record)) & {"SEM-DUPLICATE-ROW", "SEM-RECORD-SPLIT"}


def test_the_same_row_in_two_subject_data_of_one_record_is_an_error():
    result = run(baseline("1", item("sex", "0")), baseline("1", item("sex", "1")))
    [finding] = result.by_code("SEM-DUPLICATE-ROW")
    assert finding.record == "1" and finding.event == "baseline_arm_1" and finding.severity == "error"
    assert result.by_code("SEM-RECORD-SPLIT")


def test_a_record_split_over_two_subject_data_without_overlap_is_a_warning():
    result = run(baseline("1"), subject("1", event("follow_up_arm_1", form("visit", item("visit_date", "2025-01-01")))))
    assert "SEM-DUPLICATE-ROW" not in codes(result)
    [split] = result.by_code("SEM-RECORD-SPLIT")
    assert split.severity == "warning"
    assert result.valid


def test_repeat_instances_of_one_record_are_different_rows():
    result = run(
        subject("1", event("follow_up_arm_1", form("visit", item("visit_date", "2025-01-01"), key="1"))),
        subject("1", event("follow_up_arm_1", form("visit", item("visit_date", "2025-02-01"), key="2"))),
    )
    assert "SEM-DUPLICATE-ROW" not in codes(result)


def test_a_data_only_export_skips_data_checks_with_a_warning():
    result = run(baseline("1", item("nonsense", "x")), meta="")
    assert "SEM-UNDEFINED-ITEM" not in codes(result)
    [finding] = result.by_code("SEM-NO-METADATA")
    assert finding.severity == "warning"


def test_semantic_checks_can_be_turned_off():
    doc = HEAD + study() + '<ClinicalData StudyOID="Project.Semantic" MetaDataVersionOID="m">' + baseline("1", item("x", "1"))
    result = validate(io.BytesIO((doc + "</ClinicalData></ODM>").encode()), semantic=False)
    assert not any(c.startswith("SEM-") for c in codes(result))


def test_line_numbers_stay_exact_after_multi_line_values():
    """Validation reads the file as written (no REDCap text pre-pass), so a finding's
    line is the line an admin opens in an editor, even below a multi-line value."""
    from tests.corpus import EXAMPLE

    if not EXAMPLE.is_file():
        pytest.skip(f"research example not found at {EXAMPLE}")
    lines = EXAMPLE.read_text(encoding="utf-8").split("\n")
    target = next(i for i, line in enumerate(lines) if 'ItemOID="weight" Value="60.9"' in line)
    assert any("Value=" in line and not line.rstrip().endswith("/>") for line in lines[:target])  # a multi-line value above
    lines[target] = lines[target].replace('ItemOID="weight"', 'ItemOID="not_a_field"')
    result = validate(io.BytesIO("\n".join(lines).encode()), name="example.xml")
    (finding,) = [f for f in result.findings if f.code == "SEM-UNDEFINED-ITEM"]
    assert finding.line == target + 1
