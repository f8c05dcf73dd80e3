"""Render a `ReportData` as one self-contained HTML file and as the JSON summary.

The template gets JSON-ready dictionaries (never live objects) with every
label and number already formatted, so it does nothing but loop. Autoescape
is on for everything: titles, findings and values come from archives, and an
archive is untrusted input.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2

from harness.drill import STAGE_TITLES, STAGES, DrillResult
from harness.reports.model import ReportData

STATUS_LABEL = {"passed": "passed", "failed": "FAILED", "skipped": "skipped", "not_applicable": "n/a",
                "not_run": "not run"}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.reports", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: ReportData) -> str:
    return _environment().get_template("report.html.j2").render(report=view(report))


def render_json(report: ReportData) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


# --------------------------------------------------------------------------------------------
# The view: ReportData -> formatted, JSON-ready dictionaries
# --------------------------------------------------------------------------------------------
def view(report: ReportData) -> dict[str, Any]:
    run = report.run
    summary = report.summary
    return {
        "title": "REDCap restore drill" + (" — PASSED" if summary.passed_all else " — FAILED"),
        "outcome": "passed" if summary.passed_all else "failed",
        "run": [
            ("Run", run.run_id + (f" (merged from {', '.join(run.merged_from)})" if run.merged_from else "")),
            ("Started", run.started), ("Finished", run.finished),
            ("Target", _target(run.target)),
            ("Archives", run.archives or "—"),
            ("Shard", run.shard or "all projects"),
            ("Recovery point objective (--max-age)", run.max_age or "not checked"),
            ("Recovery time objective (--max-rto)", run.max_rto or "not checked"),
            ("ODM schema", run.schema_source or "—"),
            ("Record values", "shown (--show-values)" if run.show_values else "masked"),
            ("Record IDs", _record_ids(report)),
            ("Records required (--require-data)", "yes: a backup without records fails" if run.require_data
             else "no: a backup without records is a warning"),
            ("Run by", f"{run.user} on {run.host}"),
            ("redcap-drill", run.harness_version),
        ],
        "summary": {
            "projects": summary.projects, "passed": summary.passed, "failed": summary.failed,
            "fidelity": _percent(summary.fidelity_percent),
            "rto_max": _seconds(summary.rto_max_seconds), "rto_median": _seconds(summary.rto_median_seconds),
            "not_drilled": list(summary.not_drilled),
        },
        "stage_names": list(STAGES),
        "projects": [_project(r, i, report.trends.get(r.project_key)) for i, r in enumerate(report.results)],
        "leftovers": report.leftovers,
        "compliance": [c.to_dict() for c in report.compliance],
        "never_in_xml": _never(report),
        "schema_version": report.schema_version,
        "version": run.harness_version,
    }


def _project(r: DrillResult, index: int, trend: dict[str, Any] | None) -> dict[str, Any]:
    failed = r.failed_stage
    structure = [d.to_dict() for d in r.differences if d.stage == "structure"]
    records = [d.to_dict() for d in r.differences if d.stage == "records"]
    a = r.archive
    return {
        "anchor": f"p{index + 1}",
        "title": r.title,
        "key": r.project_key,
        "outcome": r.outcome,
        "verdict": "passed" if r.passed else f"FAILED at {failed.name}: {failed.reason}" if failed else "FAILED",
        "failed_stage": failed.name if failed else "",
        "rto": _seconds(r.rto_seconds),
        "fidelity": _percent(r.fidelity.percent),
        "fidelity_detail": (f"{r.fidelity.metadata_identical:,}/{r.fidelity.metadata_compared:,} design items, "
                            f"{r.fidelity.records_identical:,}/{r.fidelity.records_compared:,} record values"),
        "cells": [{"status": s.status, "label": STATUS_LABEL[s.status]} for s in r.stages],
        "stages": [{"name": s.name, "title": STAGE_TITLES.get(s.name, s.name), "status": s.status,
                    "label": STATUS_LABEL[s.status], "reason": s.reason, "seconds": f"{s.seconds:.2f} s"}
                   for s in r.stages],
        "blockers": [f.to_dict() for f in r.findings if f.code.startswith("SEM-RESTORE-BLOCKER")],
        "findings": [{**f.to_dict(), "line": f.line or ""} for f in r.findings],
        "structure": structure,
        "records": records,
        "omitted": [f"{n:,} more {stage} difference(s) not listed" for stage, n in r.differences_omitted.items() if n],
        "known": [k.to_dict() for k in r.known_fired],
        "coverage": [s.to_dict() for s in r.coverage.sections] if r.coverage else [],
        "export_options": ", ".join(k for k, v in r.export_options.items() if v) or "defaults",
        "evidence": [
            ("Archive", a.path), ("Size", _bytes(a.size)), ("SHA-256", a.sha256 or "—"),
            ("Checksum sidecar", a.sidecar or "—"), ("Format", a.format or "—"),
            ("XML size", _bytes(a.xml_size)), ("Records in archive", _int(a.records)),
            ("CreationDateTime", a.created or "—"), ("Age at drill", _age(a.age_seconds)),
            ("REDCap version (archive)", a.redcap_version or "—"), ("Study OID", a.study_oid or "—"),
            ("Target", _target(r.target)), ("redcap-drill", r.harness_version),
            ("Drill started", r.started), ("Drill finished", r.finished),
            ("Host", r.host), ("Run by", r.user),
            ("Re-export options", ", ".join(k for k, v in r.export_options.items() if v) or "defaults"),
            ("Record IDs", r.record_ids or "—"),
        ],
        "cleanup": list(r.cleanup),
        "trend": _trend(trend),
    }


def _record_ids(report: ReportData) -> str:
    """What --record-ids did: one project's reason as it is, several summed up."""
    reasons = {r.record_ids for r in report.results if r.record_ids}
    if len(reasons) == 1:
        return reasons.pop()
    policy = report.run.record_ids
    if not reasons:
        return {"mask": "masked (--record-ids mask)", "show": "shown (--record-ids show)"}.get(
            policy, "auto: masked where the record ID field is marked identifier")
    masked = sum(r.record_ids_masked for r in report.results)
    return (f"masked in {masked} of {len(report.results)} projects, shown in the others "
            f"(--record-ids {policy}; each project's evidence says why)")


def _never(report: ReportData) -> list[dict[str, str]]:
    for r in report.results:
        if r.coverage:
            return [{"name": n, "detail": d} for n, d in r.coverage.never]
    from harness.reports.coverage import NEVER_IN_XML

    return [{"name": n, "detail": d} for n, d in NEVER_IN_XML]


def _trend(trend: dict[str, Any] | None) -> str:
    if not trend or not trend.get("runs"):
        return "first drill of this project in this report folder"
    last = trend.get("last_passed") or "never"
    outcomes = " ".join("✓" if o == "passed" else "✗" for o in trend.get("outcomes", []))
    return f"{trend['passed']}/{trend['runs']} earlier drills passed ({outcomes}); last pass: {last}"


def _target(target: dict[str, str]) -> str:
    if not target:
        return "—"
    parts = [target.get("kind", ""), f"REDCap {target['version']}" if target.get("version") else "",
             target.get("url", "")]
    return " · ".join(p for p in parts if p)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} %"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _bytes(value: int | None) -> str:
    if value is None:
        return "—"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


def _int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    from datetime import timedelta

    from harness.drill import human

    return human(timedelta(seconds=seconds))
