"""Record values and record IDs as they may appear in a finding: masked unless asked for.

Record values are participant data (PHI). A masked value still tells a
reviewer what they need: its length, and a fingerprint that is equal for
equal values within one comparison. The fingerprint is salted per comparison,
so a short value such as a date of birth cannot be recovered by hashing
candidates, and fingerprints from different reports cannot be correlated.

Record IDs can be PHI too (many sites use an MRN or a name-derived code).
`RecordIdMasker` replaces them by pseudonyms such as ``R-3f9a1c``, the same
for one record wherever it appears in one report, so a reviewer can still
follow a record from a validation finding to its differences. Findings carry
their record as a field, so masking is a substitution, never a text search.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable
from typing import Any

from harness.compare.model import RECORD_ID_POLICIES, Comparison, Difference, RecordsComparison
from harness.odm.model import FileValue, ProjectMetadata


class Masker:
    """Turns record values into display strings for one comparison."""

    def __init__(self, show_values: bool = False, salt: bytes | None = None):
        self.show_values = show_values
        self._salt = os.urandom(16) if salt is None else salt

    def _fingerprint(self, data: bytes) -> str:
        return hashlib.sha256(self._salt + data).hexdigest()[:8]

    def value(self, value: str | FileValue | None) -> str | None:
        if value is None:
            return None
        if isinstance(value, FileValue):
            return self.file(value)
        if self.show_values:
            return value
        if value == "":
            return "«empty»"
        return f"«{len(value)} chars, sha256:{self._fingerprint(value.encode())}…»"

    def file(self, value: FileValue) -> str:
        size = len(value.content)
        if self.show_values:
            digest = hashlib.sha256(value.content).hexdigest()[:12]
            return f"{value.doc_name} ({value.mime_type or 'no MIME type'}, {size} bytes, sha256:{digest}…)"
        # File names are often patient names or MRNs: they are masked like values.
        return f"«file, {size} bytes, sha256:{self._fingerprint(value.content)}…»"


class RecordIdMasker:
    """Record IDs for one report: pseudonyms (``masked``) or as they are.

    A pseudonym is ``R-`` and six hex digits of a salted sha256 of the ID. The
    salt is random per masker (per drill), so pseudonyms cannot be correlated
    across reports, nor a short MRN recovered by hashing candidates. Should two
    IDs share six digits within one report, the later one gets more.
    """

    PREFIX = "R-"

    def __init__(self, masked: bool, reason: str = "", salt: bytes | None = None):
        self.masked = masked
        #: Why: ``masked (the record ID field 'mrn' is marked identifier)``, for the report.
        self.reason = reason or ("masked" if masked else "shown")
        self._salt = os.urandom(16) if salt is None else salt
        self._names: dict[str, str] = {}
        self._used: set[str] = set()

    @classmethod
    def for_policy(cls, policy: str, meta: ProjectMetadata | None, *, salt: bytes | None = None) -> RecordIdMasker:
        """The masker ``--record-ids policy`` asks for, judged by the archive's metadata for "auto"."""
        if policy not in RECORD_ID_POLICIES:
            raise ValueError(f"record ID policy {policy!r}: use one of {', '.join(RECORD_ID_POLICIES)}")
        if policy == "show":
            return cls(False, "shown (--record-ids show)", salt)
        if policy == "mask":
            return cls(True, "masked (--record-ids mask)", salt)
        name = meta.record_id_field if meta is not None else ""
        field = meta.field_map.get(name) if meta is not None and name else None
        if field is None:
            # Nothing says the IDs are harmless: err on the side of the participant.
            return cls(True, "masked (the archive names no record ID field to judge by)", salt)
        if field.identifier:
            return cls(True, f"masked (the record ID field {name!r} is marked identifier)", salt)
        return cls(False, f"shown (the record ID field {name!r} is not marked identifier; "
                          "--record-ids mask hides them)", salt)

    # -- one ID ------------------------------------------------------------------
    def id(self, rid: str | None) -> str | None:
        """The ID as the report shows it."""
        if rid is None or not self.masked:
            return rid
        name = self._names.get(rid)
        if name is None:
            digest = hashlib.sha256(self._salt + rid.encode("utf-8", "surrogatepass")).hexdigest()
            width = 6
            while (name := self.PREFIX + digest[:width]) in self._used:
                width += 2
            self._names[rid] = name
            self._used.add(name)
        return name

    def ids(self, rids: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.id(r) or "" for r in rids)

    def location(self, location: str, rid: str | None) -> str:
        """``record R › …`` with R replaced; the comparator's locations all start so (`record_location`)."""
        if rid is None or not self.masked:
            return location
        head = f"record {rid}"
        if location == head or location.startswith(head + " "):
            return f"record {self.id(rid)}" + location[len(head):]
        return location

    # -- the comparator's results ------------------------------------------------------
    def difference(self, d: Difference) -> Difference:
        if d.record is None or not self.masked:
            return d
        return dataclasses.replace(d, location=self.location(d.location, d.record), record=self.id(d.record))

    def records(self, r: RecordsComparison) -> RecordsComparison:
        if not self.masked:
            return r
        return dataclasses.replace(r, missing=self.ids(r.missing), extra=self.ids(r.extra),
                                   changed=self.ids(r.changed),
                                   differences=tuple(map(self.difference, r.differences)))

    def comparison(self, c: Comparison) -> Comparison:
        if not self.masked:
            return dataclasses.replace(c, record_ids=self.reason)
        return dataclasses.replace(c, structure=tuple(map(self.difference, c.structure)),
                                   records=self.records(c.records), record_ids=self.reason)

    # -- validation findings (`harness.schema.findings.Finding`) -----------------------------
    def finding(self, f: Any) -> Any:
        """A validation finding with its record, the record's step in its path and quotes of it replaced."""
        rid = getattr(f, "record", None)
        if rid is None or not self.masked:
            return f
        from harness.schema.paths import subject_step

        name = self.id(rid)
        path = f.path.replace(subject_step(rid), subject_step(name)) if f.path else f.path
        message = f.message
        if rid:
            # Our messages name the record only through the field; libxml2's may quote an attribute value.
            for quote in ("'", '"'):
                message = message.replace(f"{quote}{rid}{quote}", f"{quote}{name}{quote}")
        return dataclasses.replace(f, record=name, path=path, message=message)
