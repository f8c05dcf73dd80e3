"""scan: one constant-memory pass that measures the XML, finds whether it holds records,
and refuses a document cut short before </ODM>."""

from __future__ import annotations

import pytest

from archive_factory import gz, odm, write, zipped
from harness.archive import scan
from harness.errors import ArchiveError


def test_a_complete_document_is_measured_and_its_records_counted(tmp_path):
    data = odm(records=3)
    result = scan(write(tmp_path / "p.xml.gz", gz(data)))
    assert result.xml_size == len(data)
    assert result.has_clinical_data
    assert result.subject_count == 3
    assert not result.metadata_only


def test_a_metadata_only_export_has_no_clinical_data(tmp_path):
    result = scan(write(tmp_path / "p.zip", zipped({"p.xml": odm(clinical=False)})))
    assert not result.has_clinical_data
    assert result.metadata_only


def test_an_empty_clinical_data_element_still_means_metadata_only(tmp_path):
    # REDCap writes <ClinicalData …></ClinicalData> for a project with no records.
    result = scan(write(tmp_path / "p.xml", odm(records=0)))
    assert result.has_clinical_data
    assert result.subject_count == 0
    assert result.metadata_only


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 11, 13, 14, 17, 64, 1000])
def test_tags_split_across_chunk_boundaries_are_found_exactly_once(tmp_path, chunk_size):
    data = odm(records=4)
    path = write(tmp_path / "p.xml", data)
    result = scan(path, chunk_size=chunk_size)
    assert (result.has_clinical_data, result.subject_count, result.xml_size) == (True, 4, len(data))


@pytest.mark.parametrize("offset", range(0, 16))
def test_a_clinical_data_tag_at_every_position_around_a_boundary_is_found(tmp_path, offset):
    # Place "<ClinicalData" so that the 16-byte chunk boundary falls at each possible point inside it.
    data = odm(records=1)
    at = data.index(b"<ClinicalData")
    padded = data[:at] + b" " * ((16 - at % 16 + offset) % 16) + data[at:]
    result = scan(write(tmp_path / "p.xml", padded), chunk_size=16)
    assert result.has_clinical_data and result.subject_count == 1


def test_look_alike_tags_are_not_counted(tmp_path):
    data = odm(records=1).replace(b"</ClinicalData>", b"<SubjectDataX/><ClinicalDataset/></ClinicalData>")
    assert scan(write(tmp_path / "p.xml", data), chunk_size=5).subject_count == 1


@pytest.mark.parametrize("tail", ["", "\n", "\r\n", " \t\n" * 5000])
def test_whitespace_after_the_closing_tag_is_allowed(tmp_path, tail):
    scan(write(tmp_path / "p.xml", odm(tail=tail)), chunk_size=3)


@pytest.mark.parametrize("cut", [1, 6, 7, 200], ids=lambda n: f"minus-{n}-bytes")
def test_a_document_cut_before_the_closing_tag_is_truncated(tmp_path, cut):
    data = odm()
    path = write(tmp_path / "p.xml.gz", gz(data[:-cut]))
    with pytest.raises(ArchiveError, match=r"^truncated XML: .* does not end with </ODM> .*take a new backup"):
        scan(path)


def test_the_truncation_message_does_not_echo_the_last_bytes(tmp_path):
    data = odm().replace(b'Value="2"', b'Value="Jane Doe"')
    cut = data[: data.rindex(b"Jane Doe") + 8]
    with pytest.raises(ArchiveError) as exc:
        scan(write(tmp_path / "p.xml", cut))
    assert "Jane" not in str(exc.value)


def test_nul_padding_after_the_closing_tag_is_damage_not_whitespace(tmp_path):
    with pytest.raises(ArchiveError, match="truncated XML"):
        scan(write(tmp_path / "p.xml", odm() + b"\x00\x00\x00"))


def test_chunk_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        scan(write(tmp_path / "p.xml", odm()), chunk_size=0)
