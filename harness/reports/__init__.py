"""Drill reports: one `ReportData`, rendered as a self-contained HTML file and a versioned JSON summary.

    report = build(results, RunInfo(...), trends=...)
    write_run(report, "reports")        # reports/runs/<run id>/ + reports/latest/ + ledger
    merged = merge(["shard-1", "shard-2"])

Modules: ``coverage`` (what an archive holds; used by the drill itself, so it
imports nothing from the rest of this package), ``model`` (ReportData),
``render`` (jinja2 HTML, JSON), ``writer`` (folders, latest/, merge). Names are
imported on first use so the drill can import ``coverage`` without a cycle.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "NEVER_IN_XML": "coverage", "ArchiveFacts": "coverage", "Coverage": "coverage", "Section": "coverage",
    "coverage": "coverage",
    "COMPLIANCE": "model", "SCHEMA_VERSION": "model", "Control": "model", "ReportData": "model", "RunInfo": "model",
    "Summary": "model", "build": "model",
    "render_html": "render", "render_json": "render", "view": "render",
    "HTML": "writer", "JUNIT": "writer", "SUMMARY": "writer", "Written": "writer", "find_summary": "writer",
    "load": "writer", "merge": "writer", "new_run_id": "writer", "refresh_latest": "writer", "run_dir": "writer",
    "write_folder": "writer", "write_run": "writer",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.reports' has no attribute {name!r}")
    return getattr(importlib.import_module(f"harness.reports.{module}"), name)
