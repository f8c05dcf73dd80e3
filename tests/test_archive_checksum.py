"""The sha256 of a backup covers the bytes on disk, and a NAME.sha256 sidecar vouches for it."""

from __future__ import annotations

import hashlib

import pytest

from archive_factory import gz, odm, write
from harness.archive import expected_sha256, sha256_file, sidecar_path, verify_sidecar
from harness.errors import ArchiveError

DATA = gz(odm())
HEX = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def backup(tmp_path):
    return write(tmp_path / "Alpha_2024-05-01_0930.REDCap.xml.gz", DATA)


def test_the_hash_is_of_the_stored_bytes_read_in_fixed_chunks(backup):
    assert sha256_file(backup) == HEX
    assert sha256_file(backup, chunk_size=7) == HEX


def test_no_sidecar_is_reported_as_absent(backup):
    assert expected_sha256(backup) is None
    assert verify_sidecar(backup, HEX) == "absent"


@pytest.mark.parametrize(
    "line",
    [
        f"{HEX}  Alpha_2024-05-01_0930.REDCap.xml.gz\n",
        f"{HEX} *Alpha_2024-05-01_0930.REDCap.xml.gz\n",
        f"{HEX}\n",
        f"{HEX.upper()}  ./backups/Alpha_2024-05-01_0930.REDCap.xml.gz\r\n",
        f"SHA256 (Alpha_2024-05-01_0930.REDCap.xml.gz) = {HEX}\n",
    ],
    ids=["text-mode", "binary-mode", "bare-hex", "uppercase-crlf-path", "bsd-tag"],
)
def test_a_matching_sidecar_is_verified(backup, line):
    sidecar_path(backup).write_text(line)
    assert sidecar_path(backup).name == "Alpha_2024-05-01_0930.REDCap.xml.gz.sha256"
    assert verify_sidecar(backup, sha256_file(backup)) == "verified"


def test_a_sidecar_listing_several_files_is_matched_by_name(backup):
    other = "0" * 64
    sidecar_path(backup).write_text(f"{other}  Beta.xml\n{HEX}  {backup.name}\n")
    assert verify_sidecar(backup, HEX) == "verified"


def test_a_mismatch_says_the_archive_is_corrupt_or_the_sidecar_stale(backup):
    sidecar_path(backup).write_text(f"{'a' * 64}  {backup.name}\n")
    with pytest.raises(ArchiveError, match="sha256 mismatch .*the archive is corrupt or the sidecar is stale"):
        verify_sidecar(backup, sha256_file(backup))


def test_a_sidecar_not_in_sha256sum_format_is_refused(backup):
    sidecar_path(backup).write_text("md5: 0123\n")
    with pytest.raises(ArchiveError, match="not in sha256sum format.*sha256sum Alpha"):
        verify_sidecar(backup, HEX)


def test_an_empty_sidecar_is_refused(backup):
    sidecar_path(backup).write_text("\n")
    with pytest.raises(ArchiveError, match="is empty"):
        verify_sidecar(backup, HEX)


def test_a_sidecar_that_lists_other_files_only_is_refused(backup):
    sidecar_path(backup).write_text(f"{HEX}  a.xml\n{HEX}  b.xml\n")
    with pytest.raises(ArchiveError, match="lists 2 files but not Alpha"):
        verify_sidecar(backup, HEX)
