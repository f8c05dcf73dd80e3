"""Drill reports: one `ReportData`, rendered as a self-contained HTML file and a versioned JSON summary.

    report = build(results, RunInfo(...), trends=...)
    write_run(report, "reports")        # reports/runs/<run id>/ + reports/latest/ + ledger
    merged = merge(["shard-1", "shard-2"])
"""

from harness.reports.coverage import NEVER_IN_XML, ArchiveFacts, Coverage, Section, coverage
from harness.reports.model import COMPLIANCE, SCHEMA_VERSION, Control, ReportData, RunInfo, Summary, build
from harness.reports.render import render_html, render_json, view
from harness.reports.writer import (
    HTML, JUNIT, SUMMARY, Written, find_summary, load, merge, new_run_id, refresh_latest, run_dir, write_folder,
    write_run,
)

__all__ = [
    "COMPLIANCE", "HTML", "JUNIT", "NEVER_IN_XML", "SCHEMA_VERSION", "SUMMARY", "ArchiveFacts", "Control", "Coverage",
    "ReportData", "RunInfo", "Section", "Summary", "Written", "build", "coverage", "find_summary", "load", "merge",
    "new_run_id", "refresh_latest", "render_html", "render_json", "run_dir", "view", "write_folder", "write_run",
]
