"""Records are compared as REDCap's flat value set, in bounded memory.

The comparison pairs records by id whatever order the files hold them in,
parks unpaired ones as hashes (spilling to SQLite when there are many),
re-reads only records whose hashes differ, and names every finding's record,
event, instance and field. Record values are PHI: findings mask them unless
asked otherwise.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import replace

import pytest

from fixtures.generate import GeneratorConfig, build
from harness.compare import CompareOptions, compare_documents, compare_paths
from harness.compare.mask import Masker
from harness.compare.reread import reread
from harness.compare.store import SpillStore
from harness.errors import CompareError
from harness.odm.model import FileValue, RecordRow
from harness.odm.reader import OdmDocument
from harness.odm.writer import ExportOptions, project_xml

NOW = "2025-05-01 02:00:00"


def project(**kw):
    return build(GeneratorConfig(seed=5, records=kw.pop("records", 30), **kw))


def export(p, records=None, **kw) -> bytes:
    records = list(p.records()) if records is None else records
    return project_xml(p.meta, records, options=kw.pop("options", p.options), now=NOW, **kw)


def change(records, record_id, field, value):
    out = []
    for r in records:
        if r.record_id == record_id:
            r = replace(r, rows=tuple(
                RecordRow(row.event, row.repeat_instrument, row.instance,
                          {**row.values, field: value} if field in row.values else dict(row.values), dict(row.files))
                for row in r.rows))
        out.append(r)
    return out


def opener(data: bytes):
    from contextlib import contextmanager

    @contextmanager
    def open_():
        yield io.BytesIO(data)

    return open_


# -- pairing and hashing ---------------------------------------------------------------------------
def test_records_in_another_order_are_paired_by_id_and_compared_by_hash():
    p = project()
    records = list(p.records())

    result = compare_documents(export(p, records), export(p, records[::-1]))

    assert result.passed and result.findings == ()
    assert result.records.a_count == result.records.b_count == 30
    assert result.records.reread == 0


def test_a_changed_record_out_of_order_is_re_read_and_diffed_field_by_field():
    p = project()
    records = list(p.records())
    shuffled = change(records, "17", "height", "250")[::-1]

    result = compare_documents(export(p, records), export(p, shuffled))

    assert result.records.reread == 1
    assert [(d.kind, d.location) for d in result.findings] == [("value_changed", "record 17 › field height")]


def test_a_missing_record_does_not_disturb_the_pairing_of_the_others():
    p = project()
    records = list(p.records())
    without = [r for r in records if r.record_id != "4"]
    extra = replace(records[0], record_id="9999")

    result = compare_documents(export(p, records), export(p, change(without, "20", "height", "1") + [extra]))

    assert [(d.kind, d.location) for d in result.findings] == [
        ("record_missing", "record 4"), ("value_changed", "record 20 › field height"), ("record_extra", "record 9999")]
    assert result.records.missing == ("4",) and result.records.extra == ("9999",)
    assert result.records.changed == ("20",)
    assert result.records.reread == 0


def test_many_unpaired_records_spill_to_sqlite_and_are_still_compared():
    p = project(records=60)
    records = list(p.records())
    changed = change(records, "33", "weight", "1")

    result = compare_documents(export(p, records), export(p, changed[::-1]),
                               options=CompareOptions(spill_after=5))

    assert [(d.kind, d.location) for d in result.findings] == [("value_changed", "record 33 › field weight")]
    assert result.records.a_count == 60 and result.records.values_differing == 1


def test_many_changed_records_out_of_order_are_all_re_read_in_bounded_memory():
    p = project(records=40)
    records = list(p.records())
    changed = records
    for rid in ("3", "12", "25", "31", "40"):
        changed = change(changed, rid, "weight", "1")

    result = compare_documents(export(p, records), export(p, changed[::-1]), options=CompareOptions(spill_after=2))

    assert result.records.reread >= 4  # the rest meet their partner in place
    assert [d.location for d in result.findings] == [f"record {rid} › field weight"
                                                     for rid in ("3", "12", "25", "31", "40")]


def test_the_spill_store_moves_to_a_temporary_file_and_removes_it():
    with SpillStore(limit=3) as store:
        for i in range(10):
            store.put(str(i), ("A", bytes([i]), i))
        assert store.spilled and len(store) == 10
        path = store._path
        assert store.pop("4") == ("A", b"\x04", 4) and "4" not in store and len(store) == 9
        store.put("1", ("B", b"", 0))
        assert store.get("1") == ("B", b"", 0) and len(store) == 9
        assert sorted(k for k, _ in store.items()) == ["0", "1", "2", "3", "5", "6", "7", "8", "9"]
    import os

    assert not os.path.exists(path)


def test_listed_record_ids_are_capped_in_natural_order_and_counted_in_full():
    p = project(records=30)
    records = list(p.records())

    result = compare_documents(export(p, records), export(p, records[:5]), options=CompareOptions(max_listed=4))

    assert result.records.missing_count == 25
    assert result.records.missing == ("6", "7", "8", "9")
    assert result.records.truncated and len(result.records.differences) == 4


# -- re-reading chosen records -----------------------------------------------------------------------
def test_re_reading_finds_exactly_the_chosen_subjects_as_a_full_parse_would():
    p = project(longitudinal=True, repeating_forms=True, files=True)
    data = export(p)
    full = {s.key: s for s in OdmDocument(io.BytesIO(data)).subjects()}
    wanted = {"3", "11", "29"}

    got = {s.key: s for s in reread(opener(data), wanted)}

    assert set(got) == wanted
    for key in wanted:
        assert [c[:7] for c in got[key].cells] == [c[:7] for c in full[key].cells]


def test_re_reading_applies_redcap_pre_pass_to_multi_line_values_like_the_full_parse():
    p = project(records=3)
    records = list(p.records())
    data = export(p, records).replace(b'<ItemData ItemOID="first_name" Value="',
                                      b'<ItemData ItemOID="first_name" Value="line\r\n\r\n\tone\n\n\nend ')
    full = {s.key: s for s in OdmDocument(io.BytesIO(data)).subjects()}

    got = {s.key: s for s in reread(opener(data), {"1", "3"})}

    for key in ("1", "3"):
        assert [c.value for c in got[key].cells] == [c.value for c in full[key].cells]
    assert any(str(c.value).startswith("line\none\n\nend") for c in got["1"].cells)


def test_re_reading_a_document_with_namespace_prefixes_falls_back_to_a_full_parse():
    p = project(records=5)
    data = export(p).replace(b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"',
                             b'<odm:ODM xmlns:odm="http://www.cdisc.org/ns/odm/v1.3" '
                             b'xmlns="http://www.cdisc.org/ns/odm/v1.3"')
    data = data.replace(b"</ODM>", b"</odm:ODM>")

    got = [s.key for s in reread(opener(data), {"2", "4"})]

    assert got == ["2", "4"]


def test_a_subject_key_with_markup_characters_is_found_by_its_decoded_value():
    p = project(records=3)
    records = [replace(r, record_id="A&B <1>") if r.record_id == "2" else r for r in p.records()]
    data = export(p, records)

    (subject,) = reread(opener(data), {"A&B <1>"})

    assert subject.key == "A&B <1>"


# -- masking ---------------------------------------------------------------------------------------------
def test_record_values_are_masked_unless_asked_for():
    p = project()
    records = list(p.records())
    a, b = export(p, records), export(p, change(records, "2", "first_name", "Zed"))

    masked = compare_documents(a, b).findings[0]
    shown = compare_documents(a, b, options=CompareOptions(show_values=True)).findings[0]

    original = next(r for r in records if r.record_id == "2").rows[0].values["first_name"]
    assert masked.a.startswith(f"«{len(original)} chars, sha256:") and original not in masked.a
    assert masked.b.startswith("«3 chars, sha256:") and "Zed" not in masked.b
    assert (shown.a, shown.b) == (original, "Zed")


def test_equal_values_have_equal_fingerprints_within_one_comparison_only():
    one, other = Masker(), Masker()

    assert one.value("1970-01-01") == one.value("1970-01-01") != one.value("1970-01-02")
    assert one.value("1970-01-01") != other.value("1970-01-01")
    assert one.value("") == "«empty»"
    assert "secret.pdf" not in one.value(FileValue("secret.pdf", "application/pdf", b"%PDF"))
    assert Masker(show_values=True).value(FileValue("a.pdf", "application/pdf", b"%PDF")).startswith("a.pdf (")


# -- locations ---------------------------------------------------------------------------------------------
def test_findings_name_event_repeat_instance_and_field_in_longitudinal_projects():
    p = project(longitudinal=True, repeating_forms=True, repeating_events=True)
    records = list(p.records())
    target = next(r for r in records for row in r.rows if row.repeat_instrument and row.instance == 2)
    row = next(row for row in target.rows if row.repeat_instrument and row.instance == 2)
    item = next(i for i in row.values if not i.endswith("_complete"))
    edited = [replace(r, rows=tuple(
        RecordRow(x.event, x.repeat_instrument, x.instance,
                  {**x.values, item: x.values[item] + "0"} if x is row else dict(x.values), dict(x.files))
        for x in r.rows)) if r is target else r for r in records]

    result = compare_documents(export(p, records), export(p, edited))

    (finding,) = result.findings
    assert finding.location == (f"record {target.record_id} › event {row.event} › "
                                f"{row.repeat_instrument} #2 › field {item}")


def test_a_dropped_repeating_event_instance_is_one_row_finding():
    p = project(longitudinal=True, repeating_events=True)
    records = list(p.records())
    event = p.meta.repeating_events[0]
    target = next(r for r in records if any(row.event == event and row.instance == 2 for row in r.rows))
    dropped = [replace(r, rows=tuple(x for x in r.rows if not (x.event == event and x.instance == 2)))
               if r is target else r for r in records]

    result = compare_documents(export(p, records), export(p, dropped))

    assert [(d.kind, d.location) for d in result.findings] == [
        ("row_missing", f"record {target.record_id} › event {event} #2")]


# -- inputs ------------------------------------------------------------------------------------------------
def test_compressed_archives_are_compared_like_plain_files(tmp_path):
    p = project(records=5)
    data = export(p)
    plain = tmp_path / "a.xml"
    plain.write_bytes(data)
    gz = tmp_path / "b.xml.gz"
    gz.write_bytes(gzip.compress(data))
    zipped = tmp_path / "c.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Project_2025-05-01_0200.REDCap.xml", data)

    assert compare_paths(plain, gz).passed
    assert compare_paths(gz, zipped).passed


def test_a_records_only_odm_export_cannot_be_compared():
    p = project(records=2)
    data = export(p)
    start, end = data.index(b"<Study"), data.index(b"</Study>") + len(b"</Study>")
    records_only = data[:start] + data[end:]

    with pytest.raises(CompareError, match="no project metadata"):
        compare_documents(records_only, data)


def test_a_metadata_only_re_export_of_a_backup_with_records_fails_on_every_record():
    p = project(records=3)

    result = compare_documents(export(p), export(p, options=ExportOptions(metadata_only=True)))

    assert not result.passed
    assert result.records.missing == ("1", "2", "3") and result.structure == ()


def test_the_result_is_json_ready():
    import json

    p = project(records=3)
    records = list(p.records())
    result = compare_documents(export(p, records), export(p, change(records, "1", "height", "2")))

    data = json.loads(json.dumps(result.to_dict()))

    assert data["passed"] is False and data["failures"] == 1
    assert data["records"]["differences"][0]["location"] == "record 1 › field height"
    assert data["records"]["per_field"] == {"height": 1}
