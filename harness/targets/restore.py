"""Restore and re-export steps shared by every target that speaks the REDCap API."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from harness.archive import open_xml
from harness.archive.opener import detect_format
from harness.errors import ArchiveError, TargetError
from harness.targets.api import RedcapApi
from harness.targets.base import ExportOptions, Restored
from harness.targets.multipart import spool


def restore_via_api(api: RedcapApi, archive: Path, *, kind: str, title: str, purpose: str, purpose_other: str,
                    notes: str, tmpdir: Path) -> Restored:
    """Create Project from ``archive`` (``.xml``, ``.gz`` or ``.zip``) and look up the new project's id."""
    upload = _plain_xml(archive, tmpdir)
    try:
        token = api.create_project(upload, title=title, purpose=purpose, purpose_other=purpose_other, notes=notes)
    finally:
        if upload != archive:
            upload.unlink(missing_ok=True)
    created = datetime.now()
    try:
        info = api.project_info(token)
        project_id = int(info.get("project_id")) if str(info.get("project_id", "")).isdigit() else None
    except TargetError:
        # The project exists; without its id it can still be exported and deleted by token.
        project_id = None
    return Restored(target_kind=kind, project_id=project_id, title=title, created=created, project_token=token)


def export_to_temp(api: RedcapApi, restored: Restored, options: ExportOptions, tmpdir: Path) -> Path:
    dest = temp_path(tmpdir, f"export-{restored.project_id}-", ".xml")
    try:
        api.export_project_xml(restored.project_token, dest, options=options)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def _plain_xml(archive: Path, tmpdir: Path) -> Path:
    """The archive itself when it is plain XML; else its XML spooled to a temporary file.

    The upload needs a known length, and a compressed archive's XML size is only
    known after decompressing it, so it goes to disk (not memory) first.
    """
    try:
        if detect_format(archive) == "xml":
            return archive
        dest = temp_path(tmpdir, "upload-", ".xml")
        with open_xml(archive) as stream:
            return spool(stream, dest)
    except ArchiveError as exc:
        raise TargetError(f"cannot read the archive to upload it: {exc}") from None


def temp_path(tmpdir: Path, prefix: str, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=tmpdir)
    os.close(fd)
    return Path(name)
