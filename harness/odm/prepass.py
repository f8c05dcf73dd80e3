"""REDCap's text pre-pass (``ODM::parseOdm``), applied to a byte stream.

REDCap writes multi-line values as raw newlines inside attributes, and every
conforming XML parser turns those into spaces. REDCap's own importer avoids
that by rewriting the text before parsing: drop TABs, CR/LF -> LF, collapse one
level of blank lines, LF -> ``&#10;``, then put ``>\\n<`` back between tags.
The reader, the sandbox and the comparator all see documents through this
filter, so a value means the same thing everywhere, exactly as in REDCap.

It works chunk by chunk in constant memory. Each chunk is cut after its last
``<``: none of the patterns can straddle a ``<`` except ``>&#10;<`` which ends
on one, so the output is byte-identical to rewriting the whole document.
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO

from harness.errors import OdmError

CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
# The root start tag, once its name is complete.
_PROLOG_END = re.compile(rb"<[^?!][^\s/>]*[\s/>]")
_ROOT_NAME = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


def rewrite(text: bytes) -> bytes:
    """The pre-pass on a complete piece of text (no chunk boundaries)."""
    text = text.replace(b"\t", b"").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text = text.replace(b"\n\n", b"\n").replace(b"\n", b"&#10;")
    return text.replace(b">&#10;<", b">\n<")


def normalize_text(value: str) -> str:
    """What the pre-pass does to one value once parsed (for comparisons)."""
    return value.replace("\t", "").replace("\r\n", "\n").replace("\r", "\n").replace("\n\n", "\n")


class PrepassReader(io.RawIOBase):
    """A read-only binary stream of ``raw`` after REDCap's pre-pass.

    Also refuses a DOCTYPE in the prolog before any byte reaches the parser:
    REDCap never writes one, and DTDs are how entity bombs and XXE get in.
    """

    def __init__(self, raw: BinaryIO, chunk_size: int = CHUNK, *, name: str = "document", rewrite: bool = True):
        self._raw = raw
        self._name = name
        # Off: only the safety checks. Validation needs no rewriting (a value's
        # newlines do not change whether it is valid) and keeps exact line numbers.
        self._rewrite = rewrite
        self._chunk = chunk_size
        self._carry = b""
        self._out = bytearray()
        self._started = False
        self._eof = False
        self.bytes_in = 0
        #: Lines handed to the parser so far (to tell "cut short" from "malformed").
        self.lines_out = 1

    def readable(self) -> bool:
        return True

    def _check_prolog(self, data: bytes) -> bytes:
        data = data.removeprefix(_BOM).lstrip()
        m = _PROLOG_END.search(data)
        prolog = data[: m.start()] if m else data
        if b"<!DOCTYPE" in prolog.upper() or b"<!ENTITY" in prolog.upper():
            raise OdmError(
                "the document declares a DOCTYPE; REDCap never writes one and it is how "
                "entity bombs and external-entity (XXE) attacks get in. Re-export the project "
                "from REDCap instead of using this file."
            )
        # The parser only reports the elements we watch; a document whose root is
        # something else entirely must be refused here, before it is parsed whole.
        root = _ROOT_NAME.match(data, m.start()) if m else None
        if root and root.group(1) != b"ODM":
            raise OdmError(
                f"{self._name}: the root element is <{root.group(0)[1:].decode('utf-8', 'replace')}>, "
                "not ODM; this is not a REDCap project XML export"
            )
        return data

    def _pass(self, text: bytes) -> bytes:
        return rewrite(text) if self._rewrite else text

    def _fill(self) -> None:
        while not self._out and not self._eof:
            data = self._raw.read(self._chunk)
            if data:
                self.bytes_in += len(data)
            if not self._started:
                # The prolog must be seen whole; read until the root element starts.
                pending = self._carry + data
                if data and not _PROLOG_END.search(pending.removeprefix(_BOM).lstrip()):
                    self._carry = pending
                    continue
                self._carry = self._check_prolog(pending)
                self._started = True
                if data:
                    continue
            if not data:
                self._eof = True
                self._out += self._pass(self._carry.rstrip())
                self._carry = b""
                return
            pending = self._carry + data
            cut = pending.rfind(b"<") + 1
            if cut == 0:
                self._carry = pending
                continue
            self._out += self._pass(pending[:cut])
            self._carry = pending[cut:]

    @property
    def at_eof(self) -> bool:
        """Everything has been read and handed out."""
        return self._eof and not self._out

    def readinto(self, buffer) -> int:
        self._fill()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self.lines_out += self._out.count(b"\n", 0, n)
        del self._out[:n]
        return n
