"""Streaming validation: one pass, block by block, in constant memory, with findings people can act on."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from harness.errors import ArchiveError, OdmError
from harness.odm.prepass import PrepassReader
from harness.odm.reader import OdmDocument
from harness.schema import Validation, load_schema, validate
from harness.schema.findings import MORE, Finding, Findings
from harness.schema.locate import locate_schema
from tests.corpus import EXAMPLE, corpus_params

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema

ROOT = Path(__file__).resolve().parents[1]

HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:redcap="https://projectredcap.org" ODMVersion="1.3.1" '
    'FileOID="000-00-0000" FileType="Snapshot" CreationDateTime="2025-03-14T09:26:53" SourceSystem="REDCap" '
    'SourceSystemVersion="15.7.6">\n'
)
STUDY = ('<Study OID="Project.S"><GlobalVariables><StudyName>S</StudyName><StudyDescription>d</StudyDescription>'
         '<ProtocolName>S</ProtocolName></GlobalVariables></Study>\n')
CLINICAL = '<ClinicalData StudyOID="Project.S" MetaDataVersionOID="Metadata.S">\n{}</ClinicalData>\n'


def subject(key: str, items: str = '<ItemData ItemOID="record_id" Value="1"/>') -> str:
    return (f'<SubjectData SubjectKey="{key}"><FormData FormOID="Form.f" FormRepeatKey="1">'
            f'<ItemGroupData ItemGroupOID="f.g" ItemGroupRepeatKey="1">{items}</ItemGroupData></FormData></SubjectData>\n')


def odm(body: str, head: str = HEAD) -> bytes:
    return (head + body + "</ODM>").encode()


def run(data: bytes, **kw):
    kw.setdefault("max_messages", 100)
    return validate(io.BytesIO(data), name="t.xml", **kw)


def example() -> bytes:
    if not EXAMPLE.is_file():
        pytest.skip(f"research example not found at {EXAMPLE}")
    return EXAMPLE.read_bytes()


# -- one pass ----------------------------------------------------------------------------------------
def test_one_pass_validates_and_reads_the_model():
    data = example().replace(b'<ItemData ItemOID="weight" Value="60.9"/>', b'<ItemData ItemOID="weight" Value="60.9" Bad="1"/>')
    check = Validation("redcap")
    doc = OdmDocument(io.BytesIO(data), name="example.xml", on_block=check.on_block)
    records = list(doc.records())  # the reader's own pass; the validator rides along
    result = check.result(doc)
    assert [r.record_id for r in records] == ["1", "2", "10"]
    assert result.facts.records == 3 and result.facts.longitudinal and result.facts.redcap_version == "15.7.6"
    assert [f.code for f in result.findings if f.severity == "error"] == ["XSD002"]


@pytest.mark.parametrize("path", corpus_params())
def test_streamed_subtrees_judge_like_the_whole_document(path):
    """Every block is a global element of the schema, so validating them one by one is exact."""
    with path.open("rb") as fh:
        whole = etree.parse(PrepassReader(fh), etree.XMLParser(resolve_entities=False, huge_tree=True))
    schema = load_schema("redcap")
    streamed = validate(path)
    assert schema.validate(whole) == streamed.valid is True


def test_an_error_deep_in_a_subject_is_found_as_in_the_whole_document():
    data = example().replace(b'<ItemData ItemOID="weight" Value="60.9"/>', b'<ItemData Value="60.9"/>')
    whole = etree.parse(PrepassReader(io.BytesIO(data)))
    schema = load_schema("redcap")
    assert not schema.validate(whole)
    expected = [e.message for e in schema.error_log]
    streamed = run(data)
    assert [f.message.replace("Element '", "Element '{http://www.cdisc.org/ns/odm/v1.3}")
            for f in streamed.findings if f.code.startswith("XSD")] == expected


# -- where: path, line, hint ----------------------------------------------------------------------------
def test_findings_name_the_record_event_form_and_item():
    original = example()
    needle = b'<ItemData ItemOID="weight" Value="60.9"/>'
    assert needle in original
    data = original.replace(needle, b'<ItemData ItemOID="weight" Value="60.9" Unit="kg"/>')
    [finding] = [f for f in run(data).findings if f.severity == "error"]
    assert finding.code == "XSD002"
    assert finding.message == "Element 'ItemData', attribute 'Unit': The attribute 'Unit' is not allowed."
    assert finding.path == (
        '/ODM/ClinicalData[@StudyOID="Project.REDCapDrillExample"]/SubjectData[@SubjectKey="1"]'
        '/StudyEventData[@StudyEventOID="Event.follow_up_arm_1"][@StudyEventRepeatKey="1"]'
        '/FormData[@FormOID="Form.visit"][@FormRepeatKey="2"]/ItemGroupData[@ItemGroupOID="visit.visit_date"]'
        '/ItemData[@ItemOID="weight"]'
    )
    actual_line = original[: original.index(needle)].count(b"\n") + 1
    # REDCap's pre-pass folds the raw newline inside record 1's notes: lines after it drift by one.
    assert actual_line - 2 <= finding.line <= actual_line
    assert finding.hint


def test_root_and_clinical_data_attributes_are_validated_before_their_children():
    head = HEAD.replace(' FileOID="000-00-0000"', "")
    body = STUDY + '<ClinicalData StudyOID="Project.S">' + subject("1") + "</ClinicalData>"
    result = run(odm(body, head))
    missing = {(f.path, f.message) for f in result.findings if f.code == "XSD003"}
    assert ("/ODM", "Element 'ODM': The attribute 'FileOID' is required but missing.") in missing
    assert ('/ODM/ClinicalData[@StudyOID="Project.S"]',
            "Element 'ClinicalData': The attribute 'MetaDataVersionOID' is required but missing.") in missing
    assert all(f.line for f in result.findings if f.code == "XSD003")


def test_the_order_and_kind_of_top_level_elements_is_checked():
    body = CLINICAL.format(subject("1")) + STUDY + '<Foo OID="x"/>'
    result = run(odm(body))
    messages = [f.message for f in result.findings if f.code == "XSD001"]
    assert "Element 'Study': This element is not expected after 'ClinicalData' inside ODM." in messages
    assert any(m.startswith("Element 'Foo': This element is not expected inside ODM") for m in messages)
    assert not result.by_code("XSD006")  # one finding for the stray element, not two


def test_anything_but_subjects_inside_clinical_data_is_validated_too():
    body = STUDY + CLINICAL.format(subject("1") + "<Bogus/>" + "<AuditRecords/>" + subject("2"))
    result = run(odm(body))
    messages = [f.message for f in result.findings if f.code == "XSD001"]
    assert any(m.startswith("Element 'Bogus': This element is not expected inside ClinicalData") for m in messages)
    assert "Element 'SubjectData': This element is not expected after 'AuditRecords' inside ClinicalData." in messages


def test_two_studies_with_one_oid_are_reported():
    result = run(odm(STUDY + STUDY))
    [duplicate] = result.by_code("XSD005")
    assert "UC-O-1" in duplicate.message


# -- the cap --------------------------------------------------------------------------------------------
def test_findings_are_capped_and_the_rest_counted():
    body = STUDY + CLINICAL.format("".join(subject(str(n), '<ItemData Value="x"/>') for n in range(80)))
    result = run(odm(body), max_messages=10)
    assert result.counts["error"] == 80 and not result.valid
    assert len(result.findings) == 11 and result.findings[-1].code == MORE
    assert [f.severity for f in result.findings[:10]] == ["error"] * 10  # errors first
    assert result.omitted == sum(result.counts.values()) - 10
    assert f"{result.omitted} more" in result.findings[-1].message and "70 errors" in result.findings[-1].message


def test_the_collector_keeps_errors_before_other_findings_and_folds_groups():
    findings = Findings(limit=2)
    for n in range(5):
        findings.add(Finding("note", "N", f"note {n}", line=n))
    findings.add(Finding("error", "E", "late error", line=99))
    for n in range(3):
        findings.add(Finding("warning", "W", "same", line=n), group="field")
    shown, omitted = findings.result()
    assert [f.code for f in shown] == ["E", "W", MORE]
    assert shown[1].count == 3 and shown[1].line == 0
    assert findings.counts == {"error": 1, "warning": 1, "note": 5}
    assert omitted == 5


def test_finding_severity_is_one_of_three():
    with pytest.raises(ValueError):
        Finding("fatal", "X", "no")
    assert Finding("note", "X", "m", record="1", line=3).to_dict()["record"] == "1"


# -- could not run: hostile and malformed input raises, it does not "fail validation" --------------------
HOSTILE = {
    "xxe": b'<?xml version="1.0"?>\n<!DOCTYPE ODM [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
           b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3">&xxe;</ODM>',
    "billion-laughs": b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                      b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                      b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
                      b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3">&lol3;</ODM>',
    "doctype-after-bom": b"\xef\xbb\xbf  <!DOCTYPE ODM SYSTEM \"http://attacker.example/x.dtd\">"
                         b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"/>',
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_documents_with_a_doctype_are_refused(name):
    with pytest.raises(OdmError, match="DOCTYPE"):
        run(HOSTILE[name])


@pytest.mark.parametrize(("data", "says"), [
    (odm(STUDY + CLINICAL.format(subject("1"))).split(b"</ClinicalData>")[0], "truncated"),
    (odm(STUDY).replace(b"v1.3", b"v1.2", 1), "not ODM in namespace"),
    (b"\x00\x01binary\xff", "not"),
    (b"<notodm/>", "not ODM"),
])
def test_malformed_documents_cannot_be_validated(data, says):
    with pytest.raises(OdmError, match=says):
        run(data)


def test_archives_are_opened_safely_by_path(tmp_path):
    plain = example()
    gz = tmp_path / "backup.xml.gz"
    gz.write_bytes(gzip.compress(plain))
    zipped = tmp_path / "backup.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("REDCapDrillExample.xml", plain)
    for path in (gz, zipped):
        result = validate(path)
        assert result.valid and result.facts.name == path.name and result.facts.xml_bytes == len(plain)
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(ArchiveError, match="empty"):
        validate(empty)


def test_a_missing_schema_is_a_could_not_run_error(monkeypatch, tmp_path):
    from harness.errors import SchemaError

    monkeypatch.delenv("REDCAP_DRILL_ODM_SCHEMA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(SchemaError, match="schema install"):
        run(odm(STUDY))


# -- memory ---------------------------------------------------------------------------------------------
GENERATE = textwrap.dedent('''
    import sys
    records, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "w") as out:
        out.write({head!r} + {study!r} + '<ClinicalData StudyOID="Project.S" MetaDataVersionOID="Metadata.S">\\n')
        for r in range(records):
            items = "".join(f'\\t\\t\\t\\t\\t<ItemData ItemOID="f{{i}}" Value="value {{r}} {{i}}"/>\\n' for i in range(60))
            out.write(f'\\t<SubjectData SubjectKey="{{r}}"><FormData FormOID="Form.f" FormRepeatKey="1">'
                      f'<ItemGroupData ItemGroupOID="f.g" ItemGroupRepeatKey="1">\\n{{items}}</ItemGroupData>'
                      '</FormData></SubjectData>\\n')
        out.write("</ClinicalData></ODM>")
''').format(head=HEAD, study=STUDY)

# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark across vfork+exec, so a child of a
# big pytest process would report pytest's size.
MEASURE = textwrap.dedent('''
    import sys
    from harness.schema import validate
    result = validate(sys.argv[1])
    assert result.valid, result.findings
    peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(result.facts.records, peak_kib // 1024)
''')


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads peak memory from /proc (Linux)")
def test_memory_stays_flat_as_the_archive_grows(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), REDCAP_DRILL_ODM_SCHEMA=str(locate_schema().root))
    peaks = {}
    for records in (1_000, 10_000):
        path = tmp_path / f"{records}.xml"
        subprocess.run([sys.executable, "-c", GENERATE, str(records), str(path)], check=True)
        out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], check=True, env=env,
                             capture_output=True, text=True).stdout.split()
        assert int(out[0]) == records
        peaks[records] = (int(out[1]), path.stat().st_size >> 20)
    (small_rss, _), (big_rss, big_mb) = peaks[1_000], peaks[10_000]
    assert big_mb >= 30
    assert big_rss < 150, peaks
    # 10x the data, about the same memory: nothing grows with the archive but a set of record ids.
    assert big_rss - small_rss < 15, peaks
