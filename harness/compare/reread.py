"""Read a few chosen records from a document without parsing the rest.

After hashing, only records that differ are compared in detail, so they must
be read again. Parsing the whole document a second time would double the
cost, so this scans the raw bytes for ``<SubjectData`` elements, looks at the
SubjectKey in the start tag, and parses only the wanted ones with lxml,
wrapped in the document's own ``<ODM>`` start tag so namespaces resolve
exactly as in the full parse. REDCap's pre-pass is applied to each wanted
fragment only: a piece that starts with ``<`` and ends with ``>`` comes out
of it exactly as it would inside the whole document (no pattern of the
pre-pass reaches across a tag boundary into it).

That shortcut relies on what REDCap writes: ODM elements in the default
namespace and ``<`` never raw inside values (escaped in attributes, base64 in
CDATA). When a document breaks that -- a namespace prefix, a fragment that
does not parse, a key not found -- the missing records are read by a full,
ordinary streaming pass instead, so the answer never depends on the shortcut.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

from lxml import etree

from harness.odm.model import Subject
from harness.odm.prepass import rewrite
from harness.odm.reader import OdmDocument, read_subject

Opener = Callable[[], AbstractContextManager[BinaryIO]]

CHUNK = 1 << 20
_TAG_BODY = rb"(?:[^>\"']|\"[^\"]*\"|'[^']*')*>"
_ROOT = re.compile(rb"<ODM\b" + _TAG_BODY)
_START = re.compile(rb"<SubjectData\b" + _TAG_BODY)
_KEY = re.compile(rb"""\sSubjectKey\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_OPEN = b"<SubjectData"
_CLOSE = b"</SubjectData>"


class _Unusable(Exception):
    """The byte-level shortcut cannot be trusted for this document."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
                           remove_comments=True, remove_pis=True)


def _fragments(stream: BinaryIO, keys: set[str]) -> Iterator[tuple[bytes, bytes]]:
    """(root start tag, SubjectData bytes) for each wanted subject, in document order."""
    buf = bytearray()
    root: bytes | None = None
    resume = -1  # where to continue looking for the close tag of a pending subject
    while True:
        chunk = stream.read(CHUNK)
        eof = not chunk
        buf += chunk
        pos = 0
        if root is None:
            m = _ROOT.search(buf)
            if m is None:
                if eof or len(buf) > 64 * CHUNK:
                    raise _Unusable("no <ODM> start tag in the default namespace")
                continue
            root = bytes(m.group(0))
            if root.endswith(b"/>"):
                return
            pos = m.end()
        while True:
            start = buf.find(_OPEN, pos)
            if start < 0:
                pos = max(pos, len(buf) - len(_OPEN))
                break
            m = _START.match(buf, start)
            if m is None:
                nxt = buf[start + len(_OPEN): start + len(_OPEN) + 1]
                if nxt and not nxt.isspace() and nxt not in b">/":
                    pos = start + 1  # <SubjectDataSomething: not ours
                    continue
                pos = start  # start tag not complete yet
                break
            tag = m.group(0)
            if tag.endswith(b"/>"):
                end = m.end()
            else:
                close = buf.find(_CLOSE, max(m.end(), resume))
                if close < 0:
                    resume = max(m.end(), len(buf) - len(_CLOSE))
                    pos = start
                    break
                end = close + len(_CLOSE)
            resume = -1
            km = _KEY.search(tag)
            if km is not None:
                key = html.unescape((km.group(1) if km.group(1) is not None else km.group(2)).decode("utf-8"))
                if key in keys:
                    yield root, bytes(buf[start:end])
            pos = end
        if resume >= 0:
            resume -= pos
        del buf[:pos]
        if eof:
            return


def _fast(opener: Opener, keys: set[str]) -> Iterator[Subject]:
    parser = _parser()
    with opener() as raw:
        for root, fragment in _fragments(raw, keys):
            try:
                doc = etree.fromstring(rewrite(root) + rewrite(fragment) + b"</ODM>", parser)
            except etree.XMLSyntaxError as exc:
                raise _Unusable(str(exc)) from None
            if len(doc) != 1:
                raise _Unusable("fragment did not hold exactly one SubjectData")
            yield read_subject(doc[0])


def reread(opener: Opener, keys: set[str], *, name: str = "document") -> Iterator[Subject]:
    """Every SubjectData whose key is in ``keys`` (duplicates too), in document order."""
    if not keys:
        return
    found: set[str] = set()
    try:
        for subject in _fast(opener, keys):
            found.add(subject.key)
            yield subject
        rest = keys - found
    except _Unusable:
        rest = keys - found
    if not rest:
        return
    # Slow path: an ordinary full streaming parse, for whatever the shortcut missed.
    with opener() as raw:
        doc = OdmDocument(raw, name=name)
        for subject in doc.subjects():
            if subject.key in rest:
                yield subject
