"""The pytest plugin, run the way users run it: pytest inside pytest (pytester, in a subprocess).

Drills here restore into an "echo REDCap" (`StubRedcap(echo=True)`, a real
HTTP server that hands back exactly what it was given) through the url
target, so these tests exercise the plugin's mechanics; the sandbox tests in
test_drill_e2e.py prove real restores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_targets_api import StubRedcap

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"
SAMPLES = ROOT / "fixtures" / "samples"
CANARY = ROOT / "fixtures" / "canary"
PROJECTS = ["Drill Classic All Types", "Drill DAGs Surveys Files", "Drill Longitudinal Repeats", "Drill Metadata Only"]

pytestmark = [
    # The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
    pytest.mark.odm_schema,
    pytest.mark.skipif(not SAMPLES.is_dir() or not any(SAMPLES.rglob("*.xml*")),
                       reason=f"sample backup store not found at {SAMPLES}"),
]


@pytest.fixture
def echo(monkeypatch):
    with StubRedcap(echo=True) as stub:
        monkeypatch.setenv("REDCAP_DRILL_URL", stub.url)
        monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN", "C" * 64)
        yield stub


def drill(pytester, *args: str):
    return pytester.runpytest_subprocess(str(SUITES), "-p", "no:cacheprovider", *args)


def collected_ids(result) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def projects_in(ids: list[str]) -> set[str]:
    return {line.rsplit("[", 1)[1].rstrip("]") for line in ids} - {"no-projects-in-shard"}


def test_the_plugin_does_nothing_in_runs_that_do_not_use_it(pytester):
    pytester.makepyfile("def test_something():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "redcap-drill:" not in result.stdout.str()  # no header, no report line
    assert not (pytester.path / "reports").exists()


def test_its_options_live_in_a_redcap_drill_group(pytester):
    result = pytester.runpytest_subprocess("--help")
    text = result.stdout.str()
    assert "REDCap restore drills (redcap-drill)" in text
    for option in ("--archives", "--target", "--report-dir", "--max-age", "--max-rto", "--project", "--shard",
                   "--show-values", "--record-ids", "--require-data", "--keep", "--docker-zip", "--docker-image"):
        assert option in text


def test_every_archive_gets_one_test_per_stage_named_by_its_project(pytester, tmp_path):
    result = drill(pytester, "--archives", str(SAMPLES), "--report-dir", str(tmp_path), "--co", "-q")
    ids = collected_ids(result)
    assert projects_in(ids) == set(PROJECTS)
    assert len(ids) == 4 * 9
    assert any(i.endswith("suites/test_restore.py::test_restore[Drill Longitudinal Repeats]") for i in ids)
    # archive by archive, stages in drill order
    first = [i.rsplit("::", 1)[1].split("[")[0] for i in ids[:9]]
    assert first == ["test_integrity", "test_freshness", "test_schema", "test_semantics", "test_restore",
                     "test_export", "test_structure", "test_records", "test_rto"]


def test_shards_split_the_projects_completely_and_deterministically(pytester, tmp_path):
    seen = []
    for k in (1, 2):
        ids = collected_ids(drill(pytester, "--archives", str(SAMPLES), "--report-dir", str(tmp_path),
                                  "--shard", f"{k}/2", "--co", "-q"))
        seen.append(projects_in(ids))
    assert seen[0] | seen[1] == set(PROJECTS)
    assert not seen[0] & seen[1]  # no project in two shards
    # The split depends on each project's key alone, so it is the same on every machine, every run.
    from harness.pytest_plugin import in_shard, list_archives

    assert {r.title for r in list_archives(SAMPLES) if in_shard(r.project_key, (2, 2))} == seen[1]


def test_projects_are_selected_by_title_glob(pytester, tmp_path):
    ids = collected_ids(drill(pytester, "--archives", str(SAMPLES), "--report-dir", str(tmp_path),
                              "--project", "drill long*", "--co", "-q"))
    assert projects_in(ids) == {"Drill Longitudinal Repeats"}


def test_a_selection_that_matches_nothing_is_a_usage_error(pytester, tmp_path):
    result = drill(pytester, "--archives", str(SAMPLES), "--report-dir", str(tmp_path), "--project", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "matches none of the 4 projects" in result.stderr.str()


def test_a_missing_archive_folder_is_a_usage_error_that_says_what_to_pass(pytester, tmp_path):
    result = drill(pytester, "--archives", str(tmp_path / "nowhere"), "--report-dir", str(tmp_path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "does not exist; pass --archives DIR" in result.stderr.str()


def test_a_whole_drill_run_writes_the_report_junit_and_ledger(pytester, tmp_path, echo):
    result = drill(pytester, "--archives", str(SAMPLES), "--target", "url", "--report-dir", str(tmp_path))
    result.assert_outcomes(passed=27, skipped=9)  # freshness/rto without limits, records of metadata-only
    assert f"redcap-drill: target url; 4 archive(s) from {SAMPLES}" in result.stdout.str()
    assert "report: " + str(tmp_path / "latest" / "report.html") in result.stdout.str()
    latest = tmp_path / "latest"
    assert {p.name for p in latest.iterdir()} == {"report.html", "summary.json", "junit.xml"}
    summary = json.loads((latest / "summary.json").read_text())
    assert summary["summary"]["outcome"] == "passed" and summary["summary"]["projects"] == 4
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 4  # each archive drilled once


def test_parallel_workers_drill_each_archive_once_and_the_controller_reports(pytester, tmp_path, echo):
    pytest.importorskip("xdist")
    result = drill(pytester, "--archives", str(SAMPLES), "--target", "url", "--report-dir", str(tmp_path),
                   "-n", "2")
    result.assert_outcomes(passed=27, skipped=9)
    ledger = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 4 and len({json.loads(line)["project_key"] for line in ledger}) == 4
    assert len(echo.uploads) == 4  # one restore per archive across both workers
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    assert summary["summary"]["projects"] == 4


def test_the_canary_fails_at_semantics_and_later_stages_are_not_run(pytester, tmp_path, echo):
    result = drill(pytester, "--archives", str(CANARY), "--target", "url", "--report-dir", str(tmp_path))
    result.assert_outcomes(passed=2, failed=1, skipped=6)
    out = result.stdout.str()
    assert "FAILED" in out and "test_semantics[" in out and "SEM-UNDEFINED-ITEM" in out
    assert echo.uploads == []  # nothing was restored
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    assert summary["projects"][0]["failed_stage"] == "semantics"


def test_hooks_see_each_drill_result(pytester, tmp_path, echo):
    pytester.makeconftest(
        "import os\n"
        "def pytest_redcap_drill_make_target(config, kind, options):\n"
        "    from harness.targets.url import UrlTarget\n"
        "    return UrlTarget(url=os.environ['REDCAP_DRILL_URL'], keep=options['keep'])\n"
        "def pytest_redcap_drill_finished(config, result):\n"
        "    with open('finished.txt', 'a') as fh:\n"
        "        fh.write(result.project_key + ' ' + result.outcome + '\\n')\n"
    )
    # The hook lives beside a suite that reuses the real suite's checks.
    pytester.makepyfile(test_mine="from harness.pytest_plugin import check_stage\n"
                                  "def test_restore(drill_result):\n"
                                  "    check_stage(drill_result, 'restore')\n")
    # No --target: the site's hook supplies the target instead of the default sandbox.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--archives", str(SAMPLES),
                                           "--report-dir", str(tmp_path), "--project", "*classic*")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "finished.txt").read_text().split() == ["Project.DrillClassicAllTypes", "passed"]
    assert len(echo.uploads) == 1


def test_without_the_suites_folder_the_plugin_carries_the_same_checks_built_in(pytester, tmp_path):
    import harness.pytest_plugin as plugin

    result = pytester.runpytest_subprocess(str(Path(plugin.__file__)), "--drill-builtin-suite", "-p",
                                           "no:cacheprovider", "--archives", str(SAMPLES), "--report-dir",
                                           str(tmp_path), "--co", "-q")
    ids = collected_ids(result)
    assert len(ids) == 4 * 9 and projects_in(ids) == set(PROJECTS)
    assert any(i.endswith("::test_records[Drill Metadata Only]") for i in ids)


def test_a_target_that_cannot_start_fails_every_drill_and_the_report_says_not_drilled(pytester, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setenv("REDCAP_DRILL_URL", "http://127.0.0.1:9/api/")
    monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN", "C" * 64)
    result = drill(pytester, "--archives", str(SAMPLES), "--target", "url", "--report-dir", str(tmp_path),
                   "--project", "Drill Metadata Only")
    result.assert_outcomes(errors=9)
    assert "Drill Metadata Only: no drill: TargetError" in result.stdout.str()
    assert "C" * 64 not in result.stdout.str()
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())["summary"]
    assert summary["outcome"] == "failed" and summary["not_drilled"] == ["Project.DrillMetadataOnly"]
