"""A ``multipart/form-data`` body that streams a file instead of holding it in memory.

requests builds multipart bodies in memory, and a project XML can be a
gigabyte. This body knows its length up front (so the request carries a
Content-Length, which every PHP and WSGI server accepts, unlike chunked
uploads) and reads the file in chunks while the socket sends it.

The file goes in as a plain form field (no ``filename=``): REDCap reads
``odm`` from PHP's ``$_POST``, and PHP only puts parts without a filename there.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class MultipartBody:
    """``fields`` in order, then ``file_field`` with the bytes of ``path``; read once."""

    def __init__(self, fields: list[tuple[str, str]], file_field: str, path: str | os.PathLike[str],
                 *, chunk_size: int = CHUNK) -> None:
        self.boundary = "redcap-drill-" + secrets.token_hex(16)
        self._path = Path(path)
        self._chunk = chunk_size
        head = b"".join(self._part_header(name) + value.encode("utf-8") + b"\r\n" for name, value in fields)
        self._head = head + self._part_header(file_field)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")
        self._file_size = self._path.stat().st_size
        self._length = len(self._head) + self._file_size + len(self._tail)
        self._pieces = self._generate()
        self._buffer = b""
        self._position = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _part_header(self, name: str) -> bytes:
        return (f"--{self.boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"\r\n\r\n').encode("utf-8")

    def _generate(self) -> Iterator[bytes]:
        yield self._head
        with open(self._path, "rb") as fh:
            sent = 0
            while chunk := fh.read(self._chunk):
                sent += len(chunk)
                yield chunk
        if sent != self._file_size:
            # The Content-Length already went out; a file that changed under us must not be sent short.
            raise OSError(f"{self._path} changed size while it was being uploaded")
        yield self._tail

    # requests/urllib3 read the body like a file; __len__ and tell() give them the Content-Length.
    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        self._position += len(out)
        return out

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self._chunk):
            yield chunk


def spool(stream: BinaryIO, dest: Path, *, chunk_size: int = CHUNK) -> Path:
    """Copy a stream to ``dest`` in chunks (used to give compressed archives a known length)."""
    with open(dest, "wb") as out:
        while chunk := stream.read(chunk_size):
            out.write(chunk)
    return dest
