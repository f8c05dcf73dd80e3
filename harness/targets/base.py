"""The one interface every restore target implements, and the facts it hands back.

A target is a REDCap we may create throw-away projects in. It is a context
manager: whatever happens inside the ``with`` block, ``__exit__`` removes the
projects it created (or lists the ones it could not remove), so a failed drill
never leaves restored PHI behind silently.

    with targets.get("sandbox") as target:
        restored = target.restore(path, title=..., purpose="0", purpose_other="", notes="")
        exported = target.export(restored, options=ExportOptions(files=True))
        target.cleanup(restored)
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Literal

from harness.targets.secret import Secret

CleanupStatus = Literal["removed", "kept", "manual"]


@dataclass(frozen=True)
class ExportOptions:
    """The ``content=project_xml`` flags; the drill derives them from what the archive holds."""

    metadata_only: bool = False
    files: bool = False
    survey_fields: bool = False
    dags: bool = False

    def params(self) -> dict[str, str]:
        return {
            "returnMetadataOnly": _flag(self.metadata_only),
            "exportFiles": _flag(self.files),
            "exportSurveyFields": _flag(self.survey_fields),
            "exportDataAccessGroups": _flag(self.dags),
        }

    def to_dict(self) -> dict[str, bool]:
        return {"metadata_only": self.metadata_only, "files": self.files,
                "survey_fields": self.survey_fields, "dags": self.dags}


def _flag(value: bool) -> str:
    return "true" if value else "false"


@dataclass(frozen=True)
class Restored:
    """A project a target created from an archive.

    The token is a `Secret` and is left out of ``repr`` and ``to_dict``: a
    restored project holds the archive's records, and its token reads them all.
    """

    target_kind: str
    project_id: int | None
    title: str
    created: datetime
    project_token: Secret = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target_kind, "project_id": self.project_id, "title": self.title,
                "created": self.created.isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Cleanup:
    """What happened to a restored project at the end of its drill."""

    project_id: int | None
    title: str
    status: CleanupStatus
    #: Why it is still there and how to remove it; empty when removed.
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"project_id": self.project_id, "title": self.title, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class TargetInfo:
    """What a report may say about a target: never a token, never credentials in a URL."""

    kind: str
    url: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "url": self.url, "version": self.version}


class Target(ABC):
    """A REDCap that restores archives into disposable projects.

    Subclasses implement the four operations; this class does the bookkeeping
    that makes teardown safe: every restored project is tracked until it is
    cleaned up, and ``__exit__`` cleans up whatever is left, even after an error.
    With ``keep=True`` nothing is removed (for debugging a failed restore).
    """

    kind: ClassVar[str] = "abstract"

    def __init__(self, *, keep: bool = False, workdir: str | os.PathLike[str] | None = None) -> None:
        self.keep = keep
        self.workdir = Path(workdir) if workdir is not None else None
        self._live: list[Restored] = []
        self._kept: list[Restored] = []
        self.cleanups: list[Cleanup] = []

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Target:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            for restored in list(self._live):
                if self.keep:
                    self.keep_project(restored)
                else:
                    self.cleanup(restored)
        finally:
            self.stop()

    def start(self) -> None:
        """Make the target ready (start a server, check the URL); raises TargetError."""

    def stop(self) -> None:
        """Release what ``start`` acquired; must not raise."""

    # -- operations ----------------------------------------------------------------------
    @abstractmethod
    def version(self) -> str:
        """The REDCap version the target reports (``content=version``)."""

    @abstractmethod
    def info(self) -> TargetInfo:
        """Kind, token-free URL and version, for reports."""

    @abstractmethod
    def restore(self, archive_path: str | os.PathLike[str], *, title: str, purpose: str = "0",
                purpose_other: str = "", notes: str = "") -> Restored:
        """Create a project from the archive's XML (``content=project`` + ``odm=``); raises TargetError."""

    @abstractmethod
    def export(self, restored: Restored, *, options: ExportOptions = ExportOptions()) -> Path:
        """Re-export the project XML into a new temporary file and return its path; raises TargetError."""

    @abstractmethod
    def _remove(self, restored: Restored) -> Cleanup:
        """Delete the project, or say why it cannot be deleted; should not raise."""

    def cleanup(self, restored: Restored) -> Cleanup:
        """Remove a restored project now; its outcome is also kept in ``cleanups``."""
        if restored in self._live:
            self._live.remove(restored)
        try:
            result = self._remove(restored)
        except Exception as exc:  # noqa: BLE001 - teardown must go on; the leftover is reported instead
            result = Cleanup(restored.project_id, restored.title, "manual",
                             f"cleanup failed ({type(exc).__name__}); remove {self.where(restored)} by hand")
        self.cleanups.append(result)
        return result

    def keep_project(self, restored: Restored, reason: str = "kept for inspection (--keep)") -> Cleanup:
        """Leave a project in place on purpose, and record where to find it."""
        if restored in self._live:
            self._live.remove(restored)
        self._kept.append(restored)
        result = Cleanup(restored.project_id, restored.title, "kept", f"{reason}; {self.where(restored)}")
        self.cleanups.append(result)
        return result

    def where(self, restored: Restored) -> str:
        """How a person finds a kept or leftover project on this target."""
        return f"project {restored.project_id} on {self.info().url}"

    def _track(self, restored: Restored) -> Restored:
        self._live.append(restored)
        return restored

    @property
    def leftovers(self) -> list[Cleanup]:
        """Projects still on the target after cleanup: kept on purpose or not removable."""
        return [c for c in self.cleanups if c.status != "removed"]
