"""Validate REDCap project XML in one streaming pass, in constant memory.

    result = validate("backup.xml.gz")                 # profile "redcap", schema from locate.py
    result.valid, result.counts, result.findings

or, to validate while something else reads the same pass::

    check = Validation(profile="redcap")
    doc = OdmDocument(fh, on_block=check.on_block)    # the XSD sees every block first
    check.on_metadata(doc.metadata)
    for subject in doc.subjects():
        check.on_subject(subject)                      # semantic rules
    result = check.result(doc)

What is validated, block by block as ``harness.odm.stream`` hands them out:
the ``<ODM>`` root's attributes (an attributes-only copy, before its children
exist), the whole ``<Study>``, the ``<ClinicalData>`` attributes, each
``<SubjectData>`` and any other top-level element. Every ODM element is a
global declaration in the schema, so each subtree validates on its own; what
only the whole document could show (the order and kind of the root's and
ClinicalData's children, unique Study OIDs) is checked here directly.

Invalid content never raises: it becomes findings. Only could-not-run
conditions raise a DrillError (no schema, unreadable archive, XML that is not
well-formed, hostile or truncated, or not ODM at all).
"""

from __future__ import annotations

import io
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from harness.archive import open_xml
from harness.odm.model import ProjectMetadata, Subject
from harness.odm.reader import OdmDocument
from harness.odm.stream import CLINICAL, DS_NS, ODM_NS, REDCAP_NS, Block
from harness.schema.deviations import DialectCheck, placement
from harness.schema.dialect import DEFAULT_PROFILE, check_profile, load_schema
from harness.schema.findings import ArchiveFacts, Finding, Findings, ValidationResult
from harness.schema.locate import SchemaLocation, locate_schema
from harness.schema.messages import findings_from_log
from harness.schema.paths import describe, located, name_of
from harness.schema.semantic import SemanticCheck

DEFAULT_MAX_MESSAGES = 50

_O = "{%s}" % ODM_NS
_R = "{%s}" % REDCAP_NS

# Children of <ODM> and of <ClinicalData>, in the order ODM 1.3.1 requires; REDCap's
# extension elements may follow at the end (the …ElementExtension hook).
_ODM_CHILDREN = (_O + "Study", _O + "AdminData", _O + "ReferenceData", _O + "ClinicalData",
                 _O + "Association", "{%s}Signature" % DS_NS)
_CLINICAL_CHILDREN = (_O + "SubjectData", _O + "AuditRecords", _O + "Signatures", _O + "Annotations")


class _Sequence:
    """Checks that streamed siblings come in the order (and from the set) a content model allows."""

    def __init__(self, parent: str, allowed: tuple[str, ...], extensions: bool):
        self.parent = parent
        self.rank = {tag: i for i, tag in enumerate(allowed)}
        self.extensions = extensions
        self.last = -1
        self.last_tag = ""

    def check(self, el: etree._Element, profile: str) -> tuple[Finding | None, bool]:
        """(a finding or None, whether the element may appear here at all)."""
        tag = el.tag
        if tag in self.rank:
            rank = self.rank[tag]
        elif self.extensions and tag.startswith(_R):
            rank = len(self.rank)
        else:
            allowed = ", ".join(name_of(t) for t in self.rank)
            return Finding(
                "error", "XSD001",
                f"Element '{name_of(tag)}': This element is not expected inside {self.parent} "
                f"(allowed: {allowed}{', redcap:*' if self.extensions else ''}).",
                line=el.sourceline, **located(el),
                hint=("a REDCap extension, which plain ODM 1.3.1 has no place for; validate with --profile redcap"
                      if tag.startswith(_R) and profile == "strict"
                      else f"only these elements may appear directly inside {self.parent}"),
            ), False
        if rank < self.last:
            return Finding(
                "error", "XSD001",
                f"Element '{name_of(tag)}': This element is not expected after '{name_of(self.last_tag)}' "
                f"inside {self.parent}.",
                line=el.sourceline, **located(el),
                hint=f"ODM 1.3.1 requires the children of {self.parent} in this order: "
                     + ", ".join(name_of(t) for t in self.rank),
            ), True
        self.last, self.last_tag = rank, tag
        return None, True


def _stub(el: etree._Element) -> etree._Element:
    """An attributes-only copy, for elements whose children have not been parsed yet."""
    return etree.Element(el.tag, attrib=dict(el.attrib), nsmap=el.nsmap)


class Validation:
    """One file's validation, fed by the blocks and subjects of a single streaming pass."""

    def __init__(
        self,
        profile: str = DEFAULT_PROFILE,
        *,
        location: SchemaLocation | None = None,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        semantic: bool = True,
    ):
        self.profile = check_profile(profile)
        self.schema = load_schema(profile, location or locate_schema())
        self.findings = Findings(max_messages)
        self.dialect = DialectCheck(profile, self.findings)
        self.semantic = semantic
        self._semantic: SemanticCheck | None = None
        self._started = time.perf_counter()
        extensions = profile != "strict"
        self._odm_children = _Sequence("ODM", _ODM_CHILDREN, extensions)
        self._clinical_children = _Sequence("ClinicalData", _CLINICAL_CHILDREN, extensions)
        self._study_oids: set[str] = set()

    # -- the XSD and the dialect pass, per block -----------------------------------------
    def on_block(self, block: Block) -> None:
        el = block.element
        kind = block.kind
        if kind == "subject":
            if self._clinical_children.last > 0:  # AuditRecords & co. were seen, and must follow the subjects
                self._order(self._clinical_children, el)
            self._xsd(el)
            self.dialect.subject(el)
        elif kind == "study":
            self._order(self._odm_children, el)
            self._unique_study(el)
            self._xsd(el)
            self.dialect.study(el)
        elif kind == "odm":
            self._xsd(_stub(el), stand_in=el)
            self.dialect.root(el)
        elif kind == "clinical":
            self._order(self._odm_children, el)
            self._clinical_children = _Sequence("ClinicalData", _CLINICAL_CHILDREN, self.profile != "strict")
            self._xsd(_stub(el), stand_in=el)
            self.dialect.root(el)
        else:  # any other element directly inside ODM (or ClinicalData)
            parent = el.getparent()
            inside_clinical = parent is not None and parent.tag == CLINICAL
            allowed = self._order(self._clinical_children if inside_clinical else self._odm_children, el)
            # A redcap: element is typed when redcap.xsd declares it; an undeclared one is what the lax
            # wildcard lets through (the dialect pass warns about it).
            if allowed and (not el.tag.startswith(_R) or el.tag[len(_R):] in placement().elements):
                self._xsd(el)
            self.dialect.other(el)

    def _xsd(self, top: etree._Element, stand_in: etree._Element | None = None) -> None:
        if not self.schema.validate(top):
            for finding in findings_from_log(self.schema.error_log, top, profile=self.profile, stand_in=stand_in):
                self.findings.add(finding)

    def _order(self, sequence: _Sequence, el: etree._Element) -> bool:
        """Report an element out of order or out of place; False when it may not be there at all."""
        finding, allowed = sequence.check(el, self.profile)
        if finding is not None:
            self.findings.add(finding)
        return allowed

    def _unique_study(self, el: etree._Element) -> None:
        oid = el.get("OID")
        if oid in self._study_oids:
            self.findings.add(Finding(
                "error", "XSD005",
                f"Element 'Study': Duplicate key-sequence ['{oid}'] in unique identity-constraint 'UC-O-1'.",
                line=el.sourceline, path=describe(el),
                hint="two Study elements share an OID; REDCap writes exactly one Study per file",
            ))
        self._study_oids.add(oid)

    # -- semantic rules -------------------------------------------------------------------
    def on_metadata(self, meta: ProjectMetadata, *, has_metadata: bool = True) -> None:
        if not self.semantic:
            return
        if has_metadata:
            self._semantic = SemanticCheck(meta, self.findings)
        elif meta.metadata_version_oid:
            self.findings.add(Finding(
                "note", "SEM-NOT-REDCAP-METADATA",
                "the MetaDataVersion has no redcap:RecordIdField, so it is not REDCap project metadata; "
                "the REDCap-specific data checks were skipped",
                hint="expected for plain ODM from other systems; a REDCap export always names its record ID field",
            ))
        else:
            self.findings.add(Finding(
                "warning", "SEM-NO-METADATA",
                "the file has no project metadata (Study/MetaDataVersion): it is a data-only export, "
                "so data checks were skipped and REDCap's Create Project cannot restore it",
                hint="back up with the project XML export (content=project_xml), which includes the metadata",
            ))

    def on_subject(self, subject: Subject) -> None:
        if self._semantic is not None:
            self._semantic.subject(subject)

    # -- the result -----------------------------------------------------------------------
    def result(self, doc: OdmDocument, *, name: str = "", xml_bytes: int = 0) -> ValidationResult:
        self.dialect.finish()
        meta = doc.metadata
        facts = ArchiveFacts(
            name=name or doc.name,
            xml_bytes=xml_bytes,
            redcap_version=meta.header.source_system_version,
            study_oid=meta.study_oid,
            title=meta.title,
            has_metadata=doc.has_metadata,
            has_clinical_data=doc.has_clinical_data,
            longitudinal=meta.longitudinal,
            records=doc.subject_count,
            events=len(meta.events),
            forms=len(meta.forms),
            fields=len(meta.fields),
        )
        findings, omitted = self.findings.result()
        return ValidationResult(
            profile=self.profile,
            facts=facts,
            findings=findings,
            counts=dict(self.findings.counts),
            omitted=omitted,
            seconds=time.perf_counter() - self._started,
        )


class _Counted(io.RawIOBase):
    """Counts the bytes read from the underlying stream (the XML size, after decompression)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _opened(source: str | os.PathLike[str] | BinaryIO):
    if isinstance(source, (str, os.PathLike)):
        with open_xml(source) as fh:  # .xml, .xml.gz and REDCap's .zip, with bomb limits
            yield fh, Path(source).name
    else:
        yield source, getattr(source, "name", "document")


def validate(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    profile: str = DEFAULT_PROFILE,
    odm_schema: str | os.PathLike[str] | None = None,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    semantic: bool = True,
    name: str | None = None,
) -> ValidationResult:
    """Validate one archive (path or binary stream) against ``profile`` in one pass.

    Returns findings for anything invalid; raises a DrillError only when the
    file cannot be validated at all (schema missing, archive unreadable, XML
    malformed, hostile or truncated, not ODM).
    """
    check = Validation(profile, location=locate_schema(odm_schema), max_messages=max_messages, semantic=semantic)
    with _opened(source) as (stream, default_name):
        label = name or str(default_name)
        counted = _Counted(stream)
        # No REDCap text pre-pass: validity does not depend on it, and line numbers stay exact.
        doc = OdmDocument(counted, name=label, on_block=check.on_block, prepass=False)
        check.on_metadata(doc.metadata, has_metadata=doc.has_metadata)
        if semantic:
            for subject in doc.subjects():
                check.on_subject(subject)
        else:
            doc.drain()  # XSD and dialect checks see the blocks; no cells are built
        return check.result(doc, name=label, xml_bytes=counted.count)
