"""What a comparison produces: plain frozen data, JSON-ready through ``to_dict()``.

Every difference has one kind from a fixed set (like deepdiff's report keys),
a severity, and a location a REDCap admin can read, such as
``form demographics › field dob › validation`` or
``record 12 › event baseline_arm_1 › visit #2 › field weight``. Record values
arrive here already masked unless the caller asked to see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Location separator (a single right-pointing angle quotation mark).
SEP = " › "


def record_location(rid: str, key: tuple | None = None, item: str | None = None, *,
                    longitudinal: bool = False) -> str:
    """``record R › event E[ #n] › form #n › field F``: how every record finding names its place.

    ``key`` is a row key (event, repeat instrument, instance). The event is named
    only where it means something to the admin (longitudinal projects, or a
    classic project's row that somehow sits in another event).
    """
    from harness.odm.model import CLASSIC_EVENT

    parts = [f"record {rid}"]
    if key is not None:
        event, instrument, instance = key
        if longitudinal or event != CLASSIC_EVENT:
            repeating_event = not instrument and instance is not None
            parts.append(f"event {event} #{instance}" if repeating_event else f"event {event}")
        if instrument:
            parts.append(f"{instrument} #{instance}")
    if item is not None:
        parts.append(f"field {item}")
    return SEP.join(parts)

KINDS = frozenset({
    # records
    "record_missing", "record_extra", "row_missing", "row_extra",
    "value_changed", "value_missing", "value_extra", "file_changed", "dag_changed",
    # structure
    "metadata_changed", "field_missing", "field_extra", "form_missing", "form_extra",
    "event_missing", "event_extra", "mapping_changed", "codelist_changed", "setting_changed",
    "group_changed", "repeating_changed",
    # a whole class of values deliberately not compared (always carries a rule)
    "not_compared",
})
SEVERITIES = ("failure", "warning", "masked")
#: How record IDs appear in results and reports (``--record-ids``); "auto" decides per project.
RECORD_ID_POLICIES = ("auto", "mask", "show")


@dataclass(frozen=True)
class Difference:
    """One place where B differs from A."""

    kind: str
    severity: str  # "failure" | "warning" | "masked"
    location: str
    a: str | None = None
    b: str | None = None
    #: Name of the `harness.compare.known` rule that excuses it, if any.
    rule: str | None = None
    reason: str = ""
    #: The record it concerns (``location`` then starts ``record <record>``); None for design findings.
    record: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown difference kind {self.kind!r}; valid kinds: {sorted(KINDS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; valid: {SEVERITIES}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "location": self.location,
                "a": self.a, "b": self.b, "rule": self.rule, "reason": self.reason, "record": self.record}

    def __str__(self) -> str:
        change = ""
        if self.a is not None or self.b is not None:
            change = f": {_show(self.a)} → {_show(self.b)}"
        why = f" [{self.rule}] {self.reason}" if self.rule else (f" ({self.reason})" if self.reason else "")
        return f"{self.severity.upper():7} {self.kind:16} {self.location}{change}{why}"


def _show(value: str | None) -> str:
    if value is None:
        return "(absent)"
    if value == "":
        return '""'
    return value if len(value) <= 120 else value[:117] + "…"


@dataclass(frozen=True)
class CompareOptions:
    """How B was produced, and what to show.

    What B was not exported with is "not compared" (a warning naming the
    rule), never a failure. ``None`` means "read it from B's metadata": the
    DAG and survey pseudo-fields only exist when they were exported.
    """

    #: B was exported with file contents (``exportFiles=true``).
    b_files: bool = True
    #: B was exported with survey fields (``exportSurveyFields=true``).
    b_survey_fields: bool | None = None
    #: B was exported with Data Access Groups (``exportDataAccessGroups=true``).
    b_dags: bool | None = None
    #: Show record values in Differences; masked by default (they are PHI).
    show_values: bool = False
    #: Record IDs in the result: "auto" (a pseudonym when A's record ID field is marked identifier),
    #: "mask" (always a pseudonym) or "show" (as they are); see `harness.compare.mask.RecordIdMasker`.
    record_ids: str = "auto"
    #: How many record ids and differences each list keeps (counts are always complete).
    max_listed: int = 200
    #: Pending record hashes kept in memory before spilling to a temporary SQLite file.
    spill_after: int = 200_000

    def __post_init__(self) -> None:
        if self.max_listed < 0 or self.spill_after < 1:
            raise ValueError("CompareOptions(max_listed >= 0, spill_after >= 1)")
        if self.record_ids not in RECORD_ID_POLICIES:
            raise ValueError(f"CompareOptions(record_ids={self.record_ids!r}): use one of {RECORD_ID_POLICIES}")

    @classmethod
    def from_export(cls, export: Any, **kw: Any) -> CompareOptions:
        """From the ``ExportOptions`` B was exported with (``harness.odm.writer`` or a target)."""
        return cls(b_files=bool(getattr(export, "export_files")),
                   b_survey_fields=bool(getattr(export, "export_survey_fields")),
                   b_dags=bool(getattr(export, "export_dags")), **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"b_files": self.b_files, "b_survey_fields": self.b_survey_fields, "b_dags": self.b_dags,
                "show_values": self.show_values, "record_ids": self.record_ids, "max_listed": self.max_listed}


@dataclass(frozen=True)
class RecordsComparison:
    """ClinicalData compared as REDCap's flat tuple set, record by record."""

    a_count: int = 0
    b_count: int = 0
    #: Records in A but not in B (natural order, at most ``max_listed``); the count is complete.
    missing: tuple[str, ...] = ()
    missing_count: int = 0
    extra: tuple[str, ...] = ()
    extra_count: int = 0
    #: Records present in both with at least one failing difference.
    changed: tuple[str, ...] = ()
    changed_count: int = 0
    #: Values compared (A's values plus B's extra ones) and how many of them differ (failures).
    values_compared: int = 0
    values_differing: int = 0
    #: Failing value differences per form and per field (variable).
    per_form: dict[str, int] = field(default_factory=dict)
    per_field: dict[str, int] = field(default_factory=dict)
    differences: tuple[Difference, ...] = ()
    differences_total: int = 0
    failures: int = 0
    warnings: int = 0
    #: Records compared through their hashes and re-read because they differed.
    reread: int = 0

    @property
    def truncated(self) -> bool:
        return self.differences_total > len(self.differences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a_count": self.a_count, "b_count": self.b_count,
            "missing": list(self.missing), "missing_count": self.missing_count,
            "extra": list(self.extra), "extra_count": self.extra_count,
            "changed": list(self.changed), "changed_count": self.changed_count,
            "values_compared": self.values_compared, "values_differing": self.values_differing,
            "per_form": dict(self.per_form), "per_field": dict(self.per_field),
            "differences": [d.to_dict() for d in self.differences],
            "differences_total": self.differences_total, "truncated": self.truncated,
            "failures": self.failures, "warnings": self.warnings, "reread": self.reread,
        }


@dataclass(frozen=True)
class Comparison:
    """The whole result: structure differences, record comparison, rules that fired."""

    structure: tuple[Difference, ...]
    records: RecordsComparison
    #: Known-difference rule name -> how often it fired (masked ones included).
    known_fired: dict[str, int]
    passed: bool
    warnings: int
    failures: int = 0
    a_name: str = "A"
    b_name: str = "B"
    #: Metadata items compared (leaves of the canonical model of A).
    metadata_items: int = 0
    options: CompareOptions = CompareOptions()
    #: Seconds per stage: "read_metadata", "structure", "records".
    timings: dict[str, float] = field(default_factory=dict)
    #: How record IDs appear here and why ("masked (…)" or "shown (…)", `RecordIdMasker.reason`).
    record_ids: str = ""

    @property
    def findings(self) -> tuple[Difference, ...]:
        """Failures and warnings (masked differences are not findings), structure first."""
        return tuple(d for d in self.structure + self.records.differences if d.severity != "masked")

    def to_dict(self) -> dict[str, Any]:
        from harness.compare.known import RULES

        return {
            "a": self.a_name, "b": self.b_name, "passed": self.passed,
            "failures": self.failures, "warnings": self.warnings,
            "metadata_items": self.metadata_items,
            "structure": [d.to_dict() for d in self.structure],
            "records": self.records.to_dict(),
            "known_fired": dict(self.known_fired),
            "known_rules": {name: RULES[name].to_dict() for name in self.known_fired},
            "options": self.options.to_dict(),
            "timings": dict(self.timings),
            "record_ids": self.record_ids,
        }
