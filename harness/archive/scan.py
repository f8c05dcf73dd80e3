"""One streaming pass over the decompressed XML: size, data presence, and the ``</ODM>`` tail.

This is a byte-level look, not a parse: it is cheap enough to run on every
archive in a backup folder. Parsing (and the reasons a document is malformed)
belongs to ``harness.odm``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.archive.opener import CHUNK, Limits, open_xml
from harness.errors import ArchiveError

# REDCap writes the ODM namespace as the default namespace, never with a prefix,
# and puts attachments in base64 CDATA, so these byte patterns only ever match
# real start tags. The trailing class stops <SubjectDataX> from matching.
_START_TAGS = re.compile(rb"<(ClinicalData|SubjectData)[\s/>]")
# A tag can straddle two chunks: keep this many bytes of the previous one.
_OVERLAP = len(b"<ClinicalData ") - 1

_XML_WHITESPACE = b" \t\r\n"
_END = b"</ODM>"


@dataclass(frozen=True)
class ScanResult:
    xml_size: int  # decompressed bytes
    has_clinical_data: bool  # a <ClinicalData> start tag occurs
    subject_count: int  # <SubjectData> start tags, one per record

    @property
    def metadata_only(self) -> bool:
        """No records at all.

        REDCap writes an empty ``<ClinicalData>`` element when a project has no
        records (see phpcap-repeatable-survey-7.0.16 in the corpus), and leaves
        it out of metadata-only downloads. Either way nothing is restorable
        beyond the design, which is what a backup check must flag.
        """
        return self.subject_count == 0


def scan(path: str | Path, *, limits: Limits = Limits(), chunk_size: int = CHUNK) -> ScanResult:
    """Stream the XML once in ``chunk_size`` pieces (constant memory).

    Raises ArchiveError("truncated …") when the document does not end with
    ``</ODM>`` after trailing whitespace: REDCap's own importer refuses such a
    file, and a backup cut short by a full disk or a killed job looks exactly so.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    size = 0
    clinical = False
    subjects = 0
    carry = b""
    tail = b""  # the last bytes up to and including the last non-whitespace byte
    trailing_ws = b""  # whitespace seen after `tail`, capped
    keep = len(_END)
    with open_xml(path, limits=limits) as stream:
        while chunk := stream.read(chunk_size):
            size += len(chunk)
            buf = carry + chunk
            for match in _START_TAGS.finditer(buf):
                if match.end() <= len(carry):
                    continue  # lay wholly in the previous chunk: already counted
                if match.group(1) == b"SubjectData":
                    subjects += 1
                else:
                    clinical = True
            carry = buf[-_OVERLAP:]
            body = chunk.rstrip(_XML_WHITESPACE)
            if body:
                tail = (tail + trailing_ws + body)[-keep:]
                trailing_ws = chunk[len(body):][-keep:]
            else:
                trailing_ws = (trailing_ws + chunk)[-keep:]
    if not tail.endswith(_END):
        raise ArchiveError(
            f"truncated XML: {path} does not end with </ODM> (it stops after {size} bytes); the export or "
            "its copy was cut short and REDCap would refuse to import it — take a new backup"
        )
    return ScanResult(xml_size=size, has_clinical_data=clinical, subject_count=subjects)
