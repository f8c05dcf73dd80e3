"""Open REDCap backup files safely and check them before anybody parses them.

    with open_xml(path) as fh:          # streams the XML of .xml, .xml.gz/.gz or REDCap's .zip
        ...
    result = scan(path)                 # one pass: size, records present, ends with </ODM>
    digest = sha256_file(path)          # of the bytes on disk
    verify_sidecar(path, digest)        # NAME.sha256, when present

Every expected failure is an ArchiveError whose message says what to do.
"""

from harness.archive.checksum import expected_sha256, sha256_file, sidecar_path, verify_sidecar
from harness.archive.model import Archive, BrokenArchive, Entry, Format, Sidecar
from harness.archive.opener import CHUNK, GiB, KiB, Limits, MiB, detect_format, open_xml
from harness.archive.scan import ScanResult, scan

__all__ = [
    "CHUNK",
    "Archive",
    "BrokenArchive",
    "Entry",
    "Format",
    "GiB",
    "KiB",
    "Limits",
    "MiB",
    "ScanResult",
    "Sidecar",
    "detect_format",
    "expected_sha256",
    "open_xml",
    "scan",
    "sha256_file",
    "sidecar_path",
    "verify_sidecar",
]
