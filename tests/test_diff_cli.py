"""``redcap-drill diff A B``: exit 0 when nothing fails, 1 when something differs, 2 when it cannot compare.

Findings name their place; record values are masked unless --show-values;
--json prints the whole result; errors go to stderr as ``redcap-drill: …``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from fixtures.generate import GeneratorConfig, build
from harness.cli import main
from harness.odm.model import RecordRow
from harness.odm.writer import ExportOptions, project_xml

NOW = "2025-05-01 02:00:00"


@pytest.fixture(scope="module")
def project():
    return build(GeneratorConfig(seed=9, records=8, files=True))


def write(path, p, records=None, **options):
    records = list(p.records()) if records is None else records
    path.write_bytes(project_xml(p.meta, records, options=ExportOptions(**options), now=NOW))
    return path


def with_first_name(p, record_id, value):
    out = []
    for r in p.records():
        if r.record_id == record_id:
            r = replace(r, rows=tuple(RecordRow(x.event, x.repeat_instrument, x.instance,
                                                {**x.values, "first_name": value} if "first_name" in x.values
                                                else dict(x.values), dict(x.files)) for x in r.rows))
        out.append(r)
    return out


@pytest.fixture
def files(tmp_path, project):
    a = write(tmp_path / "backup.xml", project, export_files=True)
    same = write(tmp_path / "same.xml", project, export_files=True)
    changed = write(tmp_path / "changed.xml", project, with_first_name(project, "3", "Mallory"), export_files=True)
    return a, same, changed


def test_identical_files_exit_0(files, capsys):
    a, same, _ = files

    assert main(["diff", str(a), str(same)]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("PASSED: 0 failures, 0 warnings")


def test_a_difference_exits_1_and_names_its_place_with_values_masked(files, capsys):
    a, _, changed = files

    assert main(["diff", str(a), str(changed)]) == 1

    out = capsys.readouterr().out
    assert "FAILURE value_changed    record 3 › field first_name: «" in out
    assert "Mallory" not in out
    assert "records: A 8, B 8; missing 0, extra 0, changed 1" in out
    assert out.splitlines()[-1].startswith("FAILED: 1 failures, 0 warnings")


def test_show_values_unmasks_record_values(files, capsys):
    a, _, changed = files

    assert main(["diff", "--show-values", str(a), str(changed)]) == 1

    assert "→ Mallory" in capsys.readouterr().out


def test_json_prints_the_whole_result(files, capsys):
    a, _, changed = files

    assert main(["diff", "--json", str(a), str(changed)]) == 1

    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False
    assert data["records"]["changed"] == ["3"]
    assert data["records"]["differences"][0]["location"] == "record 3 › field first_name"
    assert "Mallory" not in json.dumps(data)


def test_what_b_was_not_exported_with_is_a_warning_when_said(tmp_path, project, capsys):
    a = write(tmp_path / "a.xml", project, export_files=True)
    b = write(tmp_path / "b.xml", project, export_files=False)

    assert main(["diff", str(a), str(b)]) == 1
    capsys.readouterr()
    assert main(["diff", "--b-without-files", str(a), str(b)]) == 0

    out = capsys.readouterr().out
    assert "WARNING not_compared     records › field upload" in out
    assert "files-not-exported ×" in out


def test_a_missing_file_exits_2_with_the_reason_on_stderr(files, capsys):
    a, _, _ = files

    assert main(["diff", str(a), str(a.parent / "nope.xml")]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("redcap-drill: ArchiveError: ") and "does not exist" in captured.err


def test_a_file_that_is_not_project_xml_exits_2(files, tmp_path, capsys):
    a, _, _ = files
    odd = tmp_path / "records.xml"
    odd.write_text('<?xml version="1.0"?><ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><ClinicalData/></ODM>')

    assert main(["diff", str(a), str(odd)]) == 2

    assert "CompareError" in capsys.readouterr().err


def test_the_installed_command_runs(files):
    a, same, _ = files

    done = subprocess.run([sys.executable, "-m", "harness", "diff", str(a), str(same)],
                          capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert "PASSED" in done.stdout
