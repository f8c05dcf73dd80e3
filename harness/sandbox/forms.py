"""A streaming parser for POST bodies: urlencoded and multipart/form-data.

REDCap reads ``$_POST``, so clients send either encoding (PyCap posts the
project XML urlencoded, file uploads are multipart). A project XML can be a
gigabyte, so no field is ever held as one string while parsing: every value
is decoded chunk by chunk into a ``SpooledTemporaryFile`` that stays in
memory while small and moves to disk when large. The stdlib ``cgi`` module
that used to do this is gone in 3.13.
"""

from __future__ import annotations

import binascii
import re
import tempfile
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

CHUNK = 1 << 16
SPOOL_LIMIT = 1 << 20
_NAME_END = re.compile(rb"[=&]")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class FormError(ValueError):
    """The body is not a well-formed form (the server answers 400)."""


@dataclass
class FormPart:
    """One form field; its bytes live in ``data`` (position 0 after parsing)."""

    name: str
    data: BinaryIO
    size: int
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        self.data.seek(0)
        return self.data.read().decode("utf-8", errors="replace")

    def stream(self) -> BinaryIO:
        self.data.seek(0)
        return self.data

    def close(self) -> None:
        self.data.close()


def _spool():
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT, mode="w+b")


class _Body:
    """Reads exactly ``length`` bytes, or an HTTP/1.1 chunked body."""

    def __init__(self, rfile: BinaryIO, length: int | None, chunked: bool):
        self._rfile = rfile
        self._left = length if length is not None else 0
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not self._left

    def read(self, n: int = CHUNK) -> bytes:
        if self._done:
            return b""
        if not self._chunked:
            data = self._rfile.read(min(n, self._left))
            if not data:
                raise FormError("the request body ended before Content-Length bytes arrived")
            self._left -= len(data)
            self._done = self._left == 0
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(1024).split(b";")[0].strip()
            try:
                self._chunk_left = int(line, 16)
            except ValueError:
                raise FormError("malformed chunked transfer encoding") from None
            if self._chunk_left == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(16)
        return data


def _unquote_plus(raw: bytes) -> bytes:
    raw = raw.replace(b"+", b" ")
    if b"%" not in raw:
        return raw
    if _BAD_ESCAPE.search(raw):
        return unquote_to_bytes(raw)
    # A project XML is mostly escapes; binascii's quoted-printable decoder does
    # %XX in C, ten times faster than unquote_to_bytes (literal "=" kept as =3D).
    return binascii.a2b_qp(raw.replace(b"=", b"=3D").replace(b"%", b"="))


def _parse_urlencoded(body: _Body) -> list[FormPart]:
    parts: list[FormPart] = []
    name = bytearray()
    value = None  # spool of the current value once '=' was seen
    size = 0
    carry = b""  # an incomplete %XX at a chunk edge

    def finish():
        nonlocal name, value, size, carry
        if value is None and not name:
            return
        if value is None:
            value = _spool()
        if carry:
            value.write(_unquote_plus(carry))
            size += len(carry)
        value.seek(0)
        parts.append(FormPart(_unquote_plus(bytes(name)).decode("utf-8", "replace"), value, size))
        name, value, size, carry = bytearray(), None, 0, b""

    while chunk := body.read():
        pos = 0
        while pos < len(chunk):
            if value is None:
                m = _NAME_END.search(chunk, pos)
                if m is None:
                    name += chunk[pos:]
                    break
                name += chunk[pos:m.start()]
                pos = m.end()
                if m.group() == b"&":
                    finish()
                else:
                    value = _spool()
                continue
            amp = chunk.find(b"&", pos)
            seg = carry + (chunk[pos:] if amp < 0 else chunk[pos:amp])
            carry = b""
            if amp < 0:
                # Keep a trailing "%" or "%X" for the next chunk.
                cut = seg.rfind(b"%", max(0, len(seg) - 2))
                if cut >= 0:
                    seg, carry = seg[:cut], seg[cut:]
            value.write(_unquote_plus(seg))
            size += len(seg)
            if amp < 0:
                break
            pos = amp + 1
            finish()
    finish()
    return parts


def _boundary(content_type: str) -> bytes:
    m = re.search(r'boundary="?([^";,]+)"?', content_type, re.I)
    if not m:
        raise FormError("multipart/form-data without a boundary")
    return m.group(1).encode("latin-1")


def _part_headers(raw: bytes) -> tuple[str, str | None, str | None]:
    name = filename = ctype = None
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, _, val = line.partition(":")
        key = key.strip().lower()
        if key == "content-disposition":
            for m in re.finditer(r'(\w+)\*?=(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))', val):
                v = m.group(2) if m.group(2) is not None else m.group(3)
                if m.group(1).lower() == "name":
                    name = v
                elif m.group(1).lower() == "filename":
                    filename = v
        elif key == "content-type":
            ctype = val.strip()
    if name is None:
        raise FormError("a multipart part has no name")
    return name, filename, ctype


def _parse_multipart(body: _Body, boundary: bytes) -> list[FormPart]:
    parts: list[FormPart] = []
    delim = b"\r\n--" + boundary
    buf = b"\r\n"  # lets the first boundary match the same pattern as the rest
    # Skip the preamble up to the first boundary.
    while True:
        i = buf.find(delim)
        if i >= 0:
            buf = buf[i + len(delim):]
            break
        more = body.read()
        if not more:
            raise FormError("multipart body without its boundary")
        buf = buf[-len(delim):] + more
    while True:
        while len(buf) < 2:
            more = body.read()
            if not more:
                raise FormError("multipart body ends inside a boundary line")
            buf += more
        if buf.startswith(b"--"):
            return parts  # closing boundary
        while (h := buf.find(b"\r\n\r\n")) < 0:
            more = body.read()
            if not more or len(buf) > 65536:
                raise FormError("multipart part headers are malformed")
            buf += more
        name, filename, ctype = _part_headers(buf[:h].lstrip(b"\r\n"))
        buf = buf[h + 4:]
        spool, size = _spool(), 0
        while True:
            i = buf.find(delim)
            if i >= 0:
                spool.write(buf[:i])
                size += i
                buf = buf[i + len(delim):]
                break
            keep = len(delim)
            if len(buf) > keep:
                spool.write(buf[:-keep])
                size += len(buf) - keep
                buf = buf[-keep:]
            more = body.read()
            if not more:
                raise FormError("multipart body ends inside a part")
            buf += more
        spool.seek(0)
        parts.append(FormPart(name, spool, size, filename, ctype))


def parse_form(rfile: BinaryIO, *, content_type: str, length: int | None, chunked: bool = False) -> list[FormPart]:
    """All fields of a POST body, in order. Raises FormError when malformed."""
    body = _Body(rfile, length, chunked)
    ctype = (content_type or "").lower()
    if ctype.startswith("multipart/form-data"):
        return _parse_multipart(body, _boundary(content_type))
    return _parse_urlencoded(body)
