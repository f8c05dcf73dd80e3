"""Helpers for the sandbox tests: the shared corpus, API calls, and small projects.

Everything goes over HTTP to a real ``SandboxServer``; nothing here reaches
into the sandbox's internals. Corpus files are read from ``../shared`` and
never copied into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.corpus import CORPUS, EXAMPLE


def corpus_files() -> list[Path]:
    """The 13 real exports plus the hand-written 15.7.6 example (empty if absent)."""
    files = sorted(CORPUS.glob("*.xml")) if CORPUS.is_dir() else []
    if EXAMPLE.is_file():
        files.append(EXAMPLE)
    return files


def corpus_file(name: str) -> Path:
    path = CORPUS / name if name != EXAMPLE.name else EXAMPLE
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared corpus sits beside the checkout (../shared/corpus)")
    return path


def post(url: str, **fields) -> requests.Response:
    return requests.post(url, data=fields, timeout=60)


def create_project(sandbox, odm: bytes | str | None = None, *, title: str = "Sandbox test", purpose: str = "0",
                   **attrs) -> str:
    """Create Project with the super token (JSON attributes); returns the 32-char token."""
    data = [{"project_title": title, "purpose": purpose, **attrs}]
    fields = {"token": sandbox.super_token, "content": "project", "format": "json", "data": json.dumps(data)}
    if odm is not None:
        fields["odm"] = odm
    r = requests.post(sandbox.url, data=fields, timeout=120)
    assert r.status_code == 200, r.text
    return r.text


def create_from_corpus(sandbox, path: Path) -> str:
    return create_project(sandbox, path.read_bytes(), title=path.stem)


def api(sandbox, token: str, content: str, **fields):
    """A JSON call that must succeed; returns the decoded body."""
    r = requests.post(sandbox.url, data={"token": token, "content": content, "format": "json", **fields},
                      timeout=60)
    assert r.status_code == 200, r.text
    return r.json() if r.text else None


def delete_project(sandbox, token: str) -> None:
    base = sandbox.url.removesuffix("api/")
    r = requests.post(base + "_sandbox/delete_project",
                      data={"token": sandbox.super_token, "project_token": token}, timeout=60)
    assert r.status_code == 200, r.text


# -- small hand-written projects -----------------------------------------------------
HEAD = ('<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:redcap="https://projectredcap.org" '
        'ODMVersion="1.3.1" FileOID="000-00-0000" FileType="Snapshot" Description="Mini" '
        'AsOfDateTime="2025-01-01T10:00:00" CreationDateTime="2025-01-01T10:00:00" SourceSystem="REDCap" '
        'SourceSystemVersion="15.7.6">\n')


def item_def(name: str, field_type: str = "text", *, data_type: str = "text", extra: str = "",
             label: str | None = None, codelist: bool = False) -> str:
    ref = f'<CodeListRef CodeListOID="{name}.choices"/>' if codelist else ""
    return (f'<ItemDef OID="{name}" Name="{name}" DataType="{data_type}" Length="999" redcap:Variable="{name}" '
            f'redcap:FieldType="{field_type}"{extra}><Question><TranslatedText>{label or name}</TranslatedText>'
            f"</Question>{ref}</ItemDef>\n")


def mini_project(items: list[str], fields: list[str], records: str = "", *, code_lists: str = "",
                 events: str = "", global_extra: str = "", form: str = "form_1") -> str:
    """A classic (or, with ``events``, longitudinal) project with one form and the given ItemDefs."""
    refs = "".join(f'<ItemRef ItemOID="{f}" Mandatory="No" redcap:Variable="{f}"/>' for f in fields)
    clinical = f'<ClinicalData StudyOID="Project.Mini" MetaDataVersionOID="Metadata.Mini_2025-01-01_1000">\n{records}</ClinicalData>\n' if records else ""
    return (HEAD + '<Study OID="Project.Mini">\n<GlobalVariables>\n<StudyName>Mini</StudyName>\n'
            '<StudyDescription>x</StudyDescription>\n<ProtocolName>Mini</ProtocolName>\n' + global_extra +
            '</GlobalVariables>\n<MetaDataVersion OID="Metadata.Mini_2025-01-01_1000" Name="Mini" '
            'redcap:RecordIdField="record_id">\n' + events +
            f'<FormDef OID="Form.{form}" Name="Form 1" Repeating="No" redcap:FormName="{form}">'
            f'<ItemGroupRef ItemGroupOID="{form}.record_id" Mandatory="No"/></FormDef>\n'
            f'<ItemGroupDef OID="{form}.record_id" Name="Form 1" Repeating="No">{refs}</ItemGroupDef>\n'
            + "".join(items) + code_lists + "</MetaDataVersion>\n</Study>\n" + clinical + "</ODM>")


def subject(record: str, values: dict[str, str], *, event: str | None = None, form: str = "form_1") -> str:
    items = "".join(f'<ItemData ItemOID="{k}" Value="{v}"/>' for k, v in values.items())
    body = (f'<FormData FormOID="Form.{form}" FormRepeatKey="1"><ItemGroupData ItemGroupOID="{form}.record_id" '
            f'ItemGroupRepeatKey="1">{items}</ItemGroupData></FormData>')
    if event:
        body = (f'<StudyEventData StudyEventOID="Event.{event}" StudyEventRepeatKey="1" '
                f'redcap:UniqueEventName="{event}">{body}</StudyEventData>')
    return f'<SubjectData SubjectKey="{record}" redcap:RecordIdField="record_id">{body}</SubjectData>\n'
