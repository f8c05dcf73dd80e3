"""Turn one backup file into an `Archive`, or a `BrokenArchive` that says why not.

Shared by every source that can put the backup in a local file. Checks run in
this order: checksum (cheapest evidence of damage), header (which project),
then the full scan (truncation, records present). A failure stops the later
checks, except the header, which is still read so a report can name the
project whose backup is broken.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from harness.archive import Archive, BrokenArchive, Entry, Limits, detect_format, scan, sha256_file, verify_sidecar
from harness.archive.model import Format
from harness.errors import ArchiveError
from harness.sources.header import Header, project_key, read_header


def inspect_archive(
    path: Path,
    *,
    now: datetime,
    max_age: timedelta | None = None,
    limits: Limits = Limits(),
) -> Entry:
    """Never raises ArchiveError: an unusable file comes back as a BrokenArchive.

    ``now`` is naive local time, the clock REDCap's CreationDateTime uses.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        return _broken(path, 0, datetime.fromtimestamp(0), f"cannot read {path}: {exc.strerror or exc}", now, max_age)
    size, mtime = stat.st_size, datetime.fromtimestamp(stat.st_mtime)

    error: ArchiveError | None = None
    fmt: Format | None = None
    digest: str | None = None
    sidecar = "absent"
    header: Header | None = None
    try:
        fmt = detect_format(path)
        digest = sha256_file(path)
        sidecar = verify_sidecar(path, digest)
    except ArchiveError as exc:
        error = exc
    if fmt is not None:
        try:
            header = read_header(path, limits=limits)
        except ArchiveError as exc:
            error = error or exc
    key = project_key(header, path)
    created = header.created if header else None

    if error is None:
        try:
            result = scan(path, limits=limits)
        except ArchiveError as exc:
            error = exc
    if error is not None:
        return BrokenArchive(
            path=path,
            size=size,
            mtime=mtime,
            error=str(error),
            project_key=key,
            format=fmt,
            sha256=digest,
            study_oid=header.study_oid if header else None,
            created=created,
            age=_age(now, created or mtime),
            stale=_stale(now, created or mtime, max_age),
        )
    assert header is not None and fmt is not None and digest is not None
    return Archive(
        path=path,
        format=fmt,
        size=size,
        mtime=mtime,
        sha256=digest,
        sidecar=sidecar,  # type: ignore[arg-type]
        project_key=key,
        study_oid=header.study_oid,
        study_name=header.study_name,
        description=header.description,
        created=created,
        redcap_version=header.redcap_version,
        xml_size=result.xml_size,
        subject_count=result.subject_count,
        metadata_only=result.metadata_only,
        age=_age(now, created or mtime),
        stale=_stale(now, created or mtime, max_age),
    )


def local_now(now: datetime | None = None) -> datetime:
    """``now`` as naive local time (the default is the current time)."""
    if now is None:
        return datetime.now()
    if now.tzinfo is not None:
        return now.astimezone().replace(tzinfo=None)
    return now


def _age(now: datetime, taken: datetime) -> timedelta:
    return now - taken


def _stale(now: datetime, taken: datetime, max_age: timedelta | None) -> bool:
    return max_age is not None and now - taken > max_age


def _broken(path: Path, size: int, mtime: datetime, error: str, now: datetime, max_age: timedelta | None) -> BrokenArchive:
    return BrokenArchive(
        path=path,
        size=size,
        mtime=mtime,
        error=error,
        project_key=project_key(None, path),
        age=_age(now, mtime),
        stale=_stale(now, mtime, max_age),
    )
