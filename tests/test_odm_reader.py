"""The reader sees a project XML the way REDCap's importer does."""

from __future__ import annotations

import io

import pytest

from harness.errors import OdmError
from harness.odm.model import CLASSIC_EVENT, checkbox_code, parse_choices
from harness.odm.names import metadata_version_oid, study_oid, unique_dag_names, unique_event_names
from harness.odm.prepass import PrepassReader, rewrite
from harness.odm.reader import OdmDocument, read_metadata
from tests.corpus import EXAMPLE, corpus_params, manifest

HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:redcap="https://projectredcap.org" '
    'ODMVersion="1.3.1" FileOID="000-00-0000" FileType="Snapshot" Description="T" '
    'CreationDateTime="2025-01-01T00:00:00" SourceSystem="REDCap" SourceSystemVersion="15.7.6">\n'
)


def doc(body: str) -> OdmDocument:
    return OdmDocument(io.BytesIO((HEAD + body + "\n</ODM>").encode()))


@pytest.mark.parametrize("path", corpus_params())
def test_every_real_export_reads_with_its_records(path):
    with path.open("rb") as fh:
        document = OdmDocument(fh, name=path.name)
        meta = document.metadata
        records = list(document.records())
    assert meta.record_id_field == meta.fields[0].name
    assert meta.title
    expected = manifest().get(path.name)
    if expected:
        assert meta.header.source_system_version == expected["redcap_version"]
        assert len(records) == int(expected["records"])
        assert (document.subject_count > 0) == (expected["has_clinical_data"] == "y")
    for record in records:
        assert record.record_id
        for row in record.rows:
            assert row.event


def test_example_matches_its_description():
    if not EXAMPLE.is_file():
        pytest.skip(f"research example not found at {EXAMPLE}")
    with EXAMPLE.open("rb") as fh:
        document = OdmDocument(fh)
        meta = document.metadata
        records = {r.record_id: r for r in document.records()}
    assert [e.unique_name for e in meta.events] == ["baseline_arm_1", "follow_up_arm_1"]
    assert meta.is_repeating_form("follow_up_arm_1", "visit")
    symptoms = meta.field_map["symptoms"]
    assert symptoms.field_type == "checkbox" and [c.code for c in symptoms.choices] == ["1", "2", "3"]
    assert list(records) == ["1", "2", "10"]
    visits = [r for r in records["1"].rows if r.repeat_instrument == "visit"]
    assert [r.instance for r in visits] == [1, 2]
    baseline = next(r for r in records["1"].rows if r.event == "baseline_arm_1")
    # The raw newline inside Value survives, as it does in REDCap (research §3.7).
    assert baseline.values["symptom_notes"] == "Dry cough for 3 days.\nNo fever."


def test_classic_rows_use_event_1_arm_1_and_merge_dag():
    document = doc(
        '<Study OID="Project.T"><GlobalVariables><StudyName>T</StudyName></GlobalVariables>'
        '<MetaDataVersion OID="m" Name="T" redcap:RecordIdField="id">'
        '<FormDef OID="Form.f" Name="F" Repeating="No" redcap:FormName="f"><ItemGroupRef ItemGroupOID="f.id" Mandatory="No"/></FormDef>'
        '<ItemGroupDef OID="f.id" Name="F" Repeating="No"><ItemRef ItemOID="id" Mandatory="No" redcap:Variable="id"/>'
        '<ItemRef ItemOID="redcap_data_access_group" Mandatory="No" redcap:Variable="redcap_data_access_group"/></ItemGroupDef>'
        '<ItemDef OID="id" Name="id" DataType="text" Length="999" redcap:Variable="id" redcap:FieldType="text"/>'
        '<ItemDef OID="redcap_data_access_group" Name="redcap_data_access_group" DataType="text" Length="999"/>'
        "</MetaDataVersion></Study>"
        '<ClinicalData StudyOID="Project.T" MetaDataVersionOID="m"><SubjectData SubjectKey="7">'
        '<FormData FormOID="Form.f" FormRepeatKey="1"><ItemGroupData ItemGroupOID="f.id" ItemGroupRepeatKey="1">'
        '<ItemData ItemOID="id" Value="7"/><ItemData ItemOID="redcap_data_access_group" Value="site_a"/>'
        "</ItemGroupData></FormData></SubjectData></ClinicalData>"
    )
    assert document.metadata.pseudo_fields == ("redcap_data_access_group",)
    (record,) = document.records()
    assert record.dag == "site_a"
    assert [(r.event, r.repeat_instrument, r.instance) for r in record.rows] == [(CLASSIC_EVENT, "", None)]


@pytest.mark.parametrize(
    "payload",
    [
        '<?xml version="1.0"?><!DOCTYPE ODM [<!ENTITY x SYSTEM "file:///etc/passwd">]><ODM>&x;</ODM>',
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><ODM>&b;</ODM>',
        '<!doctype ODM SYSTEM "http://127.0.0.1:9/x.dtd"><ODM/>',
    ],
    ids=["xxe", "entity-bomb", "external-dtd"],
)
def test_hostile_xml_is_refused_before_parsing(payload):
    with pytest.raises(OdmError, match="DOCTYPE"):
        read_metadata(io.BytesIO(payload.encode()))


@pytest.mark.parametrize(
    "payload, hint",
    [
        (HEAD + "<Study OID='x'>", "truncated"),
        ("", "no XML"),
        ("\x89PNG\r\n\x1a\n....", "not XML|malformed|no XML"),
        ('<ODM xmlns="https://www.cdisc.org/ns/odm/v1.3"/>', "not ODM"),
    ],
    ids=["truncated", "empty", "binary", "wrong-namespace"],
)
def test_malformed_documents_get_an_error_that_says_what_happened(payload, hint):
    with pytest.raises(OdmError, match=hint):
        document = OdmDocument(io.BytesIO(payload.encode("latin-1")))
        document.drain()


def test_prepass_keeps_newlines_inside_attributes_and_tags_apart():
    raw = b'<a>\n\t<b v="x\r\ny"/>\n\t<c v="p\n\nq"/>\n</a>'
    assert rewrite(raw) == b'<a>\n<b v="x&#10;y"/>\n<c v="p&#10;q"/>\n</a>'


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_prepass_is_the_same_whatever_the_chunk_size(chunk):
    raw = (HEAD + '<Study OID="s">\r\n\t<x a="1\r\n\r\n2">t\tu</x>\n\n</Study>\n</ODM>\n\n').encode()
    whole = rewrite(raw.strip())
    assert PrepassReader(io.BytesIO(raw), chunk_size=chunk).read() == whole


def test_names_derived_like_redcap():
    assert unique_event_names([("Event 1", 1), ("Event 1", 1), ("XYZ", 2), ("!!!", 1)])[:3] == [
        "event_1_arm_1", "event_1b_arm_1", "xyz_arm_2"]
    assert unique_dag_names(["New DAG", "Site A ", "Site A"]) == ["new_dag", "site_a", "site_ab"]
    assert study_oid("REDCapR Repeating-instruments") == "Project.REDCapRRepeatinginstruments"
    assert metadata_version_oid("REDCapR Repeating-instruments", "2024-11-05 12:35:07") == (
        "Metadata.REDCapRRepeatinginstruments_2024-11-05_1235")
    assert checkbox_code("A-1.b") == "a_1_b"
    assert [c.code for c in parse_choices("1, Cough | 2, Fever|3,  x, y")] == ["1", "2", "3"]


@pytest.mark.parametrize("cut", [0.5, 0.9, -3], ids=["half", "most", "inside-closing-tag"])
def test_a_file_cut_anywhere_is_called_truncated(cut):
    if not EXAMPLE.is_file():
        pytest.skip(f"research example not found at {EXAMPLE}")
    data = EXAMPLE.read_bytes()
    end = int(len(data) * cut) if cut > 0 else len(data) + cut
    with pytest.raises(OdmError, match="truncated"):
        OdmDocument(io.BytesIO(data[:end])).drain()


def test_a_malformed_tag_mid_file_is_not_called_truncated():
    if not EXAMPLE.is_file():
        pytest.skip(f"research example not found at {EXAMPLE}")
    data = EXAMPLE.read_bytes().replace(b"<SubjectData", b"<Subject Data", 1)
    with pytest.raises(OdmError, match="malformed"):
        OdmDocument(io.BytesIO(data)).drain()
