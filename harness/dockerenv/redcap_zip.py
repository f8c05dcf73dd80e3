"""Inspect the user's REDCap install zip before anything is unpacked from it.

REDCap is licensed software that each site downloads itself from the REDCap
Community site; redcap-drill never ships it. The install zip holds one top-level
``redcap/`` folder (the web root) with the code in ``redcap/redcap_vX.Y.Z/``.
This module only reads the zip's directory and hashes its bytes: it finds the
version, checks the parts a fresh install needs are present, and refuses
members that could land outside the build folder (zip-slip) or links.
"""

from __future__ import annotations

import hashlib
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.dockerenv.errors import NotARedcapZip

ROOT = "redcap/"
_VERSION_DIR = re.compile(r"^redcap_v(\d+\.\d+\.\d+)$")
#: Far above any REDCap release (a few hundred MB unpacked), far below a zip bomb that fills the disk.
MAX_UNPACKED = 4 * 1024**3
_CHUNK = 1 << 20
_GET_IT = "download the full install zip (redcapX.Y.Z.zip, not an upgrade zip) from the REDCap Community site"


@dataclass(frozen=True)
class RedcapZip:
    """Facts about a REDCap install zip; members under `root` become the web root."""

    path: Path
    version: str
    root: str
    members: int
    unpacked_bytes: int
    sha256: str

    @property
    def version_dir(self) -> str:
        return f"redcap_v{self.version}"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def inspect_zip(path: str | Path, *, max_unpacked: int = MAX_UNPACKED) -> RedcapZip:
    """Read ``path``'s directory and return its `RedcapZip`; raises `NotARedcapZip` saying why not.

    With several ``redcap_v*`` folders (sites sometimes re-zip a web root) the
    newest is used, as REDCap itself serves the version its database names.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except FileNotFoundError:
        raise NotARedcapZip(f"{path} does not exist; {_GET_IT}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise NotARedcapZip(f"{path} is not a readable zip file ({exc}); {_GET_IT}") from None

    names: set[str] = set()
    versions: set[str] = set()
    unpacked = 0
    for info in infos:
        name = _safe_name(path, info)
        names.add(name)
        unpacked += info.file_size
        parts = PurePosixPath(name).parts
        if len(parts) >= 2 and parts[0] + "/" == ROOT:
            match = _VERSION_DIR.match(parts[1])
            if match and (len(parts) > 2 or info.is_dir()):
                versions.add(match.group(1))
    if unpacked > max_unpacked:
        raise NotARedcapZip(f"{path} would unpack to {unpacked} bytes, more than the {max_unpacked}-byte limit; "
                            f"it is not a REDCap release (or is a zip bomb); {_GET_IT}")
    if not versions:
        raise NotARedcapZip(f"{path} has no {ROOT}redcap_vX.Y.Z/ folder, so it is not a REDCap install zip; {_GET_IT}")
    version = max(versions, key=version_key)
    for needed, why in ((f"{ROOT}redcap_v{version}/Resources/sql/install.sql", "the database schema"),
                        (f"{ROOT}redcap_v{version}/Resources/sql/install_data.sql", "the database's initial rows"),
                        (f"{ROOT}api/index.php", "the API endpoint")):
        if needed not in names:
            raise NotARedcapZip(f"{path} lacks {needed} ({why}); it looks like an upgrade zip or a partial copy; "
                                f"{_GET_IT}")
    return RedcapZip(path=path, version=version, root=ROOT, members=len(infos), unpacked_bytes=unpacked,
                     sha256=_sha256(path))


def _safe_name(path: Path, info: zipfile.ZipInfo) -> str:
    """The member's name, or `NotARedcapZip` when unpacking it could escape the build folder."""
    raw = info.filename
    unsafe = (
        raw.startswith("/")
        or "\\" in raw
        or "\x00" in raw
        or re.match(r"^[A-Za-z]:", raw) is not None
        or ".." in PurePosixPath(raw).parts
    )
    if unsafe:
        raise NotARedcapZip(f"{path} has a member named {raw!r} that would unpack outside its folder (zip-slip); "
                            f"refusing it; {_GET_IT}")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise NotARedcapZip(f"{path} has a symbolic link {raw!r}; REDCap's zip has none and a link can point "
                            f"outside the build folder; {_GET_IT}")
    return raw.rstrip("/") if info.is_dir() else raw


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
