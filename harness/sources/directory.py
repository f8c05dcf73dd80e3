"""Backups kept as files in a folder tree (a NAS share, a mounted bucket, a cron job's output)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from harness.archive import Entry, Limits
from harness.errors import SourceError
from harness.sources.base import Source
from harness.sources.inspect import inspect_archive, local_now

# ".xml.gz" is listed for the messages; ".gz" already matches it.
SUFFIXES = (".xml.gz", ".xml", ".gz", ".zip")


class DirectorySource(Source):
    """Every ``.xml``, ``.xml.gz``, ``.gz`` and ``.zip`` under ``root``, recursively.

    Hidden files and folders (a leading dot) and ``.sha256`` sidecars are skipped.
    ``now`` (default: the current time) and ``max_age`` set each entry's ``age``
    and ``stale``; pass ``now`` to make a run reproducible.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_age: timedelta | None = None,
        now: datetime | None = None,
        limits: Limits = Limits(),
    ) -> None:
        self.root = Path(root)
        self.max_age = max_age
        self.now = local_now(now)
        self.limits = limits

    def __repr__(self) -> str:
        return f"DirectorySource({str(self.root)!r}, max_age={self.max_age!r})"

    def archives(self) -> Iterator[Entry]:
        """Raises SourceError if ``root`` is missing or unreadable, or holds no backups at all.

        An empty backup folder is a failed backup job, not a pass with nothing to check.
        """
        found = False
        for path in self._candidates():
            found = True
            yield inspect_archive(path, now=self.now, max_age=self.max_age, limits=self.limits)
        if not found:
            raise SourceError(
                f"no REDCap backups ({', '.join(SUFFIXES)}) found under {self.root}; check the path, "
                "or check that the backup job is writing there"
            )

    def _candidates(self) -> list[Path]:
        if not self.root.exists():
            raise SourceError(f"backup folder {self.root} does not exist; check the path")
        if self.root.is_file():
            return [self.root] if _is_candidate(self.root.name) else []

        def fail(exc: OSError) -> None:
            raise SourceError(f"cannot list {exc.filename or self.root}: {exc.strerror or exc}; check its permissions")

        paths = []
        for folder, dirs, files in os.walk(self.root, onerror=fail):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            paths.extend(Path(folder, name) for name in files if _is_candidate(name))
        return sorted(paths)


def _is_candidate(name: str) -> bool:
    lower = name.lower()
    return not name.startswith(".") and lower.endswith(SUFFIXES)
