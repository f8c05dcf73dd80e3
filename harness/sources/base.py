"""The one interface every backup store implements.

Extension point: a store only has to list its backups as `Archive` or
`BrokenArchive` entries (``archives()``); choosing the newest per project is
shared (`newest_per_project`). The two stores planned next fit this shape:

* a remote store (any fsspec URL such as ``s3://bucket/redcap/``) lists with
  ``fs.find``, copies each candidate to a temporary file (or hands the open
  fsspec file to the opener, which only needs a seekable binary file), and
  builds entries with `harness.sources.inspect.inspect_archive`;
* a live export source calls REDCap's ``exportProjectXml`` per token, streams
  the response to a temporary file, and inspects that file the same way.

Neither is implemented yet; keep this class small so they stay easy to add.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from harness.archive.model import Archive, BrokenArchive, Entry


class Source(ABC):
    """A place backups are kept. Methods raise SourceError when the store cannot be listed."""

    @abstractmethod
    def archives(self) -> Iterator[Entry]:
        """Every backup in the store, broken ones included, in a stable order."""

    def latest(self) -> list[Entry]:
        """The newest backup of each project (which may be a broken one), sorted by project key."""
        return newest_per_project(self.archives())


def newest_per_project(entries: Iterable[Entry]) -> list[Entry]:
    """Keep the newest entry per ``project_key``: by export time when known, else mtime.

    A broken entry competes like any other. If the newest backup of a project is
    broken, that is the finding, and an older good one must not hide it; a broken
    file whose header was unreadable keys on its file name and so stays visible.
    """
    newest: dict[str, Entry] = {}
    for entry in entries:
        current = newest.get(entry.project_key)
        if current is None or _order(entry) > _order(current):
            newest[entry.project_key] = entry
    return [newest[key] for key in sorted(newest)]


def _order(entry: Archive | BrokenArchive) -> tuple:
    # The path breaks exact ties so the choice never depends on listing order.
    return (entry.taken, entry.mtime, str(entry.path))
