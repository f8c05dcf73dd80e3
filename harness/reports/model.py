"""`ReportData`: everything a drill report says, built once, then rendered as HTML and JSON.

Built from `DrillResult`s, which already carry masked record values and no
tokens; the JSON summary is ``ReportData.to_dict()`` and follows
``harness/reports/schema.json`` (``schema_version``). A merged report (shards
of one CI run) is built by reading those JSON files back with `from_dict`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from harness import __version__
from harness.drill import STAGE_TITLES, STAGES, DrillResult

#: Bump the major part when a field changes meaning or disappears; the minor part when one is added.
SCHEMA_VERSION = "1.1"


@dataclass(frozen=True)
class Control:
    """A regulatory control this run is evidence for, and what exactly it shows."""

    framework: str
    reference: str
    title: str
    evidence: str
    limits: str

    def to_dict(self) -> dict[str, str]:
        return {"framework": self.framework, "reference": self.reference, "title": self.title,
                "evidence": self.evidence, "limits": self.limits}


COMPLIANCE: tuple[Control, ...] = (
    Control("HIPAA Security Rule", "45 CFR §164.308(a)(7)(ii)(B)", "Disaster recovery plan",
            "Each project's backup was restored into a REDCap and its data and design read back and compared: "
            "the restore procedure works for the archives listed.",
            "Covers what the project XML holds; users, rights, the audit log and the File Repository need "
            "their own recovery procedure (see the coverage panels)."),
    Control("HIPAA Security Rule", "45 CFR §164.308(a)(7)(ii)(D)", "Testing and revision procedures",
            "This run is a dated, repeatable test of the contingency plan; the drill ledger keeps every run "
            "so the testing frequency can be shown.",
            "Revision of the plan after a failed drill is a human step; record it in the sign-off below."),
    Control("ISO/IEC 27001:2022", "Annex A 8.13", "Information backup",
            "Backup copies were tested: integrity (checksums), freshness against the recovery point objective, "
            "restorability and fidelity of the restored copy.",
            "Evidence for the archives drilled in this run only; the backup policy defines which projects must be."),
    Control("21 CFR Part 11", "§11.10(b)", "Accurate and complete copies of records",
            "The restored project re-exported an electronic copy that matched the archive value by value, "
            "apart from the documented REDCap differences listed per project.",
            "The audit trail (§11.10(e)) is not part of a project XML backup."),
    Control("21 CFR Part 11", "§11.10(c)", "Protection of records for accurate and ready retrieval",
            "The archives were retrievable, intact (sha256) and restorable within the measured recovery time.",
            "Retention-period coverage depends on how long the backup store keeps archives."),
)


@dataclass(frozen=True)
class RunInfo:
    """Who ran what, where and when; never a token, never a credential in a URL."""

    run_id: str
    started: str
    finished: str
    host: str
    user: str
    harness_version: str = __version__
    target: dict[str, str] = field(default_factory=dict)
    archives: str = ""
    shard: str | None = None
    max_age: str | None = None
    max_rto: str | None = None
    show_values: bool = False
    #: The --record-ids policy (auto, mask, show); each project's result says what it did.
    record_ids: str = "auto"
    #: --require-data: a backup without records failed instead of passing with a warning.
    require_data: bool = False
    schema_source: str = ""
    #: Every project key the store listed before sharding or --project selection.
    store_projects: tuple[str, ...] = ()
    #: Run ids merged into this report (empty for a single run).
    merged_from: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started": self.started, "finished": self.finished, "host": self.host,
                "user": self.user, "harness_version": self.harness_version, "target": dict(self.target),
                "archives": self.archives, "shard": self.shard, "max_age": self.max_age, "max_rto": self.max_rto,
                "show_values": self.show_values, "record_ids": self.record_ids,
                "require_data": self.require_data, "schema_source": self.schema_source,
                "store_projects": list(self.store_projects), "merged_from": list(self.merged_from)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        return cls(run_id=data.get("run_id", ""), started=data.get("started", ""), finished=data.get("finished", ""),
                   host=data.get("host", ""), user=data.get("user", ""),
                   harness_version=data.get("harness_version", ""), target=dict(data.get("target") or {}),
                   archives=data.get("archives", ""), shard=data.get("shard"), max_age=data.get("max_age"),
                   max_rto=data.get("max_rto"), show_values=bool(data.get("show_values", False)),
                   record_ids=data.get("record_ids", "auto"), require_data=bool(data.get("require_data", False)),
                   schema_source=data.get("schema_source", ""),
                   store_projects=tuple(data.get("store_projects") or ()),
                   merged_from=tuple(data.get("merged_from") or ()))


@dataclass(frozen=True)
class Summary:
    projects: int
    passed: int
    failed: int
    #: Share of all compared items that came back identical; None when nothing was compared.
    fidelity_percent: float | None
    rto_max_seconds: float | None
    rto_median_seconds: float | None
    #: Projects the store listed that no drill in this report covers (a shard that never ran).
    not_drilled: tuple[str, ...] = ()
    #: True only for a shard that was given no project at all (more shards than projects).
    nothing_owed: bool = False

    @property
    def passed_all(self) -> bool:
        """Green only if something was drilled (or nothing was owed) and nothing failed or was left out."""
        return (self.projects > 0 or self.nothing_owed) and self.failed == 0 and not self.not_drilled

    def to_dict(self) -> dict[str, Any]:
        return {"projects": self.projects, "passed": self.passed, "failed": self.failed,
                "outcome": "passed" if self.passed_all else "failed",
                "fidelity_percent": self.fidelity_percent, "rto_max_seconds": self.rto_max_seconds,
                "rto_median_seconds": self.rto_median_seconds, "not_drilled": list(self.not_drilled)}


@dataclass(frozen=True)
class ReportData:
    run: RunInfo
    results: tuple[DrillResult, ...]
    summary: Summary
    #: project_key -> Trend.to_dict() from the ledger (before this run was appended).
    trends: dict[str, dict[str, Any]] = field(default_factory=dict)
    compliance: tuple[Control, ...] = COMPLIANCE
    schema_version: str = SCHEMA_VERSION

    @property
    def leftovers(self) -> list[dict[str, Any]]:
        """Restored projects still on a target, for manual removal."""
        out = []
        for r in self.results:
            for c in r.cleanup:
                if c.get("status") != "removed":
                    out.append({"project": r.title, **c})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run": self.run.to_dict(),
            "summary": self.summary.to_dict(),
            "projects": [{**r.to_dict(), "trend": self.trends.get(r.project_key)} for r in self.results],
            "leftovers": self.leftovers,
            "compliance": [c.to_dict() for c in self.compliance],
            "stages": [{"name": s, "title": STAGE_TITLES[s]} for s in STAGES],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportData:
        results = tuple(DrillResult.from_dict(p) for p in data.get("projects", ()))
        trends = {p["project_key"]: p["trend"] for p in data.get("projects", ()) if p.get("trend")}
        run = RunInfo.from_dict(data.get("run", {}))
        return build(results, run, trends=trends)


def build(results: tuple[DrillResult, ...] | list[DrillResult], run: RunInfo, *,
          trends: dict[str, dict[str, Any]] | None = None) -> ReportData:
    """The report for ``results``, failures first, then by title."""
    ordered = tuple(sorted(results, key=lambda r: (r.passed, r.title.lower(), r.project_key)))
    compared = sum(r.fidelity.compared for r in ordered)
    identical = sum(r.fidelity.identical for r in ordered)
    rtos = [r.rto_seconds for r in ordered if r.rto_seconds is not None]
    drilled = {r.project_key for r in ordered}
    summary = Summary(
        projects=len(ordered),
        passed=sum(1 for r in ordered if r.passed),
        failed=sum(1 for r in ordered if not r.passed),
        fidelity_percent=round(100.0 * identical / compared, 2) if compared else None,
        rto_max_seconds=round(max(rtos), 3) if rtos else None,
        rto_median_seconds=round(statistics.median(rtos), 3) if rtos else None,
        not_drilled=tuple(sorted(k for k in run.store_projects if k not in drilled)),
        nothing_owed=bool(run.shard) and not run.store_projects,
    )
    return ReportData(run=run, results=ordered, summary=summary, trends=dict(trends or {}))
