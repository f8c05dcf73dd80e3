"""Handlers: read parameters, call the backend, serialise the result.

Every handler has the signature ``(backend, session, params) -> Reply`` and
no logic of its own beyond REDCap's wire formats (which JSON separator, which
XML root, trimmed or not). ``urls.py`` maps (content, action) to them.
"""

from __future__ import annotations

import mimetypes
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from harness.odm import writer
from harness.sandbox import exceptions as exc
from harness.sandbox.design import Session
from harness.sandbox.exceptions import CONTENT_TYPES, XML_PROLOG
from harness.sandbox.models import FileDownload, Flags, SandboxBackend
from harness.sandbox.params import Params
from harness.sandbox.serialize import (
    array_to_csv, cdata, csv_table, fputcsv, json_rows, parse_data, parse_one, parse_xml_root, php_json, xml_items,
)

SPOOL = 8 << 20


@dataclass
class Reply:
    """A 200 response: bytes, or a spooled file sent with its length."""

    body: bytes | BinaryIO
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


def text(body: str, fmt: str) -> Reply:
    return Reply(body.encode("utf-8"), f"{CONTENT_TYPES.get(fmt, 'text/xml')}; charset=utf-8")


def count(n: int, p: Params) -> Reply:
    """A bare number, whatever the format (REDCap sends counts unwrapped)."""
    return text(str(n), p.return_format)


def rows_reply(rows: list[Mapping], p: Params, *, root: str = "items", item: str = "item",
               header: list[str] | None = None, json_sep: str = ",") -> Reply:
    fmt = p.format
    if fmt == "json":
        return text(json_rows(rows, sep=json_sep), "json")
    if fmt == "csv":
        return text(array_to_csv(rows, header), "csv")
    return text(xml_items(rows, root, item), "xml")


def data_rows(p: Params) -> list[dict]:
    if not p.has("data") or p.get("data").strip() == "":
        raise exc.NoDataProvided()
    return parse_data(p.get("data"), p.format)


def file_reply(f: FileDownload) -> Reply:
    ctype = f'{f.mime_type}; name="{f.name}"'
    if f.mime_type.startswith("text/"):
        ctype += ";charset=UTF-8"
    return Reply(f.content, ctype, {"Content-Security-Policy": "script-src 'none'"})


def _spool_text(chunks: Iterable[str]) -> BinaryIO:
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+b")
    buf: list[str] = []
    size = 0
    for chunk in chunks:
        buf.append(chunk)
        size += len(chunk)
        if size > 1 << 16:
            out.write("".join(buf).encode("utf-8"))
            buf, size = [], 0
    out.write("".join(buf).encode("utf-8"))
    out.seek(0)
    return out


# -- version and project --------------------------------------------------------------
def export_version(b: SandboxBackend, s: Session | None, p: Params) -> Reply:
    return text(b.export_version(), "csv")


def create_project(b: SandboxBackend, p: Params) -> Reply:
    fmt = p.format
    data = p.get("data")
    try:
        if fmt == "xml":
            root = parse_xml_root(data)
            items = [c for c in root if isinstance(c.tag, str)]
            if root.tag != "item" and len(items) > 1 and all(len(c) for c in items):
                raise exc.OneProjectAtATime()
            attrs = parse_one(data, fmt)
        elif fmt == "csv":
            rows = parse_data(data, fmt)
            if len(rows) > 1:
                raise exc.OneProjectAtATime()
            attrs = rows[0] if rows else {}
        else:
            attrs = parse_one(data, fmt)
    except exc.OneProjectAtATime:
        raise
    except exc.ApiError:
        raise exc.DataNotInFormat() from None
    if not attrs:
        raise exc.DataNotInFormat()
    odm = p.stream("odm") if p.has("odm") and p.size("odm") > 0 else None
    token = b.create_project(p.token, {k: str(v) for k, v in attrs.items()}, odm)
    return text(token, fmt)


def export_project_info(b, s, p) -> Reply:
    info = b.export_project_info(s)
    fmt = p.format
    if fmt == "json":
        return text(php_json(info), "json")
    if fmt == "csv":
        return text(array_to_csv([info]), "csv")
    body = "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in info.items())
    return text(f"{XML_PROLOG}\n<items>{body}</items>\n", "xml")


def import_project_settings(b, s, p) -> Reply:
    if not p.get("data").strip():
        raise exc.NoDataProvided()
    return count(b.import_project_settings(s, parse_one(p.get("data"), p.format)), p)


def export_project_xml(b, s, p) -> Reply:
    flags = Flags(metadata_only=p.flag("returnMetadataOnly"), export_files=p.flag("exportFiles"),
                  export_survey_fields=p.flag("exportSurveyFields"), export_dags=p.flag("exportDataAccessGroups"))
    xml = b.export_project_xml(s, flags, records=p.array("records", split_commas=True),
                               fields=p.array("fields", split_commas=True),
                               events=p.array("events", split_commas=True), filter_logic=p.get("filterLogic"))
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+b")
    options = replace(xml.flags, fields=xml.fields)
    writer.write_project(out, xml.metadata, xml.records, options=options, now=xml.now, version=b.version)
    out.seek(0)
    return Reply(out, "text/xml; charset=utf-8")


# -- records ------------------------------------------------------------------------------
def _decimal(p: Params) -> str:
    return p.get("decimalCharacter") if p.get("decimalCharacter") in (",", ".") else ""


def export_records(b, s, p) -> Reply:
    eav = p.get("type") == "eav"
    exported = b.export_records(
        s, records=p.array("records", split_commas=True), fields=p.array("fields", split_commas=True),
        forms=p.array("forms", split_commas=True), events=p.array("events", split_commas=True),
        raw_or_label=p.raw_or_label, export_checkbox_label=p.flag("exportCheckboxLabel"),
        export_survey_fields=p.flag("exportSurveyFields"), export_dags=p.flag("exportDataAccessGroups"),
        filter_logic=p.get("filterLogic"), blank_gray=p.flag("exportBlankForGrayFormStatus"), eav=eav,
        date_begin=p.get("dateRangeBegin"), date_end=p.get("dateRangeEnd"), decimal=_decimal(p))
    return _flat_reply(b, s, p, exported, eav)


def export_report(b, s, p) -> Reply:
    exported = b.export_report(s, p.get("report_id"), raw_or_label=p.raw_or_label,
                               export_checkbox_label=p.flag("exportCheckboxLabel"), decimal=_decimal(p))
    return _flat_reply(b, s, p, exported, False)


def _flat_reply(b, s, p, exported, eav: bool) -> Reply:
    fmt = p.format
    names = ["record", "field_name", "value"] if eav else [c.name for c in exported.columns]

    def as_dicts():
        for row in exported.rows:
            yield row if eav else dict(zip(names, row))

    if fmt == "json":
        def chunks():
            yield "["
            for i, row in enumerate(as_dicts()):
                yield ("," if i else "") + php_json(row)
            yield "]"
        return Reply(_spool_text(chunks()), "application/json; charset=utf-8")
    if fmt == "csv":
        delimiter = {"tab": "\t"}.get(p.get("csvDelimiter"), p.get("csvDelimiter") or ",")
        if delimiter not in (",", ";", "\t", "|", "^"):
            delimiter = ","

        def csv_chunks():
            first = True
            for row in exported.rows:
                if first:
                    if eav:
                        header = list(row.keys())
                    elif p.raw_or_label_headers == "label":
                        header = exported.labels
                    else:
                        header = names
                    yield fputcsv(header, delimiter)
                    first = False
                yield fputcsv(list(row.values()) if eav else row, delimiter)
            if first:
                yield "\n"
        return Reply(_spool_text(csv_chunks()), "text/csv; charset=utf-8")

    def xml_chunks():
        yield f"{XML_PROLOG}\n<records>\n"
        for row in as_dicts():
            yield "<item>" + "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in row.items()) + "</item>\n"
        yield "</records>"
    return Reply(_spool_text(xml_chunks()), "text/xml; charset=utf-8")


def import_records(b, s, p) -> Reply:
    rows = data_rows(p)
    returned = p.get("returnContent") or "count"
    if returned not in ("count", "ids", "auto_ids", "nothing"):
        returned = "count"
    auto_number = p.flag("forceAutoNumber")
    names, auto = b.import_records(s, rows, eav=p.get("type") == "eav",
                                   overwrite=p.get("overwriteBehavior") == "overwrite",
                                   force_auto_number=auto_number, date_format=p.date_format)
    fmt = p.return_format
    if p.flag("backgroundProcess"):
        return text({"json": '{"success":true}', "csv": "success\ntrue"}.get(fmt, "<success>true</success>"), fmt)
    if returned == "auto_ids" and not auto_number:
        returned = "count"
    if returned == "nothing":
        return text("", fmt)
    if returned == "count":
        if fmt == "json":
            return text(f'{{"count": {len(names)}}}', fmt)
        if fmt == "xml":
            return text(f"{XML_PROLOG}<count>{len(names)}</count>", fmt)
        return text(str(len(names)), fmt)
    if returned == "ids":
        if fmt == "json":
            return text(php_json(names), fmt)
        if fmt == "xml":
            return text(XML_PROLOG + "<ids>" + "".join(f"<id>{n}</id>" for n in names) + "</ids>", fmt)
        return text("\n".join(["id", *names]).strip(), fmt)
    pairs = [f"{new},{old}" for new, old in auto.items()]
    if fmt == "json":
        return text(php_json(pairs), fmt)
    if fmt == "xml":
        return text(XML_PROLOG + "<ids>" + "".join(f"<id>{x}</id>" for x in pairs) + "</ids>", fmt)
    return text("\n".join(["id,original_id", *pairs]).strip(), fmt)


def delete_records(b, s, p) -> Reply:
    if p.has("records") and not p.is_array("records"):
        raise exc.RecordsNotArray()
    n = b.delete_records(s, p.array("records"), arm=p.get("arm"), event=p.get("event"),
                         instrument=p.get("instrument"), repeat_instance=p.get("repeat_instance"))
    return count(n, p)


def rename_record(b, s, p) -> Reply:
    return text(b.rename_record(s, p.get("record"), p.get("new_record_name"), p.get("arm")), p.return_format)


def generate_next_record_name(b, s, p) -> Reply:
    return text(b.generate_next_record_name(s), p.return_format)


# -- metadata, instruments, field names ---------------------------------------------------
def export_metadata(b, s, p) -> Reply:
    from harness.sandbox.dictionary import DICTIONARY_COLUMNS
    rows = b.export_metadata(s, p.array("fields", split_commas=True), p.array("forms", split_commas=True))
    fmt = p.format
    if fmt == "json":
        return text(json_rows(rows, sep=",\n"), "json")
    if fmt == "csv":
        return text(csv_table(list(DICTIONARY_COLUMNS), ([r[c] for c in DICTIONARY_COLUMNS] for r in rows)), "csv")
    return text(xml_items(rows, "records", "item"), "xml")


def import_metadata(b, s, p) -> Reply:
    return count(b.import_metadata(s, data_rows(p)), p)


def export_instruments(b, s, p) -> Reply:
    rows = b.export_instruments(s)
    if p.format == "csv":
        body = "instrument_name,instrument_label\n" + "".join(
            f'{r["instrument_name"]},"{r["instrument_label"].replace(chr(34), chr(34) * 2)}"\n' for r in rows)
        return text(body, "csv")
    return rows_reply(rows, p, root="instruments")


def export_field_names(b, s, p) -> Reply:
    rows = b.export_field_names(s, p.get("field"))
    fmt = p.format
    if fmt == "csv":
        return text(csv_table(["original_field_name", "choice_value", "export_field_name"],
                              ([r["original_field_name"], r["choice_value"], r["export_field_name"]] for r in rows)),
                    "csv")
    if fmt == "xml":
        return text(xml_items(rows, "fields", "field"), "xml")
    return rows_reply(rows, p)


# -- arms, events, mappings, repeating -------------------------------------------------------
def export_arms(b, s, p) -> Reply:
    return rows_reply(b.export_arms(s, p.array("arms", split_commas=True)), p, root="arms",
                      header=["arm_num", "name"])


def import_arms(b, s, p) -> Reply:
    return count(b.import_arms(s, data_rows(p), p.get("override") == "1"), p)


def delete_arms(b, s, p) -> Reply:
    return count(b.delete_arms(s, p.array("arms")), p)


def export_events(b, s, p) -> Reply:
    return rows_reply(b.export_events(s, p.array("arms", split_commas=True)), p, root="events")


def import_events(b, s, p) -> Reply:
    return count(b.import_events(s, data_rows(p), p.get("override") == "1"), p)


def delete_events(b, s, p) -> Reply:
    return count(b.delete_events(s, p.array("events")), p)


def export_form_event_mapping(b, s, p) -> Reply:
    return rows_reply(b.export_form_event_mapping(s, p.array("arms", split_commas=True)), p,
                      header=["arm_num", "unique_event_name", "form"])


def import_form_event_mapping(b, s, p) -> Reply:
    return count(b.import_form_event_mapping(s, data_rows(p)), p)


def export_repeating(b, s, p) -> Reply:
    rows = b.export_repeating(s)
    if p.format == "csv":
        header = list(rows[0].keys())
        body = ",".join(header) + "\n" + "".join(",".join(str(r[k]) for k in header) + "\n" for r in rows)
        return text(body, "csv")
    return rows_reply(rows, p, root="repeatingFormsEvents")


def import_repeating(b, s, p) -> Reply:
    return count(b.import_repeating(s, data_rows(p)), p)


# -- DAGs, users, roles ------------------------------------------------------------------------
def export_dags(b, s, p) -> Reply:
    return rows_reply(b.export_dags(s), p, root="dags",
                      header=["data_access_group_name", "unique_group_name", "data_access_group_id"])


def import_dags(b, s, p) -> Reply:
    return count(b.import_dags(s, data_rows(p)), p)


def delete_dags(b, s, p) -> Reply:
    return count(b.delete_dags(s, p.array("dags")), p)


def switch_dag(b, s, p) -> Reply:
    return text(b.switch_dag(s, p.get("dag")), p.return_format)


def export_user_dag_mapping(b, s, p) -> Reply:
    return rows_reply(b.export_user_dag_mapping(s), p, header=["username", "redcap_data_access_group"])


def import_user_dag_mapping(b, s, p) -> Reply:
    return count(b.import_user_dag_mapping(s, data_rows(p)), p)


def _flatten_forms(rows: list[dict]) -> list[dict]:
    """CSV spells nested form rights as ``form:right,form:right``."""
    out = []
    for r in rows:
        r = dict(r)
        for key in ("forms", "forms_export"):
            if isinstance(r.get(key), dict):
                r[key] = ",".join(f"{k}:{v}" for k, v in r[key].items())
        out.append(r)
    return out


def export_users(b, s, p) -> Reply:
    rows = b.export_users(s)
    return rows_reply(_flatten_forms(rows) if p.format == "csv" else rows, p, root="users")


def import_users(b, s, p) -> Reply:
    return count(b.import_users(s, data_rows(p)), p)


def delete_users(b, s, p) -> Reply:
    return count(b.delete_users(s, p.array("users")), p)


def export_user_roles(b, s, p) -> Reply:
    rows = b.export_user_roles(s)
    return rows_reply(_flatten_forms(rows) if p.format == "csv" else rows, p, root="roles")


def import_user_roles(b, s, p) -> Reply:
    return count(b.import_user_roles(s, data_rows(p)), p)


def delete_user_roles(b, s, p) -> Reply:
    return count(b.delete_user_roles(s, p.array("roles")), p)


def export_user_role_mapping(b, s, p) -> Reply:
    return rows_reply(b.export_user_role_mapping(s), p,
                      header=["username", "unique_role_name", "data_access_group"])


def import_user_role_mapping(b, s, p) -> Reply:
    return count(b.import_user_role_mapping(s, data_rows(p)), p)


# -- files ------------------------------------------------------------------------------------------
def export_file(b, s, p) -> Reply:
    return file_reply(b.export_file(s, p.get("record"), p.get("field"), p.get("event"), p.get("repeat_instance")))


def _upload(p: Params):
    part = p.file("file")
    if part is None:
        raise exc.ApiError("No valid file was uploaded")
    name = part.filename or "file"
    mime = part.content_type or ""
    if not mime or mime == "application/octet-stream":
        # Clients rarely send a type (PyCap does not); REDCap goes by the extension then.
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return name, mime, part.stream().read()


def import_file(b, s, p) -> Reply:
    name, mime, content = _upload(p)
    b.import_file(s, p.get("record"), p.get("field"), p.get("event"), p.get("repeat_instance"), name, mime, content)
    return text("", p.return_format)


def delete_file(b, s, p) -> Reply:
    b.delete_file(s, p.get("record"), p.get("field"), p.get("event"), p.get("repeat_instance"))
    return text("", p.return_format)


def create_folder(b, s, p) -> Reply:
    folder = b.create_folder(s, p.get("name"), p.get("folder_id"), p.get("dag_id"), p.get("role_id"))
    return rows_reply([{"folder_id": folder}], p, root="items")


def list_repository(b, s, p) -> Reply:
    rows = b.list_repository(s, p.get("folder_id"))
    if p.format == "csv":
        return text(array_to_csv([{"folder_id": r.get("folder_id", ""), "doc_id": r.get("doc_id", ""),
                                   "name": r["name"]} for r in rows], ["folder_id", "doc_id", "name"]), "csv")
    return rows_reply(rows, p, root="items")


def import_repository_file(b, s, p) -> Reply:
    name, mime, content = _upload(p)
    b.import_repository_file(s, name, mime, content, p.get("folder_id"))
    return text("", p.return_format)


def export_repository_file(b, s, p) -> Reply:
    return file_reply(b.export_repository_file(s, p.get("doc_id")))


def delete_repository_file(b, s, p) -> Reply:
    b.delete_repository_file(s, p.get("doc_id"))
    return text("", p.return_format)


# -- logging, surveys, pdf ---------------------------------------------------------------------------------
def export_log(b, s, p) -> Reply:
    rows = b.export_log(s, logtype=p.get("logtype"), user=p.get("user"), record=p.get("record"),
                        dag=p.get("dag"), begin=p.get("beginTime"), end=p.get("endTime"))
    return rows_reply(rows, p, root="items", header=["timestamp", "username", "action", "details", "record"])


def survey_link(b, s, p) -> Reply:
    return text(b.survey_link(s, p.get("record"), p.get("instrument"), p.get("event"), p.get("repeat_instance")),
                p.return_format)


def survey_queue_link(b, s, p) -> Reply:
    return text(b.survey_queue_link(s, p.get("record")), p.return_format)


def survey_access_code(b, s, p) -> Reply:
    return text(b.survey_access_code(s, p.get("record"), p.get("instrument"), p.get("event"),
                                      p.get("repeat_instance")), p.return_format)


def survey_return_code(b, s, p) -> Reply:
    return text(b.survey_return_code(s, p.get("record"), p.get("instrument"), p.get("event"),
                                      p.get("repeat_instance")), p.return_format)


def participant_list(b, s, p) -> Reply:
    return rows_reply(b.participant_list(s, p.get("instrument"), p.get("event")), p, root="items")


def export_pdf(b, s, p) -> Reply:
    return file_reply(b.export_pdf(s, record=p.get("record"), event=p.get("event"), instrument=p.get("instrument")))
