"""The drill's rules: stages in order, blocking failures, and a verdict that never rounds up.

Restores here go to an "echo REDCap" (a real HTTP server that returns what it
was given) through the url target, so every stage runs for real except that
the target is perfect; test_drill_e2e.py does the same against the sandbox.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from harness.drill import STAGES, ArchiveEvidence, DrillOptions, DrillResult, StageResult, drill
from harness.targets.url import UrlTarget
from test_targets_api import StubRedcap
from tests.corpus import SHARED
from tests.samples import CANARY, SAMPLES, newest_sample

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema

SQL_BLOCKER = SHARED / "corpus" / "redcapr-validation-types-14.7.3.xml"


@pytest.fixture
def echo(monkeypatch):
    with StubRedcap(echo=True) as stub:
        monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN", "C" * 64)
        with UrlTarget(url=stub.url) as target:
            yield stub, target


def statuses(result: DrillResult) -> dict[str, str]:
    return {s.name: s.status for s in result.stages}


# -- the verdict ---------------------------------------------------------------------------------
def verdict(**status: str) -> DrillResult:
    stages = tuple(StageResult(name, status.get(name, "passed"), "", required=status.get(name) != "not_applicable")
                   for name in STAGES)
    return DrillResult("k", "t", ArchiveEvidence("p"), stages, "", "")


def test_a_drill_with_every_stage_passed_passes():
    assert verdict().passed


def test_stages_that_do_not_apply_do_not_block_a_pass():
    assert verdict(freshness="not_applicable", rto="not_applicable", records="not_applicable").passed


@pytest.mark.parametrize("stage", STAGES)
def test_a_skipped_stage_never_yields_a_pass(stage):
    result = verdict(**{stage: "skipped"})
    assert not result.passed and result.outcome == "failed"
    assert result.failed_stage.name == stage


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_that_did_not_run_never_yields_a_pass(stage):
    assert not verdict(**{stage: "not_run"}).passed


def test_a_drill_with_no_stages_is_not_a_pass():
    assert not DrillResult("k", "t", ArchiveEvidence("p"), (), "", "").passed


# -- whole drills ---------------------------------------------------------------------------------
def test_a_good_backup_passes_every_stage(echo):
    stub, target = echo
    result = drill(newest_sample("DrillLongitudinalRep"), target)
    assert result.passed, result.failed_stage
    assert statuses(result) == {**dict.fromkeys(STAGES, "passed"), "freshness": "not_applicable",
                                "rto": "not_applicable"}
    assert result.rto_seconds is not None and result.fidelity.percent == 100.0
    assert result.cleanup[0]["status"] == "manual"  # REDCap's API cannot delete projects: listed for removal


def test_the_archives_own_title_and_purpose_go_to_create_project(echo):
    stub, target = echo
    drill(newest_sample("DrillClassicAllTypes"), target)
    import json

    data = json.loads(stub.uploads[0]["data"])[0]
    assert data["project_title"] == "Drill Classic All Types"
    assert set(data) == {"project_title", "purpose", "purpose_other", "project_notes"}


@pytest.mark.skipif(CANARY is None, reason="fixtures/canary is missing")
def test_the_canary_fails_at_semantics_and_nothing_is_restored(echo):
    stub, target = echo
    result = drill(CANARY, target)
    assert not result.passed and result.failed_stage.name == "semantics"
    later = STAGES[STAGES.index("semantics") + 1:]
    assert all(result.stage(name).status == "not_run" for name in later)
    assert "not run: the semantics stage failed" in result.stage("restore").reason
    assert stub.uploads == []


@pytest.mark.skipif(not SQL_BLOCKER.is_file(), reason=f"shared corpus not found at {SQL_BLOCKER.parent}")
def test_a_known_restore_blocker_is_flagged_before_restoring(echo):
    stub, target = echo
    result = drill(SQL_BLOCKER, target)
    assert result.failed_stage.name == "semantics"
    assert "SEM-RESTORE-BLOCKER-SQL" in result.stage("semantics").reason
    assert any(f.code == "SEM-RESTORE-BLOCKER-SQL" for f in result.findings)
    assert stub.uploads == []


def test_a_truncated_backup_fails_integrity_and_nothing_later_runs(echo, tmp_path):
    stub, target = echo
    good = next((p for p in sorted(SAMPLES.rglob("*.xml")) if p.is_file()), None)
    if good is None:
        pytest.skip(f"no plain .xml sample under {SAMPLES}")
    data = good.read_bytes()
    cut = tmp_path / "Cut_2025-05-03_0200.REDCap.xml"
    cut.write_bytes(data[: len(data) // 2])
    result = drill(cut, target)
    assert statuses(result)["integrity"] == "failed" and "truncated" in result.stage("integrity").reason
    assert {s for n, s in statuses(result).items() if n != "integrity"} == {"not_run"}
    assert stub.uploads == []


def test_a_stale_backup_fails_freshness_but_is_still_restored(echo):
    stub, target = echo
    result = drill(newest_sample("DrillLongitudinalRep"), target,
                   DrillOptions(max_age=timedelta(hours=36), now=datetime(2030, 1, 1)))
    assert result.stage("freshness").status == "failed" and "older than --max-age 36 h" in result.stage("freshness").reason
    assert result.stage("restore").status == "passed" and not result.passed
    assert len(stub.uploads) == 1


def test_a_fresh_backup_passes_freshness(echo):
    stub, target = echo
    path = newest_sample("DrillLongitudinalRep")
    result = drill(path, target, DrillOptions(max_age=timedelta(days=2), now=datetime(2025, 5, 4)))
    assert result.stage("freshness").status == "passed"


def test_a_restore_slower_than_the_rto_fails(echo):
    stub, target = echo
    result = drill(newest_sample("DrillLongitudinalRep"), target, DrillOptions(max_rto=timedelta(microseconds=1)))
    assert result.stage("rto").status == "failed" and "longer than --max-rto" in result.stage("rto").reason
    assert not result.passed


def test_a_metadata_only_backup_has_no_records_to_compare_and_says_so(echo):
    stub, target = echo
    result = drill(newest_sample("DrillMetadataOnly"), target)
    assert result.stage("records").status == "not_applicable"
    assert result.export_options["metadata_only"] is True
    assert any(f.code == "DRILL-METADATA-ONLY" for f in result.findings)


def test_without_the_odm_schema_the_drill_cannot_pass(echo, monkeypatch, tmp_path):
    stub, target = echo
    monkeypatch.setenv("REDCAP_DRILL_ODM_SCHEMA", str(tmp_path / "no-schema-here"))
    result = drill(newest_sample("DrillLongitudinalRep"), target)
    assert result.stage("schema").status == "skipped" and "schema install" in result.stage("schema").reason
    # Everything else ran and passed, and still: a check owed and not made is not a pass.
    assert all(s.status in ("passed", "not_applicable") for s in result.stages if s.name != "schema")
    assert not result.passed and result.failed_stage.name == "schema"


def test_the_export_options_follow_what_the_archive_holds(echo):
    stub, target = echo
    result = drill(newest_sample("DrillDAGsSurveysFile"), target)
    assert result.export_options == {"metadata_only": False, "files": True, "survey_fields": True, "dags": True}
    fields = next(r["fields"] for r in stub.requests if r["fields"].get("content") == b"project_xml")
    assert fields["exportFiles"] == b"true" and fields["exportDataAccessGroups"] == b"true"


def test_a_drill_result_survives_json_unchanged(echo):
    stub, target = echo
    result = drill(newest_sample("DrillDAGsSurveysFile"), target)
    again = DrillResult.from_dict(result.to_dict())
    assert again.to_dict() == result.to_dict() and again.passed == result.passed


def test_gzip_and_zip_archives_restore_as_their_xml(echo, tmp_path):
    stub, target = echo
    for name in ("DrillClassicAllTypes", "DrillDAGsSurveysFile", "DrillLongitudinalRep"):
        for path in sorted(SAMPLES.rglob(f"{name}_*")):
            if path.suffix in (".gz", ".zip"):
                copy = shutil.copy(path, tmp_path / path.name)
                assert drill(Path(copy), target).passed
    assert all(upload["odm"].lstrip().startswith(b"<?xml") for upload in stub.uploads)


def test_record_values_quoted_by_validation_findings_are_masked_unless_asked(echo, tmp_path):
    stub, target = echo
    original = next(SAMPLES.rglob("DrillClassicAllTypes_*.xml"), None)
    if original is None:
        pytest.skip("needs a plain .xml DrillClassicAllTypes sample")
    text = original.read_text(encoding="utf-8")
    assert '<ItemData ItemOID="dob" Value="1947-05-04"/>' in text
    bad = tmp_path / original.name
    bad.write_text(text.replace('Value="1947-05-04"', 'Value="Jane Doe"', 1), encoding="utf-8")
    masked = drill(bad, target)
    finding = next(f for f in masked.findings if f.code == "SEM-VALIDATION-TYPE")
    assert "Jane Doe" not in finding.message and "•••" in finding.message and "'dob'" in finding.message
    assert "Jane Doe" not in str(masked.to_dict())
    shown = drill(bad, target, DrillOptions(show_values=True))
    assert any("Jane Doe" in f.message for f in shown.findings if f.code == "SEM-VALIDATION-TYPE")
