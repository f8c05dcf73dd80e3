"""open_xml: every container REDCap backups come in opens as the same XML bytes,
and every hostile or damaged file is refused with a message that says what to do."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest

from archive_factory import declare_size, gz, gzip_bomb, mark_encrypted, odm, write, zip_bomb, zipped
from harness.archive import Limits, MiB, detect_format, open_xml, scan
from harness.errors import ArchiveError

DOC = odm()


def read_all(path: Path, **kwargs) -> bytes:
    with open_xml(path, **kwargs) as fh:
        return b"".join(iter(lambda: fh.read(7000), b""))


# --- the three containers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data, fmt",
    [
        ("p.xml", DOC, "xml"),
        ("p.xml.gz", gz(DOC), "gz"),
        ("p.gz", gz(DOC), "gz"),
        ("p.zip", zipped({"Alpha_2024-05-01_0930.REDCap.xml": DOC}), "zip"),
    ],
    ids=["xml", "xml.gz", "gz", "zip"],
)
def test_each_container_streams_the_same_xml(tmp_path, name, data, fmt):
    path = write(tmp_path / name, data)
    assert detect_format(path) == fmt
    assert read_all(path) == DOC


def test_the_format_comes_from_the_bytes_not_the_name(tmp_path):
    path = write(tmp_path / "misnamed.xml", gz(DOC))
    assert detect_format(path) == "gz"
    assert read_all(path) == DOC


def test_a_utf8_byte_order_mark_and_leading_whitespace_are_accepted(tmp_path):
    data = b"\xef\xbb\xbf\n  " + DOC
    assert read_all(write(tmp_path / "bom.xml", data)) == data


def test_the_stream_supports_read_all_and_readinto(tmp_path):
    path = write(tmp_path / "p.xml.gz", gz(DOC))
    with open_xml(path) as fh:
        assert fh.read() == DOC
    with open_xml(path) as fh:
        buffer = bytearray(10)
        assert fh.readinto(buffer) == 10
        assert bytes(buffer) == DOC[:10]


def test_macos_junk_and_folders_in_a_zip_are_ignored(tmp_path):
    data = zipped(
        {
            "export/": b"",
            "export/Alpha.REDCap.xml": DOC,
            "__MACOSX/export/._Alpha.REDCap.xml": b"\x00\x05\x16\x07junk",
            "export/._Alpha.REDCap.xml": b"\x00\x05\x16\x07junk",
        }
    )
    assert read_all(write(tmp_path / "p.zip", data)) == DOC


# --- hostile zips ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    ["../evil.xml", "/abs.xml", "a/../../evil.xml", "..\\evil.xml", "C:/evil.xml", "c:\\windows\\evil.xml"],
    ids=["dotdot", "absolute", "nested-dotdot", "backslash-dotdot", "drive-letter", "drive-backslash"],
)
def test_a_zip_member_that_escapes_the_folder_is_refused(tmp_path, member):
    path = write(tmp_path / "slip.zip", zipped({member: DOC}))
    with pytest.raises(ArchiveError, match="zip member escapes the folder.*re-export the project"):
        read_all(path)


def test_an_escaping_member_is_refused_even_beside_a_good_one(tmp_path):
    path = write(tmp_path / "slip.zip", zipped({"project.xml": DOC, "../../.bashrc": b"echo pwned"}))
    with pytest.raises(ArchiveError, match="escapes the folder"):
        read_all(path)


def test_a_zip_with_two_xml_files_is_refused(tmp_path):
    path = write(tmp_path / "two.zip", zipped({"a.xml": DOC, "b.xml": DOC}))
    with pytest.raises(ArchiveError, match="holds 2 XML files .*exactly one"):
        read_all(path)


def test_a_zip_without_an_xml_file_is_refused(tmp_path):
    path = write(tmp_path / "none.zip", zipped({"data.csv": b"record_id\n1\n", "__MACOSX/._x.xml": b"junk"}))
    with pytest.raises(ArchiveError, match="holds no XML file .*'data.csv'"):
        read_all(path)


def test_an_encrypted_zip_is_refused(tmp_path):
    path = write(tmp_path / "secret.zip", mark_encrypted(zipped({"project.xml": DOC})))
    with pytest.raises(ArchiveError, match="is encrypted"):
        read_all(path)


# --- compression bombs -----------------------------------------------------------------------

BOMB = 50 * MiB  # of spaces: deflates to about 50 KB, about 1000:1


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    return {
        "zip": write(folder / "bomb.zip", zip_bomb(BOMB)),
        "gz": write(folder / "bomb.xml.gz", gzip_bomb(BOMB)),
    }


@pytest.mark.parametrize("fmt", ["zip", "gz"])
def test_a_bomb_is_stopped_by_the_expansion_ratio(bombs, fmt):
    with pytest.raises(ArchiveError, match=r"expands more than 200:1 .*compression bomb"):
        scan(bombs[fmt])


@pytest.mark.parametrize("fmt", ["zip", "gz"])
def test_a_bomb_is_stopped_by_the_expanded_size(bombs, fmt):
    limits = Limits(max_expanded=4 * MiB, max_ratio=math.inf)
    with pytest.raises(ArchiveError, match=r"expands to more than 4194304 bytes"):
        scan(bombs[fmt], limits=limits)


def test_the_limits_count_bytes_produced_not_the_size_the_zip_declares(tmp_path):
    # The header claims 60 MB, far over the limit; the member really holds a small document.
    honest = zipped({"project.xml": DOC})
    path = write(tmp_path / "claims-big.zip", declare_size(honest, 60 * MiB))
    assert read_all(path, limits=Limits(max_expanded=1 * MiB)) == DOC


def test_a_zip_that_declares_a_small_size_cannot_smuggle_more(tmp_path, bombs):
    path = write(tmp_path / "liar.zip", declare_size(bombs["zip"].read_bytes(), 1000))
    with pytest.raises(ArchiveError):
        scan(path, limits=Limits(max_ratio=math.inf))


def test_limits_can_be_raised_for_a_genuine_outlier(bombs):
    # With the ratio lifted the zip expands fully; fifty megabytes of spaces never reach </ODM>.
    with pytest.raises(ArchiveError, match="^truncated XML"):
        scan(bombs["zip"], limits=Limits(max_ratio=math.inf))


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        Limits(max_expanded=0)


# --- truncated and damaged containers --------------------------------------------------------


def test_a_truncated_gzip_is_refused(tmp_path):
    data = gz(DOC * 1)
    path = write(tmp_path / "cut.xml.gz", data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="^truncated or corrupt gz archive .*take a new backup"):
        read_all(path)


def test_a_gzip_with_a_bad_crc_is_refused(tmp_path):
    data = bytearray(gz(DOC))
    data[-8] ^= 0xFF  # the CRC-32 in the trailer
    with pytest.raises(ArchiveError, match="^truncated or corrupt gz archive .*CRC"):
        read_all(write(tmp_path / "crc.xml.gz", bytes(data)))


def test_a_truncated_zip_is_refused(tmp_path):
    data = zipped({"project.xml": DOC})
    path = write(tmp_path / "cut.zip", data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="^truncated or corrupt zip archive .*download the project XML again"):
        read_all(path)


def test_a_zip_with_damaged_data_is_refused(tmp_path):
    data = bytearray(zipped({"project.xml": DOC}))
    data[60] ^= 0xFF  # inside the deflate stream of the only member
    with pytest.raises(ArchiveError, match="^truncated or corrupt zip archive"):
        read_all(write(tmp_path / "bad.zip", bytes(data)))


# --- not XML at all --------------------------------------------------------------------------


def test_an_empty_file_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="is empty .*take a new backup"):
        read_all(write(tmp_path / "empty.xml", b""))


def test_a_gzip_of_nothing_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="contains no data"):
        read_all(write(tmp_path / "empty.xml.gz", gz(b"")))


def test_a_png_renamed_xml_is_refused_without_echoing_its_bytes(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(100)
    with pytest.raises(ArchiveError, match=r"is not XML \(it looks like a PNG image\); expected a REDCap") as exc:
        read_all(write(tmp_path / "photo.xml", png))
    assert "IHDR" not in str(exc.value)


def test_a_csv_export_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="is not XML; expected a REDCap project XML export"):
        read_all(write(tmp_path / "records.xml", b"record_id,name\n1,Jane\n"))


def test_a_file_of_whitespace_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="only whitespace"):
        read_all(write(tmp_path / "blank.xml", b" \n" * 50_000))


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        read_all(tmp_path / "nope.xml")


def test_a_gzipped_png_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="PNG"):
        read_all(write(tmp_path / "photo.xml.gz", gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(50))))
