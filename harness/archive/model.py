"""What the sources hand to later stages: plain, frozen facts about one backup file.

An `Archive` is a file that passed every check in `harness.archive` (it opens
safely, its checksum matches any sidecar, it ends with ``</ODM>``). A
`BrokenArchive` is a file that did not; it carries the error instead, so a
listing never drops a bad backup silently. Keeping them as two types means a
stage that restores an archive cannot be handed a broken one by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

Format = Literal["xml", "gz", "zip"]
Sidecar = Literal["verified", "absent"]


@dataclass(frozen=True)
class Archive:
    """One readable REDCap project XML backup.

    Times are naive and local, like REDCap's own ``CreationDateTime`` (server
    local time, no offset), so ``created``, ``mtime`` and ``age`` compare directly.
    """

    path: Path
    format: Format
    size: int  # bytes on disk
    mtime: datetime
    sha256: str  # of the bytes on disk, not of the XML inside
    sidecar: Sidecar
    project_key: str  # Study OID when the header has one, else derived from the file name
    study_oid: str | None
    study_name: str | None
    description: str | None
    created: datetime | None  # ODM/@CreationDateTime
    redcap_version: str | None  # ODM/@SourceSystemVersion
    xml_size: int  # decompressed bytes
    subject_count: int  # <SubjectData> elements, i.e. records
    metadata_only: bool
    age: timedelta
    stale: bool

    ok = True

    @property
    def taken(self) -> datetime:
        """When the backup was taken: the export time when known, else the file's mtime."""
        return self.created or self.mtime


@dataclass(frozen=True)
class BrokenArchive:
    """A backup file that failed a check; ``error`` says what failed and what to do.

    The facts that could be gathered before the failure are kept (the header is
    often readable even when the end of the file is missing), so a report can
    still say which project lost its backup.
    """

    path: Path
    size: int
    mtime: datetime
    error: str
    project_key: str
    format: Format | None = None
    sha256: str | None = None
    study_oid: str | None = None
    created: datetime | None = None
    age: timedelta = timedelta(0)
    stale: bool = False

    ok = False

    @property
    def taken(self) -> datetime:
        return self.created or self.mtime


Entry = Archive | BrokenArchive
