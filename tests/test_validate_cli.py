"""`redcap-drill validate`: exit 0 valid, 1 invalid, 2 could not validate; text for people, JSON for machines."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from tests.corpus import EXAMPLE, corpus_files

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def example() -> Path:
    if not EXAMPLE.is_file():
        pytest.skip(f"research example not found at {EXAMPLE}")
    return EXAMPLE


@pytest.fixture
def broken(tmp_path, example) -> Path:
    """The example with one value outside its code list: an invalid archive."""
    path = tmp_path / "broken.xml"
    path.write_bytes(example.read_bytes().replace(b'<ItemData ItemOID="sex" Value="1"/>',
                                                  b'<ItemData ItemOID="sex" Value="7"/>', 1))
    return path


def test_a_valid_archive_exits_0_and_says_ok(example, capsys):
    assert main(["validate", str(example)]) == 0
    out = capsys.readouterr().out
    assert f"{example}: OK (profile redcap)" in out
    assert "REDCap 15.7.6, 3 records, longitudinal; 0 error(s)" in out
    assert "note    DIALECT-CODELIST-BOOLEAN (×3)" in out


def test_every_corpus_file_exits_0_in_one_call(capsys):
    files = [str(p) for p in corpus_files()]
    if not files:
        pytest.skip("shared corpus not found")
    assert main(["validate", *files]) == 0
    assert capsys.readouterr().out.count(": OK (profile redcap)") == len(files)


def test_an_invalid_archive_exits_1_and_shows_where_and_why(broken, capsys):
    assert main(["validate", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: INVALID" in out
    assert "error   SEM-CODE-NOT-IN-LIST: radio field 'sex' holds '7'" in out
    assert "at record 2, event baseline_arm_1, field sex, line" in out
    assert "hint: REDCap's import rejects values outside the choices" in out


def test_strict_profile_exits_1_on_a_real_export(example, capsys):
    assert main(["validate", "--profile", "strict", "--max-messages", "3", str(example)]) == 1
    out = capsys.readouterr().out
    assert "INVALID (profile strict)" in out and "DIALECT-REDCAP-EXTENSIONS" in out
    assert "MORE-FINDINGS: … and" in out


def test_json_output_is_one_document_with_every_file(example, broken, capsys):
    assert main(["validate", "--json", str(example), str(broken)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "redcap" and report["exit_code"] == 1
    assert [f["valid"] for f in report["files"]] == [True, False]
    bad = report["files"][1]
    assert bad["file"] == str(broken) and bad["counts"]["error"] == 1
    [finding] = [f for f in bad["findings"] if f["severity"] == "error"]
    assert finding["code"] == "SEM-CODE-NOT-IN-LIST" and finding["record"] == "2" and finding["field"] == "sex"
    assert bad["facts"]["records"] == 3 and bad["facts"]["redcap_version"] == "15.7.6"


def test_a_file_that_cannot_be_read_exits_2_and_the_others_are_still_checked(example, tmp_path, capsys):
    truncated = tmp_path / "cut.xml.gz"
    truncated.write_bytes(gzip.compress(example.read_bytes())[:-200])
    code = main(["validate", "--json", str(truncated), str(example)])
    captured = capsys.readouterr()
    assert code == 2
    report = json.loads(captured.out)
    assert report["files"][0]["could_not_run"]["type"] == "ArchiveError"
    assert report["files"][1]["valid"] is True
    assert f"redcap-drill: {truncated}: ArchiveError:" in captured.err


def test_hostile_xml_exits_2(tmp_path, capsys):
    path = tmp_path / "xxe.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE ODM [<!ENTITY x SYSTEM "file:///etc/passwd">]><ODM>&x;</ODM>')
    assert main(["validate", str(path)]) == 2
    assert "COULD NOT VALIDATE (OdmError" in capsys.readouterr().out


def test_a_missing_schema_exits_2_with_what_to_do(example, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("REDCAP_DRILL_ODM_SCHEMA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["validate", str(example)]) == 2
    err = capsys.readouterr().err
    assert "SchemaError" in err and "redcap-drill schema install" in err


def test_odm_schema_flag_overrides_the_environment(example, monkeypatch, capsys):
    schema = os.environ.get("REDCAP_DRILL_ODM_SCHEMA")
    if not schema:
        pytest.skip("no ODM schema configured")
    monkeypatch.setenv("REDCAP_DRILL_ODM_SCHEMA", "/nonexistent")
    assert main(["validate", "--odm-schema", schema, str(example)]) == 0


def test_max_messages_must_be_positive(example, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--max-messages", "0", str(example)])
    assert exc.value.code == 2


def test_no_semantic_skips_the_data_rules(broken, capsys):
    assert main(["validate", "--no-semantic", str(broken)]) == 0


def test_the_installed_entry_point_runs(example):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "harness", "validate", "--json", str(example)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"][0]["valid"] is True
