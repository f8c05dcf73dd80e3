"""Open a backup file as a stream of XML bytes, safely, without extracting anything.

REDCap backups arrive as plain ``.xml``, gzipped (``.xml.gz``/``.gz``) or as the
``.zip`` REDCap's own "download project XML" produces (one XML member). The
format is taken from the file's first bytes, not its name, so a renamed file is
still opened correctly.

Compressed input is guarded while it streams: the bytes actually produced are
counted and checked against `Limits` on every read. Declared sizes in zip
headers are never trusted, because a hostile zip can declare anything.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from harness.archive.model import Format
from harness.errors import ArchiveError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

CHUNK = 1 * MiB

# A tiny file that compresses well is no threat; checking the ratio before the
# output reaches this size would only refuse small, honest, repetitive exports.
_RATIO_GRACE = 1 * MiB

# How far to look for the first non-whitespace byte before calling a file "not XML".
_SNIFF_LIMIT = 64 * KiB

_XML_WHITESPACE = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_GZIP_MAGIC = b"\x1f\x8b"

# Only used to name what a non-XML file probably is; the bytes themselves are
# never echoed, because the start of a data file can be participant data.
_KNOWN_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file"),
    (b"BZh", "a bzip2 archive (not supported: use gzip or zip)"),
    (b"\xfd7zXZ", "an xz archive (not supported: use gzip or zip)"),
    (b"7z\xbc\xaf", "a 7-Zip archive (not supported: use gzip or zip)"),
    (b"{", "JSON"),
    (b"[", "JSON"),
    (b"\xff\xfe", "UTF-16 text (REDCap writes UTF-8; the file was re-saved by another program)"),
    (b"\xfe\xff", "UTF-16 text (REDCap writes UTF-8; the file was re-saved by another program)"),
)

_WHAT_TO_DO = "expected a REDCap project XML export (.xml, .xml.gz, or REDCap's .zip download)"


@dataclass(frozen=True)
class Limits:
    """Ceilings on decompression, checked against the bytes actually produced.

    REDCap project XML is verbose, repetitive text and compresses about 10-20:1
    (more where base64 attachments are rare, less where they are common), so an
    honest backup stays far below 200:1; deflate can reach about 1000:1, which
    only a crafted or degenerate file does. 8 GiB is well above the largest
    project XML REDCap can produce in one export. Both can be raised for a
    genuine outlier.
    """

    max_expanded: int = 8 * GiB
    max_ratio: float = 200.0

    def __post_init__(self) -> None:
        if self.max_expanded <= 0 or self.max_ratio <= 0:
            raise ValueError("Limits(max_expanded=, max_ratio=) must both be positive")


def detect_format(path: Path) -> Format:
    """The container format from the file's first bytes; raises ArchiveError for an empty file."""
    with _open_file(path) as fh:
        head = fh.read(4)
    if not head:
        raise ArchiveError(f"{path} is empty (0 bytes); the backup job wrote nothing — check it and take a new backup")
    if head.startswith(_GZIP_MAGIC):
        return "gz"
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    return "xml"


@contextmanager
def open_xml(path: str | os.PathLike[str], *, limits: Limits = Limits()) -> Iterator[BinaryIO]:
    """Yield a read-only binary stream of the XML inside ``path``.

    Raises ArchiveError on entry when the file is empty, is not XML, or is a zip
    that is hostile or not a REDCap download, and while reading when the data
    is truncated or corrupt or exceeds ``limits``. Nothing touches the disk.
    """
    path = Path(path)
    fmt = detect_format(path)
    with ExitStack() as stack:
        fh = stack.enter_context(_open_file(path))
        on_disk = os.fstat(fh.fileno()).st_size
        if fmt == "xml":
            inner: BinaryIO = fh
            budget = None
        elif fmt == "gz":
            inner = stack.enter_context(gzip.GzipFile(fileobj=fh, mode="rb"))
            budget = on_disk
        else:
            inner, budget = _open_zip_member(path, fh, on_disk, stack)
        stream = _GuardedStream(inner, path=path, fmt=fmt, compressed=budget, limits=limits)
        stack.callback(stream.close)
        stream.sniff()
        yield stream  # type: ignore[misc]  # a RawIOBase is a binary file object


def _open_file(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ArchiveError(f"{path} does not exist; check the path") from None
    except IsADirectoryError:
        raise ArchiveError(f"{path} is a directory, not a backup file") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror}; check its permissions") from exc


# --- zip -------------------------------------------------------------------------------------


def _open_zip_member(path: Path, fh: BinaryIO, on_disk: int, stack: ExitStack) -> tuple[BinaryIO, int]:
    try:
        zf = stack.enter_context(zipfile.ZipFile(fh))
    except zipfile.BadZipFile as exc:
        raise ArchiveError(
            f"truncated or corrupt zip archive {path} ({exc}); the download or copy was cut short — "
            "download the project XML again"
        ) from exc
    infos = zf.infolist()
    for info in infos:
        _refuse_escaping_name(path, info)
    candidates = [i for i in infos if not _is_junk(i) and i.filename.lower().endswith(".xml")]
    if not candidates:
        names = ", ".join(repr(i.filename) for i in infos[:5]) or "nothing"
        raise ArchiveError(
            f"zip archive {path} holds no XML file (it holds {names}); {_WHAT_TO_DO}"
        )
    if len(candidates) > 1:
        names = ", ".join(repr(i.filename) for i in candidates[:5])
        raise ArchiveError(
            f"zip archive {path} holds {len(candidates)} XML files ({names}); REDCap's download holds "
            "exactly one — keep one project XML per zip, or unzip and point at the file you mean"
        )
    info = candidates[0]
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"zip member {info.filename!r} in {path} is encrypted; decrypt it and store the backup "
            "unencrypted or encrypt the storage instead, so the drill can read it unattended"
        )
    try:
        member = stack.enter_context(zf.open(info))
    except NotImplementedError as exc:
        raise ArchiveError(
            f"zip member {info.filename!r} in {path} uses an unsupported compression method ({exc}); "
            "re-zip it with deflate (the default of every zip tool)"
        ) from exc
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"truncated or corrupt zip archive {path} ({exc}); download the project XML again") from exc
    # The member cannot consume more compressed bytes than its header declares,
    # so the smaller of that and the file size is a safe denominator for the ratio.
    return member, max(1, min(info.compress_size, on_disk))


_DRIVE = re.compile(r"^[A-Za-z]:")


def _refuse_escaping_name(path: Path, info: zipfile.ZipInfo) -> None:
    # We never extract, but a member named to escape the folder only exists in a
    # crafted file, and whoever unzips the backup by hand would be hurt by it.
    for name in {info.filename, info.orig_filename}:
        posix = name.replace("\\", "/")
        parts = posix.split("/")
        if posix.startswith("/") or _DRIVE.match(posix) or ".." in parts or "\x00" in name:
            raise ArchiveError(
                f"zip member escapes the folder: {name!r} in {path}; this is not a REDCap download and may "
                "be hostile — do not unzip it, re-export the project"
            )


def _strip_bom(data: bytes) -> bytes:
    return data[len(_UTF8_BOM):] if data.startswith(_UTF8_BOM) else data


def _is_junk(info: zipfile.ZipInfo) -> bool:
    """Directories and the resource forks macOS's Archive Utility adds."""
    name = info.filename.replace("\\", "/")
    base = name.rsplit("/", 1)[-1]
    return info.is_dir() or name.startswith("__MACOSX/") or base.startswith("._") or base == ".DS_Store"


# --- the guarded stream ----------------------------------------------------------------------


class _GuardedStream(io.RawIOBase):
    """Counts what the decompressor produces and turns its failures into ArchiveError."""

    def __init__(self, inner: BinaryIO, *, path: Path, fmt: Format, compressed: int | None, limits: Limits):
        super().__init__()
        self._inner = inner
        self._path = path
        self._fmt = fmt
        self._compressed = compressed  # None: not compressed, nothing to guard
        self._limits = limits
        self._produced = 0
        self._pending = b""  # bytes read by sniff() and not yet handed out

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if self._pending:
            out, self._pending = self._pending[:size], self._pending[size:]
            return out
        return self._pull(size)

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def sniff(self) -> None:
        """Refuse empty and non-XML content before anybody parses it."""
        seen = b""
        while len(seen) < _SNIFF_LIMIT:
            chunk = self._pull(4 * KiB)
            if not chunk:
                break
            seen += chunk
            if _strip_bom(seen).lstrip(_XML_WHITESPACE) and not _UTF8_BOM.startswith(seen):
                break
        self._pending = seen
        stripped = _strip_bom(seen).lstrip(_XML_WHITESPACE)
        if not seen:
            where = f"{self._path}" if self._fmt == "xml" else f"the {self._fmt} archive {self._path}"
            raise ArchiveError(f"{where} contains no data; the backup job wrote nothing — take a new backup")
        if not stripped.startswith(b"<"):
            what = next((label for magic, label in _KNOWN_MAGIC if seen.startswith(magic)), None)
            described = f" (it looks like {what})" if what else ""
            if not stripped:
                described = " (it holds only whitespace)"
            raise ArchiveError(f"{self._path} is not XML{described}; {_WHAT_TO_DO}")

    def _pull(self, size: int) -> bytes:
        try:
            data = self._inner.read(size)
        except (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
            raise ArchiveError(
                f"truncated or corrupt {self._fmt} archive {self._path} after {self._produced} bytes of XML "
                f"({exc}); the backup or its copy was cut short or damaged — take a new backup"
            ) from exc
        except OSError as exc:
            raise ArchiveError(f"cannot read {self._path}: {exc}; check the disk and the file") from exc
        self._produced += len(data)
        if self._compressed is not None:
            self._check_limits()
        return data

    def _check_limits(self) -> None:
        limits = self._limits
        if self._produced > limits.max_expanded:
            raise ArchiveError(
                f"{self._path} expands to more than {limits.max_expanded} bytes (Limits.max_expanded); "
                "it is a compression bomb or an unusually large project — if it is a genuine backup, "
                "raise the limit"
            )
        ratio = self._produced / self._compressed  # type: ignore[operator]
        if self._produced > _RATIO_GRACE and ratio > limits.max_ratio:
            raise ArchiveError(
                f"{self._path} expands more than {limits.max_ratio:g}:1 ({self._produced} bytes from "
                f"{self._compressed} compressed); REDCap XML compresses about 10-20:1, so this looks like "
                "a compression bomb — if it is a genuine backup, raise Limits.max_ratio"
            )
