"""Where reports go: one dated folder per run, a ``latest/`` copy, and merged shard reports.

    reports/
      README.md
      ledger.jsonl                      every drill ever run here, one JSON line each
      runs/20250314-092653/             one folder per run, never overwritten
        report.html  summary.json  junit.xml
      latest/                           a copy (not a symlink) of the newest run folder

``latest/`` is a copy so it survives being uploaded as a CI artifact or opened
from a file share that does not follow symlinks.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from harness.drill import DrillResult
from harness.errors import ReportError
from harness.ledger import Ledger
from harness.reports.model import SCHEMA_VERSION, ReportData, RunInfo, build
from harness.reports.render import render_html, render_json
from harness.targets.secret import Secret, scrub

HTML = "report.html"
SUMMARY = "summary.json"
JUNIT = "junit.xml"
TOKEN_ENV = "REDCAP_DRILL_SUPER_TOKEN"


@dataclass(frozen=True)
class Written:
    run_dir: Path
    html: Path
    summary: Path
    latest: Path | None


def new_run_id(report_dir: str | os.PathLike[str], *, now: datetime | None = None, shard: str | None = None) -> str:
    """``YYYYmmdd-HHMMSS`` (plus the shard), unique within ``report_dir/runs``."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    if shard:
        stamp += "-shard" + shard.replace("/", "of")
    runs = Path(report_dir) / "runs"
    candidate, n = stamp, 1
    while (runs / candidate).exists():
        n += 1
        candidate = f"{stamp}-{n}"
    return candidate


def run_dir(report_dir: str | os.PathLike[str], run_id: str) -> Path:
    return Path(report_dir) / "runs" / run_id


def write_run(report: ReportData, report_dir: str | os.PathLike[str], *, latest: bool = True,
              ledger: bool = True) -> Written:
    """Write ``runs/<run_id>/`` (HTML + JSON), refresh ``latest/``, append to the ledger."""
    folder = run_dir(report_dir, report.run.run_id)
    html, summary = _write_files(report, folder)
    if ledger:
        Ledger(report_dir).append(report.results, run_id=report.run.run_id)
    latest_dir = refresh_latest(report_dir, folder) if latest else None
    return Written(folder, html, summary, latest_dir)


def write_folder(report: ReportData, folder: str | os.PathLike[str]) -> Written:
    """HTML + JSON straight into ``folder`` (used by ``report merge --out``)."""
    html, summary = _write_files(report, Path(folder))
    return Written(Path(folder), html, summary, None)


def refresh_latest(report_dir: str | os.PathLike[str], folder: Path) -> Path:
    """Replace ``latest/`` with a copy of ``folder``; the old copy goes only once the new one is complete."""
    latest = Path(report_dir) / "latest"
    staging = Path(report_dir) / ".latest.tmp"
    old = Path(report_dir) / ".latest.old"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging)
        shutil.rmtree(old, ignore_errors=True)
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        elif latest.exists():
            latest.rename(old)
        staging.rename(latest)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise ReportError(f"cannot update {latest}: {exc.strerror or exc}; the run's own report is in {folder}") from None
    return latest


def _write_files(report: ReportData, folder: Path) -> tuple[Path, Path]:
    secrets = _known_secrets()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        html = folder / HTML
        summary = folder / SUMMARY
        # Tokens never get into ReportData; scrubbing the output as well costs nothing.
        _atomic_write(summary, scrub(render_json(report), *secrets))
        _atomic_write(html, scrub(render_html(report), *secrets))
    except OSError as exc:
        raise ReportError(f"cannot write the report into {folder}: {exc.strerror or exc}; "
                          "check --report-dir and free space") from None
    return html, summary


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _known_secrets() -> list[Secret]:
    out = []
    for name in (TOKEN_ENV,):
        value = os.environ.get(name, "").strip()
        if value:
            out.append(Secret(value))
    return out


# --------------------------------------------------------------------------------------------
# Merging shard reports
# --------------------------------------------------------------------------------------------
def find_summary(path: str | os.PathLike[str]) -> Path:
    """``summary.json`` given the file, a run folder, or a report folder (then its ``latest/``)."""
    p = Path(path)
    for candidate in (p, p / SUMMARY, p / "latest" / SUMMARY):
        if candidate.is_file():
            return candidate
    raise ReportError(f"no {SUMMARY} in {p} (looked in {p}, {p / SUMMARY} and {p / 'latest' / SUMMARY}); "
                      "pass the folder a drill shard wrote its report into")


def load(path: str | os.PathLike[str]) -> ReportData:
    summary = find_summary(path)
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {summary}: {exc}; is it a complete redcap-drill summary?") from None
    version = str(data.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise ReportError(f"{summary} has schema_version {version or '(none)'}, this redcap-drill reads "
                          f"{SCHEMA_VERSION.split('.')[0]}.x; merge with the version that wrote it")
    try:
        return ReportData.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"{summary} does not follow the summary schema ({exc}); was it edited?") from None


def merge(paths: list[str | os.PathLike[str]], *, run_id: str | None = None) -> ReportData:
    """One report from several shard reports; a project drilled twice keeps its latest drill."""
    if not paths:
        raise ReportError("nothing to merge: pass at least one shard report folder")
    parts = [load(p) for p in paths]
    latest: dict[str, DrillResult] = {}
    for part in parts:
        for result in part.results:
            current = latest.get(result.project_key)
            if current is None or result.finished > current.finished:
                latest[result.project_key] = result
    runs = [p.run for p in parts]
    store = sorted({key for r in runs for key in r.store_projects})
    first = runs[0]
    run = replace(
        first,
        run_id=run_id or "merged-" + datetime.now().strftime("%Y%m%d-%H%M%S"),
        started=min(r.started for r in runs),
        finished=max(r.finished for r in runs),
        shard=None,
        store_projects=tuple(store),
        merged_from=tuple(r.run_id + (f" [{r.shard}]" if r.shard else "") for r in runs),
        show_values=any(r.show_values for r in runs),
        # Shards run with different policies: each project's own result still says what applied to it.
        record_ids=first.record_ids if len({r.record_ids for r in runs}) == 1 else "mixed",
        require_data=all(r.require_data for r in runs),
        host=", ".join(sorted({r.host for r in runs if r.host})),
        user=", ".join(sorted({r.user for r in runs if r.user})),
    )
    return build(list(latest.values()), run)


__all__ = ["HTML", "JUNIT", "SUMMARY", "RunInfo", "Written", "find_summary", "load", "merge", "new_run_id",
           "refresh_latest", "run_dir", "write_folder", "write_run"]
