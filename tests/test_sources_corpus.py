"""Every real REDCap export in the shared corpus is identified, measured and flagged correctly,
as plain XML and inside the containers backups come in. The files are read in place, never copied."""

from __future__ import annotations

import csv
import shutil
from datetime import datetime

import pytest

from archive_factory import gz, write, zipped
from harness.archive import scan, sha256_file
from harness.sources import DirectorySource, read_header

from tests.corpus import CORPUS

MANIFEST = CORPUS / "MANIFEST.tsv"


def manifest_rows() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = manifest_rows()
needs_corpus = pytest.mark.skipif(not ROWS, reason=f"shared corpus not found at {CORPUS} (it sits beside the checkout)")
each_file = pytest.mark.parametrize("row", ROWS, ids=[row["file"] for row in ROWS])


@needs_corpus
def test_the_manifest_lists_thirteen_exports():
    assert len(ROWS) == 13


@needs_corpus
@each_file
def test_the_header_names_the_project_and_version(row):
    header = read_header(CORPUS / row["file"])
    assert header.study_oid and header.study_oid.startswith("Project.")
    assert header.redcap_version == row["redcap_version"]
    assert header.study_name and header.description
    assert isinstance(header.created, datetime)


@needs_corpus
@each_file
def test_scan_flags_metadata_only_and_counts_records(row):
    result = scan(CORPUS / row["file"])
    assert result.metadata_only == (row["has_clinical_data"] == "n")
    assert result.subject_count == int(row["records"])
    assert result.xml_size == int(row["size_bytes"])


@needs_corpus
@each_file
def test_the_stored_bytes_hash_to_the_manifest(row):
    assert sha256_file(CORPUS / row["file"]) == row["sha256"]


@needs_corpus
@each_file
@pytest.mark.parametrize("container", ["xml.gz", "zip"])
def test_compressed_copies_scan_the_same(tmp_path, row, container):
    data = (CORPUS / row["file"]).read_bytes()
    stem = row["file"].removesuffix(".xml")
    if container == "zip":
        path = write(tmp_path / f"{stem}.zip", zipped({f"__MACOSX/._{row['file']}": b"junk", row["file"]: data}))
    else:
        path = write(tmp_path / f"{stem}.xml.gz", gz(data))
    assert scan(path) == scan(CORPUS / row["file"])
    assert read_header(path) == read_header(CORPUS / row["file"])


@needs_corpus
def test_the_corpus_folder_lists_as_thirteen_projects():
    latest = DirectorySource(CORPUS).latest()
    assert len(latest) == 13 and all(entry.ok for entry in latest)
    flagged = {entry.path.name for entry in latest if entry.metadata_only}
    assert flagged == {row["file"] for row in ROWS if row["has_clinical_data"] == "n"}


@needs_corpus
def test_a_corpus_file_cut_short_is_truncated(tmp_path):
    source = CORPUS / ROWS[0]["file"]
    data = source.read_bytes()
    write(tmp_path / "cut.xml.gz", gz(data[: len(data) * 2 // 3]))
    shutil.copyfile(source, tmp_path / "whole.xml")
    entries = {e.path.name: e for e in DirectorySource(tmp_path).archives()}
    assert entries["whole.xml"].ok
    assert not entries["cut.xml.gz"].ok and entries["cut.xml.gz"].error.startswith("truncated XML")
    assert entries["cut.xml.gz"].project_key == entries["whole.xml"].project_key
