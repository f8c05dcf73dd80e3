"""The restore drill: one archive in, one frozen `DrillResult` out.

    with targets.get("sandbox") as target:
        result = drill(path, target, DrillOptions(max_age=timedelta(hours=36)))
        result.passed, result.stage("restore").status, result.rto_seconds

Stages run in order: integrity, freshness, schema, semantics, restore, export,
structure, records, rto. Each records a status (passed, failed, skipped,
not_applicable, not_run), a reason and its duration. When a blocking stage
fails, every later stage is ``not_run`` with the reason; freshness, structure
and records do not block (a stale backup is still worth restoring, and
structure and records are two views of the same comparison).

The verdict never rounds up: a drill passes only if no stage failed and every
stage that applies actually ran and passed. A skipped stage (the ODM schema is
not installed, say) makes the drill fail, however green the rest looks.

Record values are masked unless ``show_values``; record IDs follow
``record_ids``: one `RecordIdMasker` per drill, applied where validation
findings and the comparison become this result, so a record has one
pseudonym throughout. ``require_data`` fails a backup without records.

No printing and no pytest here: callers get data, plus an optional
``on_stage`` callback for progress lines.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from harness import __version__
from harness.archive import Archive, BrokenArchive, open_xml
from harness.compare.mask import RecordIdMasker
from harness.compare.model import RECORD_ID_POLICIES
from harness.errors import DrillError, OdmError, SchemaError, TargetError
from harness.odm.model import DAG_FIELD, SURVEY_ID_FIELD, FileValue, ProjectMetadata
from harness.odm.reader import OdmDocument
from harness.reports.coverage import ArchiveFacts, Coverage, coverage
from harness.sources.inspect import inspect_archive, local_now
from harness.targets.base import ExportOptions, Restored, Target

Status = Literal["passed", "failed", "skipped", "not_applicable", "not_run"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "skipped", "not_applicable", "not_run")

#: Every stage, in the order it runs.
STAGES = ("integrity", "freshness", "schema", "semantics", "restore", "export", "structure", "records", "rto")
#: A failure here makes every later stage ``not_run``: nothing after it could mean anything.
BLOCKING = frozenset({"integrity", "schema", "semantics", "restore", "export"})
#: What each stage proves, for reports and test docstrings.
STAGE_TITLES = {
    "integrity": "The archive opens, is complete and matches its checksum",
    "freshness": "The archive is newer than the recovery point objective (--max-age)",
    "schema": "The XML is valid CDISC ODM 1.3.1",
    "semantics": "The XML is a consistent REDCap project with no known restore blockers",
    "restore": "REDCap creates a project from the archive (API Create Project)",
    "export": "The restored project exports again (API Export Project XML)",
    "structure": "The re-export's design matches the archive's",
    "records": "The re-export's records match the archive's",
    "rto": "Restore and verification finish within the recovery time objective (--max-rto)",
}

MASK = "•••"
RESTORE_BLOCKER = "SEM-RESTORE-BLOCKER"
NO_DATA_REQUIRED = ("the archive holds no records (no SubjectData), and --require-data says this project must: "
                    "the backup job exports metadata only — switch it to a full project XML export (with data), "
                    "or drop --require-data for projects that legitimately have no records")


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DrillOptions:
    """How strict a drill is. Durations are ``timedelta``; ``None`` means "not checked"."""

    max_age: timedelta | None = None  # RPO
    max_rto: timedelta | None = None  # RTO
    show_values: bool = False  # record values in differences are masked unless set
    keep: bool = False  # leave the restored project on the target when the drill fails
    now: datetime | None = None  # the clock freshness is judged by (default: now)
    max_differences: int = 200  # per stage; the rest are counted, not listed
    #: Extra `harness.compare.CompareOptions` fields (e.g. from the pytest hook).
    compare_options: tuple[tuple[str, Any], ...] = ()
    #: Record IDs in the result: "auto" (pseudonyms when the record ID field is marked identifier),
    #: "mask" or "show". Independent of show_values: an MRN stays hidden even when values are shown.
    record_ids: str = "auto"
    #: A backup with no records fails the records stage instead of not applying (metadata-only exports).
    require_data: bool = False

    def __post_init__(self) -> None:
        policy = self.record_id_policy
        if policy not in RECORD_ID_POLICIES:
            raise ValueError(f"DrillOptions(record_ids={policy!r}): use one of {', '.join(RECORD_ID_POLICIES)}")

    @property
    def record_id_policy(self) -> str:
        """``record_ids``, unless the compare options (a per-archive hook) name their own."""
        return dict(self.compare_options).get("record_ids", self.record_ids)


@dataclass(frozen=True)
class StageResult:
    name: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    #: False only where the stage does not apply (no --max-age, a metadata-only archive).
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason,
                "seconds": round(self.seconds, 3), "required": self.required}


@dataclass(frozen=True)
class Finding:
    """A validation message: schema (``XSD-*``) or semantic (``SEM-*``)."""

    stage: str
    severity: str  # "error" | "warning" | "info"
    code: str
    message: str
    line: int | None = None
    path: str = ""
    #: The record it concerns, as the report shows it (a pseudonym when record IDs are masked).
    record: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "severity": self.severity, "code": self.code, "message": self.message,
                "line": self.line, "path": self.path, "record": self.record}


@dataclass(frozen=True)
class Difference:
    """One way the re-export differs from the archive; values already masked unless --show-values."""

    stage: str  # "structure" | "records"
    kind: str
    severity: str  # "failure" | "warning" | "info"
    location: str
    expected: str | None = None  # in the archive
    actual: str | None = None  # in the re-export
    known: str = ""  # the documented REDCap behaviour that explains it, if any
    #: The record it concerns, as the report shows it (a pseudonym when record IDs are masked).
    record: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "kind": self.kind, "severity": self.severity, "location": self.location,
                "expected": self.expected, "actual": self.actual, "known": self.known, "record": self.record}


@dataclass(frozen=True)
class KnownDifference:
    """A documented REDCap round-trip difference that fired, and how often."""

    name: str
    description: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "count": self.count}


@dataclass(frozen=True)
class Fidelity:
    """Share of compared items that came back identical, per side of the comparison."""

    metadata_compared: int = 0
    metadata_identical: int = 0
    records_compared: int = 0
    records_identical: int = 0

    @property
    def compared(self) -> int:
        return self.metadata_compared + self.records_compared

    @property
    def identical(self) -> int:
        return self.metadata_identical + self.records_identical

    @property
    def percent(self) -> float | None:
        """None when nothing was compared: "no evidence" is not 100 %."""
        return round(100.0 * self.identical / self.compared, 2) if self.compared else None

    def to_dict(self) -> dict[str, Any]:
        return {"metadata_compared": self.metadata_compared, "metadata_identical": self.metadata_identical,
                "records_compared": self.records_compared, "records_identical": self.records_identical,
                "percent": self.percent}


@dataclass(frozen=True)
class ArchiveEvidence:
    """The facts that identify exactly which backup was drilled."""

    path: str
    size: int | None = None
    sha256: str | None = None
    sidecar: str | None = None  # "verified" | "absent"
    format: str | None = None
    created: str | None = None  # ODM/@CreationDateTime, ISO
    redcap_version: str | None = None
    xml_size: int | None = None
    records: int | None = None
    metadata_only: bool | None = None
    age_seconds: float | None = None
    study_oid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class DrillResult:
    """Everything one drill established. Plain data: JSON in, JSON out, no tokens, masked values."""

    project_key: str
    title: str
    archive: ArchiveEvidence
    stages: tuple[StageResult, ...]
    started: str
    finished: str
    target: dict[str, str] = field(default_factory=dict)  # TargetInfo.to_dict()
    findings: tuple[Finding, ...] = ()
    differences: tuple[Difference, ...] = ()
    #: Differences found but not listed (over ``max_differences``), per stage.
    differences_omitted: dict[str, int] = field(default_factory=dict)
    known_fired: tuple[KnownDifference, ...] = ()
    fidelity: Fidelity = Fidelity()
    coverage: Coverage | None = None
    export_options: dict[str, bool] = field(default_factory=dict)
    rto_seconds: float | None = None
    cleanup: tuple[dict[str, Any], ...] = ()  # Cleanup.to_dict()
    host: str = ""
    user: str = ""
    harness_version: str = __version__
    show_values: bool = False
    #: How record IDs appear in this result and why: starts "masked" or "shown" (`RecordIdMasker.reason`).
    record_ids: str = ""

    @property
    def record_ids_masked(self) -> bool:
        return self.record_ids.startswith("masked")

    # -- the verdict ---------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        """No stage failed, and every required stage ran and passed. Nothing else is a pass."""
        if not self.stages:
            return False
        return all(s.status != "failed" for s in self.stages) and all(
            s.status == "passed" for s in self.stages if s.required
        )

    @property
    def outcome(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def failed_stage(self) -> StageResult | None:
        """The first stage that failed, else the first required stage that did not pass."""
        for s in self.stages:
            if s.status == "failed":
                return s
        for s in self.stages:
            if s.required and s.status != "passed":
                return s
        return None

    def stage(self, name: str) -> StageResult:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages are {', '.join(STAGES)}")

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    # -- serialisation (xdist workers, shard JSON, report merge) ----------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "project_key": self.project_key, "title": self.title, "outcome": self.outcome,
            "failed_stage": self.failed_stage.name if self.failed_stage else None,
            "archive": self.archive.to_dict(), "target": dict(self.target),
            "started": self.started, "finished": self.finished, "rto_seconds": self.rto_seconds,
            "stages": [s.to_dict() for s in self.stages],
            "findings": [f.to_dict() for f in self.findings],
            "differences": [d.to_dict() for d in self.differences],
            "differences_omitted": dict(self.differences_omitted),
            "known_fired": [k.to_dict() for k in self.known_fired],
            "fidelity": self.fidelity.to_dict(),
            "coverage": self.coverage.to_dict() if self.coverage else None,
            "export_options": dict(self.export_options), "cleanup": [dict(c) for c in self.cleanup],
            "host": self.host, "user": self.user, "harness_version": self.harness_version,
            "show_values": self.show_values, "record_ids": self.record_ids,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DrillResult:
        fid = {k: v for k, v in data.get("fidelity", {}).items() if k != "percent"}
        return cls(
            project_key=data["project_key"], title=data.get("title", ""),
            archive=ArchiveEvidence(**data["archive"]),
            stages=tuple(StageResult(**s) for s in data["stages"]),
            started=data.get("started", ""), finished=data.get("finished", ""),
            target=dict(data.get("target", {})),
            findings=tuple(Finding(**f) for f in data.get("findings", ())),
            differences=tuple(Difference(**d) for d in data.get("differences", ())),
            differences_omitted=dict(data.get("differences_omitted", {})),
            known_fired=tuple(KnownDifference(**k) for k in data.get("known_fired", ())),
            fidelity=Fidelity(**fid),
            coverage=Coverage.from_dict(data["coverage"]) if data.get("coverage") else None,
            export_options=dict(data.get("export_options", {})), rto_seconds=data.get("rto_seconds"),
            cleanup=tuple(dict(c) for c in data.get("cleanup", ())),
            host=data.get("host", ""), user=data.get("user", ""),
            harness_version=data.get("harness_version", ""), show_values=bool(data.get("show_values", False)),
            record_ids=data.get("record_ids", ""),
        )


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------
class _Stages:
    """Collects stage results in order and enforces the blocking rule."""

    def __init__(self, on_stage: Callable[[StageResult], None] | None) -> None:
        self.results: list[StageResult] = []
        self.blocked_by: StageResult | None = None
        self._on_stage = on_stage

    def add(self, name: str, status: Status, reason: str, seconds: float = 0.0) -> StageResult:
        # Only "does not apply" is optional; a skipped stage is still owed and fails the drill.
        result = StageResult(name, status, reason, seconds, required=status != "not_applicable")
        self.results.append(result)
        # A skipped stage does not block: running the rest still tells the operator more.
        if status == "failed" and name in BLOCKING and self.blocked_by is None:
            self.blocked_by = result
        if self._on_stage is not None:
            self._on_stage(result)
        return result

    def not_run(self, name: str) -> StageResult:
        why = self.blocked_by
        assert why is not None
        return self.add(name, "not_run", f"not run: the {why.name} stage {why.status}")

    def finish(self) -> tuple[StageResult, ...]:
        """Every stage, in order; one never reached is ``not_run`` rather than missing."""
        seen = {r.name for r in self.results}
        for name in STAGES:
            if name not in seen:
                if self.blocked_by is not None:
                    self.not_run(name)
                else:
                    self.add(name, "not_run", "not run: an earlier step did not complete")
        order = {name: i for i, name in enumerate(STAGES)}
        return tuple(sorted(self.results, key=lambda r: order.get(r.name, len(order))))

    def runs(self, name: str) -> bool:
        """False (and ``name`` recorded as not_run) once a blocking stage failed."""
        if self.blocked_by is None:
            return True
        self.not_run(name)
        return False


@dataclass(frozen=True)
class _Read:
    """What one pass over the archive's XML found."""

    meta: ProjectMetadata
    facts: ArchiveFacts
    findings: tuple[Finding, ...]
    #: How record IDs appear in everything this drill reports, decided from ``meta``.
    ids: RecordIdMasker


def drill(archive: str | os.PathLike[str] | Archive | BrokenArchive, target: Target,
          options: DrillOptions = DrillOptions(), *,
          on_stage: Callable[[StageResult], None] | None = None) -> DrillResult:
    """Drill one archive on a started target; never raises for a failing archive or target.

    ``archive`` is a path, or an entry a `harness.sources.Source` already
    inspected (then its checksum and completeness are not computed again).
    Only programming errors propagate, after the restored project is cleaned up.
    """
    started = datetime.now()
    now = local_now(options.now)
    stages = _Stages(on_stage)

    # integrity ---------------------------------------------------------------------------
    t0 = time.perf_counter()
    entry = archive if isinstance(archive, (Archive, BrokenArchive)) else inspect_archive(
        Path(archive), now=now, max_age=options.max_age)
    evidence = _evidence(entry, now)
    findings: list[Finding] = []
    if entry.ok:
        sidecar = "matches its .sha256 sidecar" if entry.sidecar == "verified" else "no .sha256 sidecar to check"
        stages.add("integrity", "passed",
                   f"{entry.size:,} bytes, sha256 {entry.sha256[:12]}…, {sidecar}, ends with </ODM>, "
                   f"{entry.subject_count:,} records", time.perf_counter() - t0)
        if entry.sidecar != "verified":
            findings.append(Finding("integrity", "warning", "INT-NO-SIDECAR",
                                    f"no checksum sidecar beside {entry.path.name}, so damage since the backup "
                                    f"was written cannot be detected; have the backup job write "
                                    f"'sha256sum {entry.path.name} > {entry.path.name}.sha256'"))
    else:
        stages.add("integrity", "failed", entry.error, time.perf_counter() - t0)

    # freshness ---------------------------------------------------------------------------
    if stages.runs("freshness"):
        stages.add("freshness", *_freshness(entry, now, options.max_age))

    # schema, then semantics over the model -------------------------------------------------
    read: _Read | None = None
    if stages.runs("schema"):
        status, reason, read, seconds = _validate(Path(entry.path), options.show_values, options.record_id_policy)
        findings.extend(read.findings if read else ())
        stages.add("schema", status, reason, seconds[0])
        if stages.runs("semantics"):
            stages.add("semantics", *_semantics(read), seconds[1])

    title = (read.meta.title if read and read.meta.title else None) or _entry_title(entry)
    # One masker for the whole drill: a record has one pseudonym in its findings and its differences.
    ids = read.ids if read else RecordIdMasker.for_policy(options.record_id_policy, None)
    export_options = _export_options(entry, read) if read else ExportOptions()
    cov = coverage(read.meta, read.facts) if read else None

    # restore, export, compare -----------------------------------------------------------
    restored: Restored | None = None
    exported: Path | None = None
    comparison: _Compared | None = None
    rto_start: float | None = None
    cleanup: tuple[dict[str, Any], ...] = ()
    try:
        if stages.runs("restore"):
            assert read is not None
            rto_start = time.perf_counter()
            try:
                restored = target.restore(entry.path, **_project_attributes(read.meta, title))
                stages.add("restore", "passed",
                           f"created project {restored.project_id} on {target.info().kind} "
                           f"REDCap {target.info().version}", time.perf_counter() - rto_start)
            except (TargetError, OdmError) as exc:
                stages.add("restore", "failed", mask_import_errors(str(exc), ids, options.show_values),
                           time.perf_counter() - rto_start)

        if stages.runs("export"):
            assert restored is not None
            t0 = time.perf_counter()
            try:
                exported = target.export(restored, options=export_options)
                stages.add("export", "passed", f"{exported.stat().st_size:,} bytes with "
                           f"{_describe_options(export_options)}", time.perf_counter() - t0)
            except TargetError as exc:
                stages.add("export", "failed", str(exc), time.perf_counter() - t0)

        if stages.runs("structure"):
            assert exported is not None
            t0 = time.perf_counter()
            comparison = _compare(entry.path, exported, export_options, options, ids)
            elapsed = time.perf_counter() - t0
            design = elapsed * comparison.structure_share  # one comparison, two verdicts: split its time
            stages.add("structure", *comparison.structure, design)
            if getattr(entry, "metadata_only", False) and options.require_data:
                stages.add("records", "failed", NO_DATA_REQUIRED, elapsed - design)
            elif getattr(entry, "metadata_only", False):
                stages.add("records", "not_applicable",
                           "the archive holds no records (a metadata-only backup): there is no data to restore",
                           elapsed - design)
            else:
                stages.add("records", *comparison.records, elapsed - design)

        rto = (time.perf_counter() - rto_start) if (rto_start is not None and comparison is not None) else None
        if comparison is not None:
            stages.add("rto", *_rto(rto, options.max_rto))
    finally:
        if exported is not None:
            exported.unlink(missing_ok=True)
        if restored is not None:
            failed = any(s.status in ("failed", "skipped") for s in stages.results)
            if failed and options.keep:
                cleanup = (target.keep_project(restored).to_dict(),)
            else:
                cleanup = (target.cleanup(restored).to_dict(),)

    if read is not None and getattr(entry, "metadata_only", False):
        findings.append(Finding("records", "error" if options.require_data else "warning", "DRILL-METADATA-ONLY",
                                "the archive holds the project design but no records; if this project has data, "
                                "the backup job exports metadata only — switch it to a full project XML export"
                                + ("" if options.require_data else
                                   " (--require-data makes this fail the drill)")))
    differences = comparison.differences if comparison else ()
    return DrillResult(
        project_key=entry.project_key,
        title=title,
        archive=evidence,
        stages=stages.finish(),
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now().isoformat(timespec="seconds"),
        target=_safe_info(target),
        findings=tuple(findings),
        differences=differences,
        differences_omitted=comparison.omitted if comparison else {},
        known_fired=comparison.known if comparison else (),
        fidelity=comparison.fidelity if comparison else Fidelity(),
        coverage=cov,
        export_options=export_options.to_dict() if read else {},
        rto_seconds=round(rto, 3) if rto is not None else None,
        cleanup=cleanup,
        host=_host(),
        user=_user(),
        show_values=options.show_values,
        record_ids=ids.reason,
    )


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------
def _freshness(entry: Archive | BrokenArchive, now: datetime, max_age: timedelta | None) -> tuple[Status, str]:
    clock = "its CreationDateTime" if entry.created else "the file's modification time (no CreationDateTime)"
    age = now - entry.taken
    if max_age is None:
        return "not_applicable", f"no --max-age given; the archive is {human(age)} old by {clock}"
    if age > max_age:
        return "failed", (f"the archive is {human(age)} old by {clock}, older than --max-age {human(max_age)}: "
                          "the backup job has not produced a newer export — check that it still runs")
    return "passed", f"{human(age)} old by {clock}, within --max-age {human(max_age)}"


def _semantics(read: _Read | None) -> tuple[Status, str]:
    if read is None:
        return "not_run", "not run: the archive could not be read"
    sem = [f for f in read.findings if f.stage == "semantics"]
    # A data-only export (no metadata) is a warning to the validator but cannot be restored at all.
    blockers = [f for f in sem if f.code.startswith(RESTORE_BLOCKER) or f.code == "SEM-NO-METADATA"]
    errors = [f for f in sem if f.severity == "error"]
    warnings = [f for f in sem if f.severity == "warning"]
    if blockers:
        return "failed", (f"{len(blockers)} known restore blocker(s), e.g. {blockers[0].code}: {blockers[0].message}; "
                          "REDCap's API would refuse this archive, so it cannot be restored as it is")
    if errors:
        return "failed", f"{len(errors)} error(s), e.g. {errors[0].code}: {errors[0].message}"
    return "passed", f"{_count(read.meta)}; {len(warnings)} warning(s)"


def _count(meta: ProjectMetadata) -> str:
    return f"{len(meta.forms)} instruments, {len(meta.fields)} fields, {max(1, len(meta.events))} event(s)"


def _rto(rto: float | None, max_rto: timedelta | None) -> tuple[Status, str]:
    if rto is None:
        return "not_run", "not run: restore and verification did not complete"
    if max_rto is None:
        return "not_applicable", f"restore and verification took {rto:.1f} s (no --max-rto given)"
    limit = max_rto.total_seconds()
    if rto > limit:
        return "failed", (f"restore and verification took {rto:.1f} s, longer than --max-rto {human(max_rto)}: "
                          "a real recovery of this project would miss its objective")
    return "passed", f"restore and verification took {rto:.1f} s, within --max-rto {human(max_rto)}"


def _project_attributes(meta: ProjectMetadata, title: str) -> dict[str, str]:
    """Create Project attributes taken from the archive itself.

    REDCap takes the title, purpose and notes from the API call, not the XML
    (research §5.3); passing the archive's own values makes the re-export's
    title-derived OIDs and these settings comparable.
    """
    purpose = meta.settings.get("Purpose", "").strip()
    if purpose not in {"0", "1", "2", "3", "4"}:
        purpose = "0"
    purpose_other = meta.settings.get("PurposeOther", "")
    if purpose == "1" and not purpose_other.strip():
        purpose_other = "(not recorded in the backup)"  # REDCap refuses purpose 1 without text
    return {"title": title, "purpose": purpose, "purpose_other": purpose_other,
            "notes": meta.settings.get("ProjectNotes", "")}


def _export_options(entry: Archive | BrokenArchive, read: _Read) -> ExportOptions:
    """Re-export with what the archive was exported with, so like is compared with like."""
    pseudo = set(read.meta.pseudo_fields)
    return ExportOptions(
        metadata_only=bool(getattr(entry, "metadata_only", False)),
        files=read.facts.files > 0,
        survey_fields=SURVEY_ID_FIELD in pseudo or any(p.endswith("_timestamp") for p in pseudo),
        dags=DAG_FIELD in pseudo,
    )


def _describe_options(options: ExportOptions) -> str:
    on = [name for name, value in options.to_dict().items() if value]
    return "options " + ", ".join(on) if on else "default options"


# --------------------------------------------------------------------------------------------
# Validation: the real XSD plus the semantic rules (harness.schema)
# --------------------------------------------------------------------------------------------
def _validate(path: Path, show_values: bool = False,
              record_ids: str = "auto") -> tuple[Status, str, _Read | None, tuple[float, float]]:
    """One streamed pass: the XSD and dialect check per block, semantic rules per record, and our facts.

    Returns the schema verdict, what was read (None if the XML is unreadable)
    and (seconds, 0): semantics runs inside the same pass, so its time is the schema's.
    """
    from harness.schema import Findings, Validation, locate_schema
    from harness.schema.semantic import SemanticCheck

    t0 = time.perf_counter()
    skipped = ""
    try:
        check: Validation | None = Validation(location=locate_schema())
    except SchemaError as exc:
        # The XSD is missing or altered: the archive is not at fault, but the check is owed.
        check, skipped = None, str(exc)
    sink = Findings(50)
    records = files = dags = survey = 0
    try:
        with open_xml(path) as stream:
            doc = OdmDocument(stream, name=path.name, on_block=check.on_block if check else None, prepass=False)
            meta = doc.metadata
            semantic = None
            if check is not None:
                check.on_metadata(meta, has_metadata=doc.has_metadata)
            elif doc.has_metadata:
                semantic = SemanticCheck(meta, sink)  # semantic rules need no XSD: still run them
            for subject in doc.subjects():
                if check is not None:
                    check.on_subject(subject)
                elif semantic is not None:
                    semantic.subject(subject)
                records += 1
                has_dag = False
                for cell in subject.cells:
                    if isinstance(cell.value, FileValue):
                        files += 1
                    elif cell.item_oid == DAG_FIELD and cell.value:
                        has_dag = True
                    elif cell.value and (cell.item_oid == SURVEY_ID_FIELD or cell.item_oid.endswith("_timestamp")):
                        survey += 1
                dags += has_dag
            result = check.result(doc, name=path.name) if check is not None else None
    except DrillError as exc:
        # Not readable as XML at all (malformed, truncated, hostile): nothing later can run.
        return "failed", str(exc), None, (time.perf_counter() - t0, 0.0)
    elapsed = time.perf_counter() - t0
    facts = ArchiveFacts(records=records, files=files, dag_assignments=dags, survey_values=survey)
    ids = RecordIdMasker.for_policy(record_ids, meta if doc.has_metadata else None)
    if result is None:
        found = tuple(_findings(sink.result()[0], show_values, ids))
        return "skipped", skipped, _Read(meta, facts, found, ids), (elapsed, 0.0)
    found = tuple(_findings(result.findings, show_values, ids))
    errors = [f for f in found if f.stage == "schema" and f.severity == "error"]
    if errors:
        where = f" (line {errors[0].line})" if errors[0].line else ""
        total = result.counts.get("error", len(errors))
        return ("failed", f"{total} schema error(s); first{where}: {errors[0].code} {errors[0].message}",
                _Read(meta, facts, found, ids), (elapsed, 0.0))
    return ("passed", f"valid CDISC ODM 1.3.1 ({result.profile} profile)", _Read(meta, facts, found, ids),
            (elapsed, 0.0))


# How validation messages quote a record's value: the semantic rules write "holds 'VALUE'", libxml2
# writes "The value 'VALUE'" and "'VALUE' is not a valid value". Python-repr or libxml2 quoting.
_QUOTED = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_VALUE_IN_MESSAGE = re.compile(rf"(?<=holds ){_QUOTED}|(?<=[Tt]he value ){_QUOTED}|{_QUOTED}(?= is not a valid value)")


def mask_values(message: str) -> str:
    """A validation message with the record values it quotes replaced by the mask."""
    return _VALUE_IN_MESSAGE.sub(MASK, message)


#: One line of REDCap's import error report: "record","field","value","message", each CSV-quoted.
_IMPORT_ERROR = re.compile(r'"((?:[^"]|"")*)","((?:[^"]|"")*)","((?:[^"]|"")*)","((?:[^"]|"")*)"')


def mask_import_errors(text: str, ids: RecordIdMasker, show_values: bool = False) -> str:
    """A restore error with the record and value columns of REDCap's import error lines masked.

    REDCap refuses a project's data with one line per bad value, naming the
    record and quoting the value: both may be PHI, and the reason goes into the report.
    """
    def line(m: re.Match[str]) -> str:
        record, item, value, message = (g.replace('""', '"') for g in m.groups())
        record = ids.id(record) or ""
        value = value if show_values or not value else MASK
        return ",".join('"' + x.replace('"', '""') + '"' for x in (record, item, value, message))

    return _IMPORT_ERROR.sub(line, text) if ids.masked or not show_values else text


def _findings(items: Iterable[Any], show_values: bool = False,
              ids: RecordIdMasker | None = None) -> Iterable[Finding]:
    for item in items:
        if ids is not None:
            item = ids.finding(item)  # first: every view of the finding below (where(), path) then shows the pseudonym
        code = str(item.code)
        where = getattr(item, "where", None)
        path = item.path or (where() if callable(where) else "") or ""
        message = item.message + (f" — {item.hint}" if getattr(item, "hint", "") else "")
        if not show_values and (getattr(item, "record", None) is not None or "SubjectData" in str(path)):
            message = mask_values(message)  # a finding about a record may quote participant data
        yield Finding(stage="semantics" if code.upper().startswith("SEM") else "schema",
                      severity=str(item.severity), code=code, message=message,
                      line=item.line if isinstance(item.line, int) else None, path=str(path),
                      record=getattr(item, "record", None))


# --------------------------------------------------------------------------------------------
# Comparison (harness.compare)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Compared:
    structure: tuple[Status, str]
    records: tuple[Status, str]
    differences: tuple[Difference, ...]
    omitted: dict[str, int]
    known: tuple[KnownDifference, ...]
    fidelity: Fidelity
    #: Share of the comparison's time spent on the design (the rest is records), when the comparator says.
    structure_share: float = 0.5


def _compare(archive: Path, exported: Path, export: ExportOptions, options: DrillOptions,
             ids: RecordIdMasker) -> _Compared:
    from harness.compare import CompareOptions, compare_paths

    compare_options = CompareOptions(
        b_files=export.files, b_survey_fields=export.survey_fields, b_dags=export.dags,
        show_values=options.show_values, max_listed=options.max_differences, **dict(options.compare_options))
    try:
        # Record IDs follow the drill's masker (built from the same policy), shared with its validation findings.
        comparison = compare_paths(archive, exported, options=compare_options, ids=ids)
    except DrillError as exc:
        return _Compared(("failed", str(exc)), ("failed", str(exc)), (), {}, (), Fidelity())
    return _from_comparison(comparison, options)


def _from_comparison(comparison: Any, options: DrillOptions) -> _Compared:
    """The comparator's `Comparison` as stage verdicts, listed differences and fidelity."""
    records = comparison.records
    structure = [_difference("structure", d, options.show_values) for d in comparison.structure
                 if d.severity != "masked"]
    record_diffs = [_difference("records", d, options.show_values) for d in records.differences
                    if d.severity != "masked"]
    omitted: dict[str, int] = {}
    listed: list[Difference] = []
    for stage, diffs, total in (("structure", structure, len(structure)),
                                ("records", record_diffs, max(records.differences_total, len(record_diffs)))):
        # Failures first, so the cap never hides what failed the drill behind warnings.
        diffs.sort(key=lambda d: {"failure": 0, "warning": 1}.get(d.severity, 2))
        listed.extend(diffs[: options.max_differences])
        if total > min(len(diffs), options.max_differences):
            omitted[stage] = total - min(len(diffs), options.max_differences)

    structure_failures = [d for d in structure if d.severity == "failure"]
    structure_verdict = _verdict(structure_failures, [d for d in structure if d.severity == "warning"])
    record_failures = records.failures + records.missing_count + records.extra_count
    if record_failures:
        parts = [f"{n} {what}" for n, what in ((records.missing_count, "record(s) missing"),
                                                (records.extra_count, "unexpected record(s)"),
                                                (records.values_differing, "value(s) differing"))
                 if n]
        first = next((d for d in record_diffs if d.severity == "failure"), None)
        detail = f"; first: {first.kind} at {first.location}" if first else ""
        record_verdict: tuple[Status, str] = ("failed", (", ".join(parts) or f"{records.failures} difference(s)")
                                              + f" of {records.values_compared:,} values in "
                                              f"{records.a_count:,} records" + detail)
    else:
        record_verdict = ("passed", f"{records.values_compared:,} values in {records.a_count:,} records identical"
                          + (f" apart from {records.warnings} documented REDCap difference(s)"
                             if records.warnings else ""))

    rules = comparison.to_dict().get("known_rules", {}) if hasattr(comparison, "to_dict") else {}
    known = tuple(
        KnownDifference(name, _describe_rule(rules.get(name, {})), int(count))
        for name, count in sorted(comparison.known_fired.items())
    )
    metadata_items = int(getattr(comparison, "metadata_items", 0) or 0)
    fidelity = Fidelity(
        metadata_compared=metadata_items,
        metadata_identical=max(0, metadata_items - len(structure_failures)),
        records_compared=records.values_compared,
        records_identical=max(0, records.values_compared - records.values_differing),
    )
    timings = getattr(comparison, "timings", {}) or {}
    design = float(timings.get("read_metadata", 0.0)) + float(timings.get("structure", 0.0))
    total = design + float(timings.get("records", 0.0))
    share = design / total if total > 0 else 0.5
    return _Compared(structure_verdict, record_verdict, tuple(listed), omitted, known, fidelity, share)


def _difference(stage: str, diff: Any, show_values: bool) -> Difference:
    a, b = diff.a, diff.b
    if stage == "records" and not show_values:
        # Belt and braces: the comparator masks record values already; they are participant data.
        a = None if a is None else MASK
        b = None if b is None else MASK
    return Difference(stage=stage, kind=diff.kind, severity=diff.severity, location=diff.location,
                      expected=a, actual=b, known=diff.rule or "", record=diff.record)


def _verdict(failures: list[Difference], warnings: list[Difference]) -> tuple[Status, str]:
    if failures:
        first = failures[0]
        return "failed", f"{len(failures)} difference(s) REDCap does not explain; first: {first.kind} at {first.location}"
    if warnings:
        return "passed", f"identical apart from {len(warnings)} documented REDCap difference(s)"
    return "passed", "identical"


def _describe_rule(rule: dict[str, Any]) -> str:
    summary, reason, section = rule.get("summary", ""), rule.get("reason", ""), rule.get("section", "")
    text = f"{summary}: {reason}" if summary and reason else summary or reason
    return f"{text} ({section})" if section else text


# --------------------------------------------------------------------------------------------
# Evidence helpers
# --------------------------------------------------------------------------------------------
def _evidence(entry: Archive | BrokenArchive, now: datetime) -> ArchiveEvidence:
    common = {
        "path": str(entry.path), "size": entry.size, "sha256": entry.sha256, "format": entry.format,
        "created": entry.created.isoformat(timespec="seconds") if entry.created else None,
        "age_seconds": round((now - entry.taken).total_seconds(), 1), "study_oid": entry.study_oid,
    }
    if isinstance(entry, Archive):
        return ArchiveEvidence(**common, sidecar=entry.sidecar, redcap_version=entry.redcap_version,
                               xml_size=entry.xml_size, records=entry.subject_count,
                               metadata_only=entry.metadata_only)
    return ArchiveEvidence(**common)


def _entry_title(entry: Archive | BrokenArchive) -> str:
    name = getattr(entry, "study_name", None) or getattr(entry, "description", None)
    return name or entry.project_key


def _safe_info(target: Target) -> dict[str, str]:
    try:
        return target.info().to_dict()
    except DrillError:
        return {"kind": target.kind, "url": "", "version": ""}


def _host() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return "unknown"


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown"


def human(delta: timedelta) -> str:
    """``timedelta`` as people say it: ``3 d 4 h``, ``36 h``, ``12 min``, ``45 s``."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    # Up to three days reads better in hours ("36 h"), which is also how RPOs are usually written.
    days, rest = divmod(seconds, 86400) if seconds >= 3 * 86400 else (0, seconds)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"
    if hours:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{secs} s"


def drill_many(archives: Iterable[str | os.PathLike[str] | Archive | BrokenArchive], target: Target,
               options: DrillOptions = DrillOptions(), *,
               on_stage: Callable[[str, StageResult], None] | None = None) -> list[DrillResult]:
    """Drill each archive on one target, in order."""
    out = []
    for archive in archives:
        key = archive.project_key if isinstance(archive, (Archive, BrokenArchive)) else str(archive)
        callback = (lambda result, key=key: on_stage(key, result)) if on_stage else None
        out.append(drill(archive, target, options, on_stage=callback))
    return out


__all__ = ["BLOCKING", "STAGES", "STAGE_TITLES", "ArchiveEvidence", "Difference", "DrillOptions", "DrillResult",
           "Fidelity", "Finding", "KnownDifference", "StageResult", "drill", "drill_many", "human"]
