"""The header names the project from the first 64 KB; hostile prologs are refused;
a file without a header is keyed by its name."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from archive_factory import gz, odm, write, zipped
from harness.sources import Header, key_from_filename, project_key, read_header
from harness.errors import ArchiveError


def test_the_header_facts_are_read(tmp_path):
    path = write(tmp_path / "p.zip", zipped({"p.xml": odm("Project.Alpha", "Alpha & Co", version="15.2.1")}))
    header = read_header(path)
    assert header == Header(
        study_oid="Project.Alpha",
        study_name="Alpha & Co",
        description="Alpha & Co",
        created=datetime(2024, 5, 1, 9, 30, 0),
        redcap_version="15.2.1",
    )
    assert project_key(header, path) == "Project.Alpha"


def test_reading_stops_at_the_study_name_even_when_the_rest_is_broken(tmp_path):
    data = odm()
    broken = data[: data.index(b"</StudyName>") + 12] + b"<<<not xml at all" * 10
    assert read_header(write(tmp_path / "p.xml", broken)).study_oid == "Project.Alpha"


def test_only_the_first_64_kb_are_read(tmp_path):
    # A huge comment pushes StudyName past the window: the header is reported as missing.
    data = odm().replace(b"<Study ", b"<!--" + b"x" * 70_000 + b"--><Study ", 1)
    header = read_header(write(tmp_path / "p.xml", data))
    assert header.study_oid is None and header.redcap_version == "14.7.3"


def test_a_data_only_odm_is_keyed_by_its_clinical_data(tmp_path):
    data = (
        b'<?xml version="1.0"?><ODM xmlns="http://www.cdisc.org/ns/odm/v1.3">'
        b'<ClinicalData StudyOID="Project.Alpha" MetaDataVersionOID="Metadata.x"></ClinicalData></ODM>'
    )
    assert read_header(write(tmp_path / "p.xml", data)).study_oid == "Project.Alpha"


def test_an_unparseable_creation_time_leaves_created_unknown(tmp_path):
    data = odm(created="yesterday")
    assert read_header(write(tmp_path / "p.xml", data)).created is None


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ODM [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ODM><Study OID="&xxe;"><GlobalVariables><StudyName>&xxe;</StudyName></GlobalVariables></Study></ODM>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ODM Description="&lol3;"/>"""


@pytest.mark.parametrize("data", [XXE, LAUGHS, b"<!DOCTYPE ODM>" + odm()], ids=["xxe", "billion-laughs", "plain"])
@pytest.mark.parametrize("container", ["xml", "gz"])
def test_any_doctype_is_refused(tmp_path, data, container):
    path = write(tmp_path / f"p.{container}", gz(data) if container == "gz" else data)
    with pytest.raises(ArchiveError, match="^DOCTYPE declarations are not allowed in REDCap project XML; the file may be hostile"):
        read_header(path)


def test_a_doctype_split_across_reads_is_still_refused(tmp_path):
    # 8 KB of whitespace-only comment puts "<!DOCTYPE" across the first feed boundary.
    prolog = b'<?xml version="1.0"?>\n<!--' + b" " * (8192 - 30) + b"-->"
    data = prolog + b"<!DOCTYPE ODM>" + odm()[39:]
    with pytest.raises(ArchiveError, match="DOCTYPE"):
        read_header(write(tmp_path / "p.xml", data))


def test_a_root_other_than_odm_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match=r"root element is <records>, not <ODM>.*Download project XML"):
        read_header(write(tmp_path / "p.xml", b"<?xml version='1.0'?><records><item/></records>"))


def test_malformed_xml_in_the_header_is_refused(tmp_path):
    with pytest.raises(ArchiveError, match="not well-formed XML near line 2"):
        read_header(write(tmp_path / "p.xml", b'<?xml version="1.0"?>\n<ODM a="1" a="2">'))


# --- falling back to the file name ---------------------------------------------------------


def test_a_file_without_header_facts_is_keyed_by_its_name(tmp_path):
    path = write(tmp_path / "Alpha_2024-05-01_0930.REDCap.xml", b"<ODM><Study><GlobalVariables/></Study></ODM>")
    header = read_header(path)
    assert header == Header()
    assert project_key(header, path) == "Alpha"


@pytest.mark.parametrize(
    "name, key",
    [
        ("Alpha_2024-05-01_0930.REDCap.xml", "Alpha"),
        ("Alpha_2024-05-01_0930.REDCap.xml.gz", "Alpha"),
        ("Alpha_2024-05-01_0930.REDCap.zip", "Alpha"),
        ("My Study_CDISC_ODM_2024-05-01_0930.xml", "My Study"),
        ("beta-2024-05-01T09:30:00.xml.gz", "beta"),
        ("beta_20240501_093000.xml", "beta"),
        ("beta_20240501.gz", "beta"),
        ("gamma.xml", "gamma"),
        ("study2024.xml", "study2024"),
        ("20240501.xml", "20240501"),
    ],
)
def test_the_key_from_a_file_name_drops_time_stamps_and_extensions(name, key):
    assert key_from_filename(name) == key
    assert project_key(None, Path(name)) == key
