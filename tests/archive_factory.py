"""Build REDCap-like and hostile backup files with the standard library only.

Nothing here is mocked: every helper writes real bytes, as a backup job or an
attacker would, so the code under test opens them exactly as it would in use.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
import zlib
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:redcap="https://projectredcap.org" '
    'ODMVersion="1.3.1" FileOID="000-00-0000" FileType="Snapshot" Description="{name}" '
    'AsOfDateTime="{created}" CreationDateTime="{created}" SourceSystem="REDCap" SourceSystemVersion="{version}">\n'
)


def odm(
    study_oid: str = "Project.Alpha",
    name: str = "Alpha",
    *,
    created: str = "2024-05-01T09:30:00",
    version: str = "14.7.3",
    records: int = 2,
    clinical: bool = True,
    tail: str = "",
) -> bytes:
    """A small but well-formed REDCap project XML document."""
    title = xml_escape(name, {'"': "&quot;"})
    parts = [HEAD.format(name=title, created=created, version=version)]
    parts.append(
        f'<Study OID="{study_oid}">\n<GlobalVariables>\n\t<StudyName>{xml_escape(name)}</StudyName>\n'
        f"\t<StudyDescription>test</StudyDescription>\n\t<ProtocolName>{xml_escape(name)}</ProtocolName>\n"
        "</GlobalVariables>\n<MetaDataVersion OID=\"Metadata.x\" Name=\"x\"/>\n</Study>\n"
    )
    if clinical:
        parts.append(f'<ClinicalData StudyOID="{study_oid}" MetaDataVersionOID="Metadata.x">\n')
        for record in range(1, records + 1):
            parts.append(
                f'\t<SubjectData SubjectKey="{record}" redcap:RecordIdField="record_id">\n'
                f'\t\t<FormData FormOID="Form.f"><ItemGroupData ItemGroupOID="f.r">'
                f'<ItemData ItemOID="record_id" Value="{record}"/></ItemGroupData></FormData>\n'
                "\t</SubjectData>\n"
            )
        parts.append("</ClinicalData>\n")
    parts.append("</ODM>" + tail)
    return "".join(parts).encode("utf-8")


def write(path: Path, data: bytes, *, mtime: datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        stamp = mtime.timestamp()
        os.utime(path, (stamp, stamp))
    return path


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zipped(members: dict[str, bytes]) -> bytes:
    """A zip with members named exactly as given (``ZipInfo`` keeps ``../`` and ``/``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 9, 30, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buffer.getvalue()


def mark_encrypted(zip_bytes: bytes) -> bytes:
    """Set the 'encrypted' flag in every local and central header, as a password-protected zip has."""
    data = bytearray(zip_bytes)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at != -1:
            (flags,) = struct.unpack_from("<H", data, at + offset)
            struct.pack_into("<H", data, at + offset, flags | 0x1)
            at = data.find(signature, at + 4)
    return bytes(data)


def deflated_bomb(expanded: int) -> bytes:
    """Raw deflate of an XML start followed by ``expanded`` spaces, compressed in pieces (no big buffer)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [compressor.compress(b'<?xml version="1.0"?><ODM>')]
    piece = b" " * (1 << 20)
    for _ in range(expanded // len(piece)):
        out.append(compressor.compress(piece))
    out.append(compressor.flush())
    return b"".join(out)


def gzip_bomb(expanded: int) -> bytes:
    """A valid gzip stream whose header says nothing about the size it expands to."""
    body = deflated_bomb(expanded)
    head = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x02\xff"
    # The trailer's CRC and size are never reached: the limit trips first.
    return head + body + struct.pack("<II", 0, 0)


def zip_bomb(expanded: int, *, name: str = "project.xml") -> bytes:
    """An honest zip (true sizes, true CRC) whose one member expands to ``expanded`` bytes of spaces."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 9, 30, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as member:
            member.write(b'<?xml version="1.0"?><ODM>')
            piece = b" " * (1 << 20)
            for _ in range(expanded // len(piece)):
                member.write(piece)
    return buffer.getvalue()


def declare_size(zip_bytes: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size in the first local and central header: a lying zip."""
    data = bytearray(zip_bytes)
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, size)
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, size)
    return bytes(data)
