"""One streaming pass over a project XML document, in bounded memory.

``iter_blocks`` yields the document in the only pieces anybody needs: the
``<ODM>`` root (attributes only), the whole ``<Study>`` (metadata is small),
the ``<ClinicalData>`` start, and each ``<SubjectData>`` (one record). An
element is valid only until the next block is requested; it is then cleared
and unlinked, which keeps a 1 GB archive in constant memory. The reader and
the schema validator both consume these blocks, so one pass does both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from harness.errors import OdmError
from harness.odm.prepass import PrepassReader

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
REDCAP_NS = "https://projectredcap.org"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
O = "{%s}" % ODM_NS
R = "{%s}" % REDCAP_NS

ODM = O + "ODM"
STUDY = O + "Study"
CLINICAL = O + "ClinicalData"
SUBJECT = O + "SubjectData"

_TRUNCATED = "the file ends early: the archive is truncated; take another backup"
_HINTS = (
    ("Premature end of data", _TRUNCATED),
    ("EndTag: '</' not found", _TRUNCATED),
    ("Extra content at the end", "there is content after </ODM>; two exports were concatenated?"),
    ("Document is empty", "the file holds no XML"),
    ("no element found", "the file holds no XML"),
    ("Start tag expected", "the file is not XML"),
    ("not well-formed", "the bytes are not well-formed XML (binary data or a damaged file)"),
    ("Input is not proper UTF-8", "the file is not UTF-8; REDCap always writes UTF-8, so it was altered"),
)


@dataclass
class Block:
    kind: str  # "odm" | "study" | "clinical" | "subject" | "other" (any other child of ODM or ClinicalData)
    element: etree._Element


def syntax_error(exc: etree.XMLSyntaxError, name: str = "document", *, last_line: int | None = None) -> OdmError:
    """Turn libxml2's message into one that says what to do.

    ``last_line`` is the input's last line when the whole input had been read:
    an error there, whatever libxml2 calls it, means the file was cut short.
    """
    msg = str(exc.msg or exc)
    line, col = exc.position if exc.position else (0, 0)
    hint = next((h for needle, h in _HINTS if needle in msg), "the XML is malformed")
    if last_line is not None and line >= last_line:
        hint = _TRUNCATED
    return OdmError(f"{name}: {hint} (line {line}, column {col}: {msg})")


def _release(el: etree._Element) -> None:
    el.clear(keep_tail=False)
    parent = el.getparent()
    if parent is not None:
        # Drop handled siblings; never touch ancestors the parser still uses.
        while el.getprevious() is not None:
            del parent[0]


#: Only these elements reach Python; everything inside them stays in libxml2
#: until its block is handed out. ``{*}`` so a wrong namespace is still seen.
_WATCHED = ("{*}ODM", "{*}Study", "{*}ClinicalData", "{*}SubjectData")
_WATCHED_NAMES = {"ODM", "Study", "ClinicalData", "SubjectData"}


def _is_stray(el) -> bool:
    # Watched elements get their own end event (and are cleared, not removed).
    return isinstance(el.tag, str) and el.tag.rpartition("}")[2] not in _WATCHED_NAMES


def _strays(el: etree._Element) -> Iterator[Block]:
    """Siblings before ``el`` that nobody handed out yet (AdminData, a stray element)."""
    prev = el.getprevious()
    strays = []
    while prev is not None:
        if _is_stray(prev):
            strays.append(prev)
        prev = prev.getprevious()
    for stray in reversed(strays):
        yield Block("other", stray)


def _leftovers(parent: etree._Element) -> Iterator[Block]:
    for child in parent:
        if _is_stray(child):
            yield Block("other", child)


def iter_blocks(stream: BinaryIO, *, name: str = "document", prepass: bool = True) -> Iterator[Block]:
    """Yield the blocks of one document; raise OdmError on anything malformed.

    ``prepass=False`` skips REDCap's text rewriting (multi-line values then read
    with spaces, as any XML parser reads them) but never the safety checks.
    """
    source = PrepassReader(stream, name=name, rewrite=prepass)
    parser = etree.iterparse(
        source,
        events=("start", "end"),
        tag=_WATCHED,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
        # Embedded files (exportFiles) exceed libxml2's 10 MB text limit; safe
        # because no DOCTYPE, hence no entity, ever reaches the parser.
        huge_tree=True,
    )
    saw_root = False
    try:
        for event, el in parser:
            parent = el.getparent()
            if event == "start":
                if parent is None:
                    saw_root = True
                    if el.getroottree().docinfo.doctype:
                        raise OdmError(f"{name}: DOCTYPE declarations are not allowed in REDCap project XML")
                    if el.tag != ODM:
                        raise OdmError(
                            f"{name}: the root element is {el.tag!r}, not ODM in namespace {ODM_NS}; "
                            "this is not a REDCap project XML export"
                        )
                    yield Block("odm", el)
                elif el.tag == CLINICAL and parent.getparent() is None:
                    yield from _strays(el)
                    yield Block("clinical", el)
                continue
            if parent is None:
                yield from _leftovers(el)
            elif parent.getparent() is None:
                yield from _strays(el)
                if el.tag == STUDY:
                    yield Block("study", el)
                elif el.tag == CLINICAL:
                    yield from _leftovers(el)
                else:
                    yield Block("other", el)
                _release(el)
            elif parent.tag == CLINICAL and parent.getparent().getparent() is None:
                # Any other child of ClinicalData (AuditRecords, a stray element) is
                # handed out so the validator sees it, then freed like a subject.
                yield from _strays(el)
                yield Block("subject" if el.tag == SUBJECT else "other", el)
                _release(el)
    except etree.XMLSyntaxError as exc:
        at_end = saw_root and source.at_eof
        raise syntax_error(exc, name, last_line=source.lines_out if at_end else None) from None
    if not saw_root:
        raise OdmError(f"{name}: the file holds no XML element")
