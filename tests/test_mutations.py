"""Each seeded mutation changes exactly what it claims, and the harmless ones change nothing that matters.

Every check reads the mutated archive back with the real reader and compares
it with the original independently of how the mutation computed its
expectations.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures import mutations
from fixtures.generate import GeneratorConfig, generate
from fixtures.mutations import NAMES, ExpectedFinding, Mutation, all_mutations, iter_mutations
from harness.odm.model import CLASSIC_EVENT
from harness.odm.reader import OdmDocument

SAMPLES = Path(mutations.__file__).resolve().parent / "samples"
SEP = " › "

FULL = GeneratorConfig(seed=8, records=6, longitudinal=True, arms=2, events=3, repeating_forms=True,
                       repeating_events=True, dags=3, surveys=True, missing_codes=True, files=True)


@pytest.fixture(scope="module")
def full() -> bytes:
    buf = io.BytesIO()
    generate(buf, FULL)
    return buf.getvalue()


@pytest.fixture(scope="module")
def full_mutations(full) -> dict[str, Mutation]:
    return {m.name: m for m in all_mutations(full)}


def read(xml: bytes):
    doc = OdmDocument(io.BytesIO(xml))
    return doc.metadata, list(doc.records())


def flat(meta, records) -> dict[str, object]:
    """Location -> value, built independently of fixtures.mutations.where()."""
    out: dict[str, object] = {}
    survey = {p for p in meta.pseudo_fields if p.endswith("_timestamp")}
    for r in records:
        out[f"record {r.record_id}"] = "present"
        if r.dag:
            out[f"record {r.record_id}{SEP}data access group"] = r.dag
        for row in r.rows:
            parts = [f"record {r.record_id}"]
            if meta.events:
                parts.append(f"event {row.event}" + (f" #{row.instance}" if not row.repeat_instrument
                                                     and row.instance is not None else ""))
            else:
                assert row.event == CLASSIC_EVENT
            if row.repeat_instrument:
                parts.append(f"{row.repeat_instrument} #{row.instance}")
            row_at = SEP.join(parts)
            for item, value in {**row.values, **row.files}.items():
                if item not in survey:
                    out[row_at] = "present"
                    out[SEP.join(parts + [f"field {item}"])] = value
    return out


def changed_locations(a: dict, b: dict) -> set[str]:
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


# -- coverage --------------------------------------------------------------------
def test_a_full_featured_project_offers_every_mutation(full_mutations):
    assert list(full_mutations) == list(NAMES)
    harmless = {n for n, m in full_mutations.items() if m.harmless}
    assert harmless == {"attributes_reordered", "whitespace_changed", "records_reordered",
                        "export_times_changed", "metadata_version_oid_changed"}


def test_mutations_that_do_not_apply_are_not_offered():
    metadata_only = next(SAMPLES.rglob("DrillMetadataOnly_*.REDCap.xml"))
    names = {m.name for m in all_mutations(metadata_only)}
    assert not names & {"record_dropped", "value_changed", "dag_changed", "file_altered", "records_reordered",
                        "record_moved_event", "mapping_removed"}
    assert {"field_dropped", "choice_label_changed", "whitespace_changed"} <= names


def test_unknown_mutation_names_are_refused_with_the_known_ones_listed(full):
    with pytest.raises(ValueError, match="record_dropped"):
        list(iter_mutations(full, ["no_such_mutation"]))
    assert [m.name for m in iter_mutations(full, ["dag_changed"])] == ["dag_changed"]


# -- harmless ones change nothing the comparator may report ------------------------------
HARMLESS = ("attributes_reordered", "whitespace_changed", "records_reordered", "export_times_changed",
            "metadata_version_oid_changed")


@pytest.mark.parametrize("name", HARMLESS)
def test_harmless_mutations_keep_project_and_records(full, full_mutations, name):
    m = full_mutations[name]
    assert m.harmless and m.expected == []
    xml = m.xml()
    assert xml != full and xml.endswith(b"</ODM>")
    meta_a, records_a = read(full)
    meta_b, records_b = read(xml)
    # Vendor-table rows are imported by column name, so their attribute order is no fact.
    masked = dict(header=meta_a.header, metadata_version_oid=meta_a.metadata_version_oid, groups=meta_a.groups)
    assert replace(meta_b, **masked) == meta_a
    assert [(g.tag, [dict(r.attrs) for r in g.rows]) for g in meta_b.groups] == \
        [(g.tag, [dict(r.attrs) for r in g.rows]) for g in meta_a.groups]
    assert sorted(records_b, key=lambda r: r.record_id) == sorted(records_a, key=lambda r: r.record_id)
    if name == "records_reordered":
        assert [r.record_id for r in records_b] == ["2", "1", "4", "3", "6", "5"]
    if name == "export_times_changed":
        assert meta_b.header.creation_datetime == meta_b.header.as_of_datetime == "2031-01-02T03:04:05"
    if name == "metadata_version_oid_changed":
        assert meta_b.metadata_version_oid.endswith("_2031-01-02_0304")
        assert b'MetaDataVersionOID="Metadata.SyntheticDrillProject_2031-01-02_0304"' in xml


def test_text_mutations_do_what_they_say_to_the_text(full_mutations):
    reordered = full_mutations["attributes_reordered"].xml().decode()
    assert '<ItemData Value="1" ItemOID="record_id"/>' in reordered
    assert reordered.split("\n")[1].startswith("<ODM xmlns=")  # the root is left alone
    reindented = full_mutations["whitespace_changed"].xml()
    assert b"\t<" not in reindented and b">\r\n      <FormData" in reindented


@pytest.mark.parametrize("name", ["attributes_reordered", "whitespace_changed", "export_times_changed"])
def test_text_mutations_stream_chunk_by_chunk(full_mutations, monkeypatch, name):
    whole = full_mutations[name].xml()
    monkeypatch.setattr(mutations, "CHUNK", 7)  # pieces far smaller than any tag
    assert full_mutations[name].xml() == whole


# -- harmful ones change exactly what they claim ---------------------------------------------
DATA = ("record_dropped", "value_changed", "checkbox_unticked", "repeat_instance_dropped", "record_moved_event",
        "dag_changed", "file_altered")


@pytest.mark.parametrize("name", DATA)
def test_data_mutations_change_only_the_locations_they_expect(full, full_mutations, name):
    m = full_mutations[name]
    assert not m.harmless and m.expected
    meta_a, records_a = read(full)
    meta_b, records_b = read(m.xml())
    assert meta_b == meta_a
    changed = changed_locations(flat(meta_a, records_a), flat(meta_b, records_b))
    expected = {e.location for e in m.expected}
    # A lost row or record takes its fields with it; the finding is the row / record itself.
    assert expected <= changed
    assert all(any(c == e or c.startswith(e + SEP) for e in expected) for c in changed)
    kinds = {e.kind for e in m.expected}
    assert kinds == {
        "record_dropped": {"record_missing"}, "value_changed": {"value_changed"},
        "checkbox_unticked": {"value_changed"}, "repeat_instance_dropped": {"row_missing"},
        "record_moved_event": {"row_missing", "row_extra"}, "dag_changed": {"dag_changed"},
        "file_altered": {"file_changed"},
    }[name]
    if name != "record_moved_event":
        assert len(m.expected) == 1


def test_a_checkbox_unticked_goes_from_1_to_0(full, full_mutations):
    (finding,) = full_mutations["checkbox_unticked"].expected
    a = flat(*read(full))
    b = flat(*read(full_mutations["checkbox_unticked"].xml()))
    assert "___" in finding.location and (a[finding.location], b[finding.location]) == ("1", "0")


def _fields(meta):
    return {f.name: f for f in meta.fields}


@pytest.mark.parametrize("name,attribute", [("choice_label_changed", "choices"),
                                            ("branching_changed", "branching_logic"),
                                            ("validation_changed", "validation")])
def test_metadata_mutations_change_one_attribute_of_one_field(full, full_mutations, name, attribute):
    m = full_mutations[name]
    meta_a, records_a = read(full)
    meta_b, records_b = read(m.xml())
    a, b = _fields(meta_a), _fields(meta_b)
    differing = [n for n in a if a[n] != b[n]]
    assert len(differing) == 1
    (finding,) = m.expected
    field = a[differing[0]]
    assert finding.location.startswith(f"form {field.form}{SEP}field {field.name}{SEP}")
    assert replace(b[field.name], **{attribute: getattr(field, attribute)}) == field
    assert records_b == records_a


def test_a_dropped_field_takes_its_values_with_it(full, full_mutations):
    m = full_mutations["field_dropped"]
    meta_a, records_a = read(full)
    meta_b, records_b = read(m.xml())
    (gone,) = set(_fields(meta_a)) - set(_fields(meta_b))
    field = _fields(meta_a)[gone]
    assert m.expected[0] == ExpectedFinding("field_missing", f"form {field.form}{SEP}field {gone}")
    changed = changed_locations(flat(meta_a, records_a), flat(meta_b, records_b))
    assert {e.location for e in m.expected[1:]} == changed
    assert all(c.endswith(f"field {gone}") for c in changed)


def test_a_removed_mapping_drops_that_instrument_from_that_event(full, full_mutations):
    m = full_mutations["mapping_removed"]
    meta_a, records_a = read(full)
    meta_b, records_b = read(m.xml())
    diff = [(ea.unique_name, set(ea.forms) - set(eb.forms)) for ea, eb in zip(meta_a.events, meta_b.events)
            if ea.forms != eb.forms]
    assert len(diff) == 1
    event, (form,) = diff[0][0], diff[0][1]
    assert m.expected[0] == ExpectedFinding("mapping_changed", f"event {event}{SEP}form {form}")
    changed = changed_locations(flat(meta_a, records_a), flat(meta_b, records_b))
    expected = {e.location for e in m.expected[1:]}
    assert expected <= changed
    assert all(f"event {event}" in c for c in changed)


def test_mutated_archives_can_be_saved_compressed(full_mutations, tmp_path):
    from fixtures.make_samples import xml_of

    m = full_mutations["record_dropped"]
    for name in ("m.xml", "m.xml.gz", "m.zip"):
        assert xml_of(m.save(tmp_path / name)) == m.xml()


@pytest.mark.parametrize("path", sorted(p for p in SAMPLES.rglob("*2025-05-03*.REDCap.*")
                                        if not p.name.endswith(".sha256")), ids=lambda p: p.name.split("_")[0])
def test_every_sample_yields_mutations_whose_expectations_hold(path):
    from fixtures.make_samples import xml_of

    original = xml_of(path)
    meta_a, records_a = read(original)
    flat_a = flat(meta_a, records_a)
    for m in all_mutations(path):
        meta_b, records_b = read(m.xml())
        if m.harmless:
            assert m.expected == []
            continue
        assert m.expected, m.name
        record_level = {e.location for e in m.expected if e.location.startswith("record ")}
        changed = changed_locations(flat_a, flat(meta_b, records_b))
        assert record_level <= changed, m.name
