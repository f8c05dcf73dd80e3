"""The drill report: every project and finding shown, nothing executable, no token, values masked, offline.

Reports are built from `DrillResult` data (what drills hand over) and parsed
back with lxml.html, the way a reviewer's browser would read them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import html as lxml_html

from harness.drill import (
    STAGES, ArchiveEvidence, Difference, DrillResult, Fidelity, Finding, KnownDifference, StageResult,
)
from harness.reports import RunInfo, build, load, merge, render_html, render_json, write_run
from harness.reports.coverage import NEVER_IN_XML, Coverage, Section

SCHEMA = Path(__file__).resolve().parents[1] / "harness" / "reports" / "schema.json"
TOKEN = "E" * 64
EVIL = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def result(key: str, title: str, *, failed: str | None = None, findings=(), differences=(), cleanup=(),
           finished: str = "2025-05-03T02:10:00") -> DrillResult:
    stages = []
    for name in STAGES:
        if failed and STAGES.index(name) > STAGES.index(failed):
            stages.append(StageResult(name, "not_run", f"not run: the {failed} stage failed"))
        elif name == failed:
            stages.append(StageResult(name, "failed", f"{name} went wrong", 0.5))
        else:
            stages.append(StageResult(name, "passed", f"{name} fine", 0.25))
    return DrillResult(
        project_key=key, title=title,
        archive=ArchiveEvidence(path=f"/backups/{key}.xml", size=1234, sha256="a" * 64, sidecar="verified",
                                format="xml", created="2025-05-03T02:00:00", redcap_version="15.7.6", records=3),
        stages=tuple(stages), started="2025-05-03T02:09:00", finished=finished,
        target={"kind": "sandbox", "url": "http://127.0.0.1:5000/api/", "version": "15.7.6"},
        findings=tuple(findings), differences=tuple(differences),
        known_fired=(KnownDifference("export-timestamp", "ODM AsOfDateTime: REDCap stamps the export time", 2),),
        fidelity=Fidelity(100, 100, 40, 39 if failed else 40),
        coverage=Coverage((Section("Records", True, "3 records"), Section("Reports", False, "0 rows"))),
        rto_seconds=None if failed in ("integrity", "schema", "semantics", "restore") else 4.2,
        cleanup=tuple(cleanup), host="drillhost", user="alice",
    )


@pytest.fixture
def results():
    return [
        result("Project.Alpha", "Alpha study"),
        result("Project.Beta", EVIL, failed="records",
               findings=[Finding("semantics", "warning", "SEM-VALIDATION-TYPE", f"odd value in field x {EVIL}", 12)],
               differences=[Difference("records", "value_changed", "failure", "record 1 › field weight", "•••", "•••")],
               cleanup=[{"project_id": 9, "title": EVIL, "status": "kept", "detail": "kept for inspection"}]),
        result("Project.Gamma", "Gamma registry", failed="semantics",
               findings=[Finding("semantics", "error", "SEM-RESTORE-BLOCKER-SQL", "field dyn is a dynamic SQL field")]),
    ]


def run_info(**kw) -> RunInfo:
    base = dict(run_id="20250503-021000", started="2025-05-03T02:09:00", finished="2025-05-03T02:12:00",
                host="drillhost", user="alice", target={"kind": "sandbox", "url": "", "version": "15.7.6"},
                store_projects=("Project.Alpha", "Project.Beta", "Project.Gamma"))
    base.update(kw)
    return RunInfo(**base)


def parse(text: str):
    return lxml_html.document_fromstring(text)


def test_the_report_lists_every_project_in_the_matrix_and_in_its_own_section(results):
    doc = parse(render_html(build(results, run_info())))
    rows = doc.xpath("//table[@id='matrix']//tr[@class='project-row']/@data-project")
    sections = doc.xpath("//section[contains(@class,'project')]/@data-project")
    assert sorted(rows) == sorted(sections) == ["Project.Alpha", "Project.Beta", "Project.Gamma"]


def test_failed_projects_come_first_and_the_run_is_failed(results):
    report = build(results, run_info())
    assert [r.project_key for r in report.results][:2] == ["Project.Beta", "Project.Gamma"]
    doc = parse(render_html(report))
    assert doc.xpath("string(//h1/span)") == "FAILED"


def test_every_finding_and_difference_appears_in_the_report(results):
    text = parse(render_html(build(results, run_info()))).text_content()
    for r in results:
        for f in r.findings:
            assert f.code in text and f.message in text
        for d in r.differences:
            assert d.location in text
    assert "export-timestamp" in text  # known REDCap differences that fired


def test_restore_blockers_are_flagged_before_the_stage_table(results):
    doc = parse(render_html(build(results, run_info())))
    gamma = doc.xpath("//section[@data-project='Project.Gamma']")[0]
    callout = gamma.xpath(".//div[contains(@class,'callout')]")[0].text_content()
    assert "Known restore blockers" in callout and "SEM-RESTORE-BLOCKER-SQL" in callout


def test_hostile_text_from_an_archive_is_shown_never_executed(results):
    text = render_html(build(results, run_info()))
    doc = parse(text)
    assert doc.xpath("//script") == []
    assert doc.xpath("//*[@onerror]") == []
    assert "<script>" not in text
    assert EVIL in doc.text_content()  # shown verbatim, as text


def test_the_report_is_self_contained_and_works_offline(results):
    doc = parse(render_html(build(results, run_info())))
    assert doc.xpath("//script | //link | //iframe | //object | //img") == []
    external = [v for v in doc.xpath("//@href | //@src") if not v.startswith("#")]
    assert external == []
    assert doc.xpath("//style")  # inline CSS


def test_evidence_names_the_archive_target_time_host_and_user(results):
    doc = parse(render_html(build(results, run_info())))
    alpha = doc.xpath("//section[@data-project='Project.Alpha']//dl[contains(@class,'evidence')]")[0]
    labels = [dt.text_content() for dt in alpha.xpath("./dt")]
    values = alpha.text_content()
    for label in ("Archive", "Size", "SHA-256", "CreationDateTime", "REDCap version (archive)", "Target",
                  "redcap-drill", "Drill started", "Drill finished", "Host", "Run by"):
        assert label in labels
    assert "a" * 64 in values and "drillhost" in values and "alice" in values and "sandbox" in values


def test_the_coverage_panel_says_what_an_xml_backup_never_holds(results):
    text = parse(render_html(build(results, run_info()))).text_content()
    for name, _ in NEVER_IN_XML:
        assert name in text
    assert "User accounts and user-rights assignments" in text and "Audit log" in text


def test_the_compliance_section_names_the_controls_and_has_a_sign_off(results):
    doc = parse(render_html(build(results, run_info())))
    section = doc.xpath("//section[@id='compliance']")[0].text_content()
    for ref in ("§164.308(a)(7)(ii)(B)", "§164.308(a)(7)(ii)(D)", "A 8.13", "§11.10(b)", "§11.10(c)"):
        assert ref in section
    assert "Reviewer name" in section and "Signature" in section


def test_leftover_projects_are_listed_for_manual_removal(results):
    doc = parse(render_html(build(results, run_info())))
    leftovers = doc.xpath("//section[@id='leftovers']")[0].text_content()
    assert "kept for inspection" in leftovers and "9" in leftovers


def test_the_json_summary_follows_its_published_schema(results):
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads(render_json(build(results, run_info())))
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["schema_version"] == "1.1"
    assert data["summary"]["outcome"] == "failed" and data["summary"]["failed"] == 2


def test_a_run_gets_its_own_dated_folder_and_latest_is_a_copy(tmp_path, results):
    first = write_run(build(results, run_info(run_id="20250503-021000")), tmp_path)
    second = write_run(build(results[:1], run_info(run_id="20250504-021000")), tmp_path)
    assert (tmp_path / "runs" / "20250503-021000" / "report.html").is_file()
    assert (tmp_path / "runs" / "20250504-021000" / "summary.json").is_file()
    latest = tmp_path / "latest"
    assert latest.is_dir() and not latest.is_symlink()
    assert (latest / "report.html").read_text() == (second.run_dir / "report.html").read_text()
    assert first.run_dir != second.run_dir


def test_no_token_reaches_any_file_in_the_report_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN", TOKEN)
    # Even if a server echoed the token into an error message, the written files must not hold it.
    leaky = result("Project.Leak", "Leak", failed="restore",
                   findings=[Finding("restore", "error", "X", f"server said: bad token {TOKEN}")])
    write_run(build([leaky], run_info(store_projects=("Project.Leak",))), tmp_path)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert TOKEN not in path.read_text(encoding="utf-8", errors="replace"), path


def test_the_ledger_keeps_every_drill_and_feeds_the_trend(tmp_path, results):
    from harness.ledger import Ledger

    write_run(build(results, run_info(run_id="r1")), tmp_path)
    write_run(build(results, run_info(run_id="r2")), tmp_path)
    ledger = Ledger(tmp_path)
    beta = ledger.history(project_key="Project.Beta")
    assert [e.run_id for e in beta] == ["r1", "r2"] and {e.outcome for e in beta} == {"failed"}
    assert beta[0].failed_stage == "records" and beta[0].archive_sha256 == "a" * 64
    trend = ledger.trend("Project.Alpha")
    assert trend.runs == 2 and trend.passed == 2 and trend.rto_seconds == (4.2, 4.2)


def test_shard_reports_merge_into_one_report(tmp_path, results):
    shard1 = write_run(build(results[:2], run_info(run_id="s1", shard="1/2")), tmp_path / "shard1")
    shard2 = write_run(build(results[2:], run_info(run_id="s2", shard="2/2")), tmp_path / "shard2")
    merged = merge([shard1.run_dir, tmp_path / "shard2"])
    assert sorted(r.project_key for r in merged.results) == ["Project.Alpha", "Project.Beta", "Project.Gamma"]
    assert merged.summary.not_drilled == () and merged.run.shard is None
    assert set(merged.run.merged_from) == {"s1 [1/2]", "s2 [2/2]"}
    assert shard2.latest is not None


def test_a_merge_with_a_missing_shard_is_not_green(tmp_path, results):
    only = write_run(build(results[:1], run_info(run_id="s1", shard="1/2",
                                                 store_projects=("Project.Alpha",))), tmp_path / "a")
    lonely = merge([only.run_dir])
    assert lonely.summary.passed_all  # the shard itself listed only what it drilled
    # A shard that drilled nothing selected still counts its selection: nothing is silently dropped.
    other = write_run(build([], run_info(run_id="s2", shard="2/2", store_projects=("Project.Zeta",))), tmp_path / "b")
    merged = merge([only.run_dir, other.run_dir])
    assert merged.summary.not_drilled == ("Project.Zeta",) and not merged.summary.passed_all


def test_a_merged_report_round_trips_through_its_json(tmp_path, results):
    written = write_run(build(results, run_info()), tmp_path)
    again = load(written.run_dir)
    assert [r.to_dict() for r in again.results] == [r.to_dict() for r in build(results, run_info()).results]


def test_an_empty_run_is_never_green():
    report = build([], run_info(store_projects=()))
    assert not report.summary.passed_all
    assert "No archive was drilled" in parse(render_html(report)).text_content()
