"""``redcap-drill report``: merge shard reports, re-render a report, show the drill history.

    redcap-drill report merge shard-1/ shard-2/ --out reports/merged     # one HTML for a CI matrix
    redcap-drill report render reports/latest/summary.json --out /tmp/r  # HTML again from the JSON
    redcap-drill report history --report-dir reports [--project KEY]     # the ledger, per project

``merge`` and ``render`` exit 1 when the report they write says a drill
failed or a selected project was not drilled, so a CI job can gate on them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="merge shard reports, re-render a report, show drill history",
                       description="Work with drill reports written by `redcap-drill run`.")
    actions = p.add_subparsers(dest="report_command", metavar="ACTION")

    merge = actions.add_parser("merge", help="join shard reports (summary.json) into one report",
                               description="Join the reports of a sharded run (--shard K/N) into one HTML report "
                                           "and summary.json. Each DIR is a shard's report folder, run folder or "
                                           "summary.json. A project drilled twice keeps its latest drill.")
    merge.add_argument("dirs", nargs="+", metavar="DIR")
    merge.add_argument("--out", required=True, metavar="DIR", help="folder for report.html and summary.json")
    merge.set_defaults(func=run_merge)

    render = actions.add_parser("render", help="write report.html again from a summary.json")
    render.add_argument("summary", metavar="PATH", help="summary.json, or the folder holding it")
    render.add_argument("--out", required=True, metavar="DIR")
    render.set_defaults(func=run_render)

    history = actions.add_parser("history", help="show the drill ledger (every drill run in a report folder)")
    history.add_argument("--report-dir", default="reports", metavar="DIR")
    history.add_argument("--project", metavar="KEY", help="only this project key")
    history.set_defaults(func=run_history)

    p.set_defaults(func=lambda args: _missing_action(p))


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    raise UsageError("choose an action: merge, render or history")


def run_merge(args: argparse.Namespace) -> int:
    from harness.reports.writer import merge, write_folder

    report = merge(args.dirs)
    written = write_folder(report, Path(args.out))
    return _print(report, written.html)


def run_render(args: argparse.Namespace) -> int:
    from harness.reports.writer import load, write_folder

    report = load(args.summary)
    written = write_folder(report, Path(args.out))
    return _print(report, written.html)


def run_history(args: argparse.Namespace) -> int:
    from harness.ledger import Ledger

    entries = Ledger(args.report_dir).history(project_key=args.project)
    if not entries:
        print(f"no drills recorded in {Path(args.report_dir) / 'ledger.jsonl'}", file=sys.stderr)
        return 0
    print(f"{'when':19}  {'outcome':7}  {'stage':9}  {'rto':>8}  {'fidelity':>8}  project")
    for e in entries:
        rto = f"{e.rto_seconds:.1f}s" if e.rto_seconds is not None else "—"
        fid = f"{e.fidelity_percent:.2f}%" if e.fidelity_percent is not None else "—"
        print(f"{e.when:19}  {e.outcome:7}  {e.failed_stage or '':9}  {rto:>8}  {fid:>8}  {e.title} ({e.project_key})")
    return 0


def _print(report, html: Path) -> int:
    s = report.summary
    outcome = "PASSED" if s.passed_all else "FAILED"
    missing = f", {len(s.not_drilled)} not drilled" if s.not_drilled else ""
    print(f"{outcome}: {s.passed}/{s.projects} projects passed{missing}; report: {html}")
    return 0 if s.passed_all else 1
