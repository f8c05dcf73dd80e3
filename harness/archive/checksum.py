"""SHA-256 of a backup as stored, and the ``NAME.sha256`` sidecar that vouches for it.

The hash covers the bytes on disk (the .gz or .zip itself), because that is what
a backup job checksums when it writes the file and what a copy can damage.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from harness.archive.opener import CHUNK
from harness.errors import ArchiveError

# sha256sum writes "<hex>  <name>" (text mode) or "<hex> *<name>" (binary mode);
# a bare "<hex>" is common from hand-rolled scripts; --tag writes the BSD form.
_GNU = re.compile(r"^\\?(?P<hex>[0-9a-fA-F]{64})(?:\s+\*?(?P<name>.+))?$")
_BSD = re.compile(r"^SHA256 \((?P<name>.+)\) = (?P<hex>[0-9a-fA-F]{64})$")


def sha256_file(path: Path, *, chunk_size: int = CHUNK) -> str:
    """Hex SHA-256 of the file, read in fixed-size chunks so memory stays constant."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(chunk_size):
                digest.update(chunk)
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}; check the file and its permissions") from exc
    return digest.hexdigest()


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def expected_sha256(path: Path) -> str | None:
    """The hash the sidecar of ``path`` records, or None when there is no sidecar."""
    sidecar = sidecar_path(path)
    try:
        text = sidecar.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArchiveError(f"cannot read checksum file {sidecar}: {exc.strerror or exc}") from exc
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _GNU.match(line) or _BSD.match(line)
        if not match:
            raise ArchiveError(
                f"checksum file {sidecar} is not in sha256sum format (expected '<64 hex digits>  {path.name}'); "
                "regenerate it with: sha256sum " + path.name
            )
        entries.append((match["hex"].lower(), match["name"]))
    if not entries:
        raise ArchiveError(f"checksum file {sidecar} is empty; regenerate it with: sha256sum {path.name}")
    if len(entries) == 1:
        # A single entry vouches for this file even if it was renamed since.
        return entries[0][0]
    for hex_, name in entries:
        if name is not None and Path(name.replace("\\", "/")).name == path.name:
            return hex_
    raise ArchiveError(
        f"checksum file {sidecar} lists {len(entries)} files but not {path.name}; "
        f"regenerate it with: sha256sum {path.name}"
    )


def verify_sidecar(path: Path, actual: str) -> Literal["verified", "absent"]:
    """Compare ``actual`` with the sidecar of ``path``; raises ArchiveError on a mismatch."""
    expected = expected_sha256(path)
    if expected is None:
        return "absent"
    if expected != actual.lower():
        raise ArchiveError(
            f"sha256 mismatch for {path}: the file hashes to {actual}, {sidecar_path(path).name} says {expected}; "
            "the archive is corrupt or the sidecar is stale — restore the file from another copy, or "
            "regenerate the sidecar if the file was legitimately replaced"
        )
    return "verified"
