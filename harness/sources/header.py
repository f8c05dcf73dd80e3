"""Which project a backup belongs to, read from the first 64 KB of its XML.

REDCap writes the identifying facts first: the ``<ODM>`` attributes, then
``<Study OID>`` and ``<GlobalVariables><StudyName>``. Reading stops as soon as
StudyName is seen, so listing a folder of multi-GB backups stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lxml import etree

from harness.archive.opener import KiB, Limits, open_xml
from harness.errors import ArchiveError

HEADER_BYTES = 64 * KiB
_FEED = 8 * KiB

_DOCTYPE = b"<!DOCTYPE"


@dataclass(frozen=True)
class Header:
    """The identifying facts of a project XML; every field is None when absent."""

    study_oid: str | None = None  # Study/@OID, or ClinicalData/@StudyOID in a data-only ODM
    study_name: str | None = None  # GlobalVariables/StudyName
    description: str | None = None  # ODM/@Description
    created: datetime | None = None  # ODM/@CreationDateTime
    redcap_version: str | None = None  # ODM/@SourceSystemVersion


def read_header(path: str | Path, *, limits: Limits = Limits(), max_bytes: int = HEADER_BYTES) -> Header:
    """Parse at most ``max_bytes`` of decompressed XML and return what the header says.

    Raises ArchiveError when the document declares a DOCTYPE, is not well-formed
    where it was read, or its root element is not ``<ODM>``. A header that simply
    lacks the facts yields a Header of Nones; see `project_key`.
    """
    parser = etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    facts: dict[str, object] = {}
    root_seen = False
    carry = b""
    fed = 0
    with open_xml(path, limits=limits) as stream:
        while fed < max_bytes:
            chunk = stream.read(min(_FEED, max_bytes - fed))
            if not chunk:
                break
            fed += len(chunk)
            if not root_seen and _DOCTYPE in carry + chunk:
                # Checked on the bytes, before libxml2 sees them: a DTD is where entity
                # bombs and external-entity reads live, and REDCap never writes one.
                raise _doctype_error(path)
            carry = chunk[-len(_DOCTYPE):]
            try:
                parser.feed(chunk)
                events = list(parser.read_events())
            except etree.XMLSyntaxError as exc:
                raise ArchiveError(
                    f"{path} is not well-formed XML near line {exc.lineno}: {exc.msg}; "
                    "the file is damaged or is not a REDCap export — take a new backup"
                ) from exc
            for event, element in events:
                if not root_seen:
                    root_seen = True
                    _check_root(path, element)
                if _collect(event, element, facts):
                    return _header(facts)
    return _header(facts)


def _doctype_error(path: str | Path) -> ArchiveError:
    return ArchiveError(
        f"DOCTYPE declarations are not allowed in REDCap project XML; the file may be hostile ({path}) — "
        "do not open it in other tools, and re-export the project from REDCap"
    )


def _check_root(path: str | Path, element: etree._Element) -> None:
    if element.getroottree().docinfo.doctype:
        raise _doctype_error(path)  # belt and braces: the byte check should have caught it
    name = etree.QName(element).localname
    if name != "ODM":
        raise ArchiveError(
            f"{path}: the root element is <{name}>, not <ODM>, so this is not a REDCap project XML export; "
            "in REDCap use Project Setup > Other Functionality > 'Download project XML' (or exportProjectXml)"
        )


def _collect(event: str, element: etree._Element, facts: dict[str, object]) -> bool:
    """Record what this event tells; True once there is nothing more to learn."""
    name = etree.QName(element).localname
    if event == "start" and name == "ODM":
        facts["description"] = element.get("Description")
        facts["created"] = _parse_time(element.get("CreationDateTime"))
        facts["redcap_version"] = element.get("SourceSystemVersion")
    elif event == "start" and name == "Study":
        facts["study_oid"] = element.get("OID")
    elif event == "end" and name == "StudyName":
        facts["study_name"] = element.text
        return True
    elif event == "start" and name == "ClinicalData":
        # A data-only ODM has no Study; the clinical data still names it.
        facts.setdefault("study_oid", element.get("StudyOID"))
        return True
    return False


def _header(facts: dict[str, object]) -> Header:
    return Header(**{key: value or None for key, value in facts.items()})  # type: ignore[arg-type]


def _parse_time(value: str | None) -> datetime | None:
    """REDCap writes ``YYYY-MM-DDTHH:MM:SS`` in server local time, without an offset."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None  # the header is still useful; ordering falls back to the file time
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone().replace(tzinfo=None)
    return parsed


# --- the project key -------------------------------------------------------------------------

_SUFFIXES = (".gz", ".zip", ".xml", ".redcap")
# REDCap names downloads "<Title>_YYYY-MM-DD_HHMM.REDCap.xml"; backup scripts add
# their own stamps, e.g. 2024-05-01T09:30:00 or 20240501_093000.
_STAMP = re.compile(
    r"[_\-. ]*(?:\d{4}-\d{2}-\d{2}|\d{8})(?:[_T\- ]?\d{2}[:\-]?\d{2}(?:[:\-]?\d{2})?)?$"
)
_DATA_ONLY = re.compile(r"_CDISC_ODM$", re.IGNORECASE)


def key_from_filename(name: str) -> str:
    """``MyStudy_2024-05-01_0930.REDCap.xml.gz`` -> ``MyStudy``."""
    stem = name
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)]
                changed = True
    key = _DATA_ONLY.sub("", _STAMP.sub("", stem))
    return key or stem  # a name that is only a time stamp keeps it


def project_key(header: Header | None, path: Path) -> str:
    """The Study OID when the header names one, else a key derived from the file name."""
    if header is not None and header.study_oid:
        return header.study_oid
    return key_from_filename(path.name)
