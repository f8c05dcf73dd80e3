"""What validation reports: findings and the result of one file, as plain data.

Every check (the XSD, the dialect pass, the semantic rules) produces `Finding`s;
`Findings` collects them for one file in bounded memory, and `validate()` hands
back one frozen `ValidationResult`. Renderers (human text, JSON, reports) work
from ``to_dict()`` and never from the checks themselves.

Severity is a fixed set: ``error`` makes the file invalid; ``warning`` is worth
a look but REDCap itself writes or accepts it; ``note`` records a known,
harmless way REDCap departs from plain ODM 1.3.1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "note"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "note")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}

#: Code of the one summary finding that stands for findings left out by the cap.
MORE = "MORE-FINDINGS"


@dataclass(frozen=True)
class Finding:
    """One thing a check found, with enough location to find it in the file.

    ``line`` is the parser's line after REDCap's pre-pass, which folds every
    newline inside a value into ``&#10;``: it runs early by one line per such
    newline before it, which adds up over a big file (2 % on an archive with
    multi-line notes in every record), so ``path`` (keys such as SubjectKey
    and ItemOID) is the exact location. libxml2 gives no column for schema
    errors, so ``column`` is usually None.
    ``count`` > 1 means this finding stands for that many occurrences; it
    describes the first one.
    """

    severity: Severity
    code: str
    message: str
    line: int | None = None
    path: str | None = None
    hint: str = ""
    column: int | None = None
    record: str | None = None
    event: str | None = None
    instance: str | None = None
    field: str | None = None
    count: int = 1

    def __post_init__(self) -> None:
        if self.severity not in _RANK:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def where(self) -> str:
        """A one-line location for people: record/event/field if known, else line."""
        parts = []
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.event:
            parts.append(f"event {self.event}")
        if self.instance:
            parts.append(f"instance {self.instance}")
        if self.field:
            parts.append(f"field {self.field}")
        if self.line:
            parts.append(f"line {self.line}" + (f":{self.column}" if self.column else ""))
        return ", ".join(parts)


@dataclass(frozen=True)
class ArchiveFacts:
    """What the validator learned about the file on its one pass."""

    name: str
    xml_bytes: int = 0
    redcap_version: str = ""
    study_oid: str = ""
    title: str = ""
    has_metadata: bool = False
    has_clinical_data: bool = False
    longitudinal: bool = False
    records: int = 0
    events: int = 0
    forms: int = 0
    fields: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome for one file; ``valid`` is False exactly when there is an error.

    ``counts`` covers every finding, including those the cap left out of
    ``findings`` (``omitted`` says how many; the list then ends with one
    ``MORE-FINDINGS`` summary).
    """

    profile: str
    facts: ArchiveFacts
    findings: tuple[Finding, ...] = ()
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    omitted: int = 0
    seconds: float = 0.0

    @property
    def valid(self) -> bool:
        return self.counts.get("error", 0) == 0

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.facts.name,
            "profile": self.profile,
            "valid": self.valid,
            "counts": dict(self.counts),
            "omitted": self.omitted,
            "seconds": round(self.seconds, 3),
            "facts": self.facts.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }


class Findings:
    """Collects findings for one file in bounded memory.

    A 1 GB archive with a systematic problem can produce millions of findings,
    so at most ``limit`` of each severity class are kept and the rest are only
    counted. Findings added with a ``group`` key are folded into the first one
    of that key (``count`` grows), which turns "this field has 20 000 bad
    dates" into one finding instead of 20 000; folded findings are few by
    construction, are always kept, and are shown first within their severity.
    """

    def __init__(self, limit: int = 50):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        self._errors: list[Finding] = []
        self._others: list[Finding] = []
        self._groups: dict[Hashable, int] = {}  # group -> index into _folded
        self._folded: list[list] = []  # [finding, count]
        self._dropped = 0

    def add(self, finding: Finding, group: Hashable | None = None) -> None:
        if group is not None:
            key = (finding.code, group)
            index = self._groups.get(key)
            if index is not None:
                self._folded[index][1] += finding.count
                return
            self._groups[key] = len(self._folded)
            self._folded.append([finding, finding.count])
            self.counts[finding.severity] += 1
            return
        self.counts[finding.severity] += 1
        bucket = self._errors if finding.severity == "error" else self._others
        if len(bucket) < self.limit:
            bucket.append(finding)
        else:
            self._dropped += 1

    def extend(self, findings, group=None) -> None:
        for f in findings:
            self.add(f, group)

    def result(self) -> tuple[tuple[Finding, ...], int]:
        """(findings to show, how many were left out): errors first, then by line."""
        folded = [dataclasses.replace(f, count=n) if n != f.count else f for f, n in self._folded]
        # Within a severity, folded findings (each a summary of many) come before single ones.
        ranked = [(0, f) for f in folded] + [(1, f) for f in self._errors + self._others]
        ranked.sort(key=lambda pair: (_RANK[pair[1].severity], pair[0], pair[1].line or 0))
        everything = [f for _, f in ranked]
        shown = everything[: self.limit]
        omitted = len(everything) - len(shown) + self._dropped
        if omitted:
            hidden = dict(self.counts)
            for f in shown:
                hidden[f.severity] -= 1
            detail = ", ".join(f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in hidden.items() if n)
            shown.append(
                Finding(
                    "note",
                    MORE,
                    f"… and {omitted} more not shown ({detail})",
                    hint="raise --max-messages to see them, or fix the first ones and run again",
                )
            )
        return tuple(shown), omitted
