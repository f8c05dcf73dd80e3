"""Whole drills against the embedded sandbox, over real HTTP: restore, re-export, compare, report.

These are the proof that a backup restores: the sample store passes, the
canary fails at the stage that is wrong with it, a drill never passes by
skipping, and a target that dies mid-drill gives a clear failure and a clean
teardown.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from lxml import html as lxml_html

from harness import targets
from harness.drill import STAGES, DrillOptions, drill
from harness.reports import RunInfo, build, write_run
from harness.targets.url import UrlTarget
from test_targets_api import StubRedcap
from tests.samples import CANARY, SAMPLES, newest_sample

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema

#: Every project of the sample store: each must restore and come back identical.
GOOD = ("DrillClassicAllTypes", "DrillDAGsSurveysFile", "DrillLongitudinalRep", "DrillMetadataOnly")


@pytest.fixture(scope="module")
def target():
    with targets.get("sandbox") as t:
        yield t


@pytest.mark.parametrize("name", GOOD)
def test_a_sample_backup_restores_and_comes_back_identical(target, name):
    result = drill(newest_sample(name), target)
    assert result.passed, f"{result.failed_stage}: {[d.to_dict() for d in result.differences][:5]}"
    assert result.target["kind"] == "sandbox" and result.target["version"]
    assert result.cleanup[0]["status"] == "removed"
    assert target.server.backend.project_count() == 0  # nothing restored is left behind


@pytest.mark.skipif(CANARY is None, reason="fixtures/canary is missing")
def test_the_canary_fails_at_the_stage_that_is_wrong_with_it(target):
    result = drill(CANARY, target)
    assert result.outcome == "failed" and result.failed_stage.name == "semantics"
    assert any(f.code == "SEM-UNDEFINED-ITEM" and f.severity == "error" for f in result.findings)
    assert [result.stage(s).status for s in STAGES[STAGES.index("restore"):]] == ["not_run"] * 5


def test_a_skipped_check_never_rolls_up_to_a_pass(target, monkeypatch, tmp_path):
    monkeypatch.setenv("REDCAP_DRILL_ODM_SCHEMA", str(tmp_path / "missing"))
    result = drill(newest_sample("DrillClassicAllTypes"), target)
    assert result.stage("restore").status == "passed" and result.stage("records").status == "passed"
    assert result.stage("schema").status == "skipped"
    assert not result.passed


def test_a_failed_drill_still_removes_the_restored_project(target):
    from datetime import timedelta

    result = drill(newest_sample("DrillClassicAllTypes"), target, DrillOptions(max_rto=timedelta(0)))
    assert result.failed_stage.name == "rto" and result.stage("records").status == "passed"
    assert result.cleanup[0]["status"] == "removed" and target.server.backend.project_count() == 0


@pytest.fixture
def stale_calc(tmp_path) -> Path:
    """A backup whose stored BMI is stale: REDCap recomputes calc fields on import, so it comes back changed."""
    original = next(SAMPLES.rglob("DrillClassicAllTypes_*.xml"), None)
    if original is None:
        pytest.skip("needs a plain .xml DrillClassicAllTypes sample")
    text = original.read_text(encoding="utf-8")
    assert '<ItemData ItemOID="bmi" Value="32.3"/>' in text
    path = tmp_path / original.name
    path.write_text(text.replace('<ItemData ItemOID="bmi" Value="32.3"/>', '<ItemData ItemOID="bmi" Value="99.9"/>'),
                    encoding="utf-8")
    return path


def test_record_values_are_masked_unless_asked(target, stale_calc):
    masked = drill(stale_calc, target)
    bmi = [d for d in masked.differences if d.stage == "records" and "bmi" in d.location]
    assert bmi, [d.to_dict() for d in masked.differences]
    assert all(d.expected == "•••" and d.actual == "•••" for d in bmi)
    assert "99.9" not in str(masked.to_dict())
    shown = drill(stale_calc, target, DrillOptions(show_values=True))
    assert any(d.expected == "99.9" for d in shown.differences if "bmi" in d.location)
    # A recomputed calc is a documented REDCap behaviour: a warning, not a failure.
    assert masked.stage("records").status == "passed" and masked.known_fired
    from harness.reports import render_html

    info = RunInfo(run_id="m", started="", finished="", host="h", user="u")
    assert "99.9" not in render_html(build([masked], info))
    assert "99.9" in render_html(build([shown], info))


def test_the_report_of_real_drills_shows_every_project_and_no_token(target, tmp_path, monkeypatch):
    monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN", target.api.super_token.reveal())
    archives = [newest_sample(n) for n in GOOD] + ([CANARY] if CANARY else [])
    results = [drill(a, target) for a in archives]
    written = write_run(build(results, RunInfo(run_id="e2e", started=results[0].started,
                                               finished=results[-1].finished, host="h", user="u",
                                               target=results[0].target,
                                               store_projects=tuple(r.project_key for r in results))), tmp_path)
    doc = lxml_html.parse(str(written.html)).getroot()
    shown = set(doc.xpath("//section[contains(@class,'project')]/@data-project"))
    assert shown == {r.project_key for r in results}
    text = doc.text_content()
    for r in results:
        for f in r.findings:
            assert f.code in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert target.api.super_token.reveal() not in path.read_text(errors="replace")


def test_a_target_killed_mid_restore_is_a_clear_failure_with_nothing_left_behind(monkeypatch, tmp_path):
    # A real HTTP server that reads the whole Create Project upload, then drops the connection.
    monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN", "C" * 64)
    archive = shutil.copy(newest_sample("DrillClassicAllTypes"), tmp_path)  # a .zip here: spooled, then uploaded
    with StubRedcap("drop") as stub:
        target = UrlTarget(url=stub.url, workdir=tmp_path)
        with target:
            result = drill(Path(archive), target)
            workdir = Path(target._tmp.name)
            assert [p.name for p in workdir.iterdir()] == []  # the spooled upload is gone
        assert not workdir.exists()
    restore = result.stage("restore")
    assert restore.status == "failed"
    assert "Create Project" in restore.reason and "closed mid-request" in restore.reason
    assert [result.stage(s).status for s in ("export", "structure", "records", "rto")] == ["not_run"] * 4
    assert result.cleanup == () and target.leftovers == []  # nothing was created, nothing to remove
    assert len(stub.uploads) == 1  # and Create Project was not retried


def test_a_sandbox_stopped_after_restoring_fails_the_export_and_lists_the_project(tmp_path):
    with targets.get("sandbox", workdir=tmp_path) as target:
        def kill(stage):
            if stage.name == "restore" and stage.status == "passed":
                target.server.stop()  # the target dies between restore and re-export

        result = drill(newest_sample("DrillClassicAllTypes"), target, on_stage=kill)
    assert result.stage("export").status == "failed" and "Export Project XML" in result.stage("export").reason
    assert result.failed_stage.name == "export"
    assert result.cleanup[0]["status"] == "manual"  # could not delete it: the report says so


def test_keep_leaves_a_failed_drills_project_in_a_database_file(tmp_path):
    db = tmp_path / "kept.sqlite"
    # A drill that fails after restoring: a too-strict RTO.
    from datetime import timedelta

    with targets.get("sandbox", db=db, keep=True) as target:
        result = drill(newest_sample("DrillClassicAllTypes"), target, DrillOptions(keep=True, max_rto=timedelta(0)))
    assert result.failed_stage.name == "rto"
    assert result.cleanup[0]["status"] == "kept" and str(db) in result.cleanup[0]["detail"]
    assert db.is_file()


def test_one_target_drills_archives_from_several_threads_of_work_in_turn(target):
    # The sandbox is shared by a worker's drills; results stay separate and complete.
    results = []
    worker = threading.Thread(target=lambda: results.append(drill(newest_sample("DrillMetadataOnly"), target)))
    worker.start()
    worker.join(60)
    results.append(drill(newest_sample("DrillClassicAllTypes"), target))
    assert [r.passed for r in results] == [True, True]
