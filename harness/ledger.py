"""The drill ledger: one JSON line per drilled archive, appended run after run.

A single drill says "this backup restored today". The ledger says how often,
how fast and since when: it lives in the report folder (``ledger.jsonl``) and
is only ever appended to, so trends survive report clean-ups and a line never
changes once written. It holds no record data and no tokens: identifiers,
outcomes and timings only.

    Ledger(report_dir).append(results, run_id="20250314-092653")
    for entry in Ledger(report_dir).history(project_key="Project.MyStudy"): ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.drill import DrillResult
from harness.errors import ReportError

FILENAME = "ledger.jsonl"
LEDGER_VERSION = 1


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    when: str  # drill start, ISO local time
    project_key: str
    title: str
    archive_sha256: str | None
    archive_created: str | None
    archive_size: int | None
    outcome: str  # "passed" | "failed"
    failed_stage: str | None
    rto_seconds: float | None
    seconds: float  # all stages
    stage_seconds: dict[str, float]
    fidelity_percent: float | None
    target: str
    host: str
    v: int = LEDGER_VERSION

    @classmethod
    def from_result(cls, result: DrillResult, run_id: str) -> LedgerEntry:
        failed = result.failed_stage
        return cls(
            run_id=run_id, when=result.started, project_key=result.project_key, title=result.title,
            archive_sha256=result.archive.sha256, archive_created=result.archive.created,
            archive_size=result.archive.size, outcome=result.outcome,
            failed_stage=failed.name if failed else None, rto_seconds=result.rto_seconds,
            seconds=round(result.seconds, 3),
            stage_seconds={s.name: round(s.seconds, 3) for s in result.stages},
            fidelity_percent=result.fidelity.percent,
            target=f"{result.target.get('kind', '')} {result.target.get('version', '')}".strip(),
            host=result.host,
        )


class Ledger:
    """``ledger.jsonl`` in ``report_dir``; appends are whole lines, so concurrent writers do not interleave."""

    def __init__(self, report_dir: str | os.PathLike[str]) -> None:
        self.path = Path(report_dir) / FILENAME

    def append(self, results: Iterable[DrillResult], *, run_id: str) -> list[LedgerEntry]:
        entries = [LedgerEntry.from_result(r, run_id) for r in results]
        if not entries:
            return entries
        payload = "".join(json.dumps(asdict(e), sort_keys=True) + "\n" for e in entries).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One O_APPEND write: shards writing to a shared folder never interleave within a line.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ReportError(f"cannot append to the drill ledger {self.path}: {exc.strerror or exc}; "
                              "check that the report folder is writable") from None
        return entries

    def entries(self) -> Iterator[LedgerEntry]:
        """Every line, oldest first; lines this version cannot read are skipped, not fatal."""
        try:
            fh = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ReportError(f"cannot read the drill ledger {self.path}: {exc.strerror or exc}") from None
        with fh:
            for line in fh:
                entry = _parse(line)
                if entry is not None:
                    yield entry

    def history(self, *, project_key: str | None = None, sha256: str | None = None) -> list[LedgerEntry]:
        return [e for e in self.entries()
                if (project_key is None or e.project_key == project_key)
                and (sha256 is None or e.archive_sha256 == sha256)]

    def trend(self, project_key: str, last: int = 10) -> Trend:
        return Trend.of(self.history(project_key=project_key)[-last:])


@dataclass(frozen=True)
class Trend:
    """The recent history of one project's drills, for the report."""

    runs: int
    passed: int
    last_passed: str | None  # when the project last passed
    rto_seconds: tuple[float, ...]  # oldest first
    outcomes: tuple[str, ...]  # oldest first

    @classmethod
    def of(cls, entries: list[LedgerEntry]) -> Trend:
        passed = [e for e in entries if e.outcome == "passed"]
        return cls(
            runs=len(entries), passed=len(passed), last_passed=passed[-1].when if passed else None,
            rto_seconds=tuple(e.rto_seconds for e in entries if e.rto_seconds is not None),
            outcomes=tuple(e.outcome for e in entries),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "passed": self.passed, "last_passed": self.last_passed,
                "rto_seconds": list(self.rto_seconds), "outcomes": list(self.outcomes)}


def _parse(line: str) -> LedgerEntry | None:
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("v") != LEDGER_VERSION:
            return None
        return LedgerEntry(**data)
    except (ValueError, TypeError):
        return None  # a torn last line after a crash, or a future format: history goes on
