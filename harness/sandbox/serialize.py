"""REDCap's wire formats, both ways: PHP's JSON and ``fputcsv``, REDCap's XML.

Output helpers reproduce the byte-level habits clients depend on (§5 of the
API notes): ``\\/`` escapes, ``,`` vs ``,\\n`` JSON separators, ``fputcsv``
quoting of values with spaces, trimmed ``arrayToCsv`` with its TAB guard,
``<![CDATA[…]]>`` items. Input helpers decode the ``data`` parameter of an
import the way ``RestUtility::processRequest`` does, raising ApiError texts.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping

from lxml import etree

from harness.sandbox.exceptions import XML_PROLOG, ApiError, php_json

__all__ = [
    "php_json", "json_rows", "fputcsv", "csv_table", "array_to_csv", "xml_items", "cdata",
    "parse_data", "parse_one", "parse_xml_root", "to_text",
]


# -- output ------------------------------------------------------------------
def json_rows(rows: Iterable[Mapping], *, sep: str = ",") -> str:
    return "[" + sep.join(php_json(r) for r in rows) + "]"


_QUOTE_CHARS = frozenset(',"\n\r\t ')


def fputcsv(values: Iterable, delimiter: str = ",") -> str:
    """One line as PHP ``fputcsv($fh, $row, $delim, '"', '')`` writes it (with its ``\\n``)."""
    out = []
    for v in values:
        s = to_text(v)
        if s and (delimiter in s or any(c in _QUOTE_CHARS for c in s)):
            s = '"' + s.replace('"', '""') + '"'
        out.append(s)
    return delimiter.join(out) + "\n"


def csv_table(header: list[str], rows: Iterable[Iterable], *, delimiter: str = ",") -> str:
    return fputcsv(header, delimiter) + "".join(fputcsv(r, delimiter) for r in rows)


def array_to_csv(rows: list[Mapping], header: list[str] | None = None) -> str:
    """``arrayToCsv``: header from the first row, trimmed, ``= - + @`` values TAB-prefixed."""
    if header is None:
        header = list(rows[0].keys()) if rows else []

    def guard(v):
        return "\t" + v if isinstance(v, str) and v[:1] in ("=", "-", "+", "@") else v

    text = fputcsv(header) + "".join(fputcsv([guard(r.get(k, "")) for k in header]) for r in rows)
    return text.strip()


def cdata(value) -> str:
    s = to_text(value)
    return "<![CDATA[" + s.replace("]]>", "]]]]><![CDATA[>") + "]]>" if s != "" else ""


def xml_items(rows: Iterable[Mapping], root: str = "records", item: str = "item", *,
              prolog_newline: bool = True) -> str:
    """``<root>\\n<item><k><![CDATA[v]]></k>…</item>\\n…</root>``, empty values as ``<k></k>``."""
    out = [XML_PROLOG, "\n" if prolog_newline else "", f"<{root}>\n"]
    for row in rows:
        out.append(f"<{item}>")
        for k, v in row.items():
            if isinstance(v, Mapping):
                inner = "".join(f"<{ik}>{cdata(iv)}</{ik}>" for ik, iv in v.items())
                out.append(f"<{k}>{inner}</{k}>")
            else:
                out.append(f"<{k}>{cdata(v)}</{k}>")
        out.append(f"</{item}>\n")
    out.append(f"</{root}>")
    return "".join(out)


# -- input -------------------------------------------------------------------
def to_text(value) -> str:
    """A decoded value as PHP would turn it into a string."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, (dict, list)):
        return php_json(value)
    return str(value)


def _json_error(detail: str) -> ApiError:
    return ApiError(
        "The data being imported is not formatted correctly. PHP error from JSON decoder: "
        f"{detail}. The JSON must be in an array, as in [{{ ... }}]."
    )


def _parse_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        raise _json_error("Syntax error") from None


def _parse_csv(text: str) -> list[dict[str, str]]:
    """``csvToArray``: trimmed, blank header columns dropped, rows padded or cut."""
    reader = csv.reader(io.StringIO(text.strip()), strict=False)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ApiError(f"The data being imported is not formatted correctly. Error: {exc}") from None
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    keep = [i for i, h in enumerate(header) if h != ""]
    out = []
    for row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        row = row + [""] * (len(header) - len(row))
        out.append({header[i]: row[i] for i in keep})
    return out


_XML_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def parse_xml_root(text: str):
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise ApiError("The data being imported is not formatted correctly. Error: DOCTYPE is not allowed")
    try:
        parser = etree.XMLParser(**_XML_PARSER)
        return etree.fromstring(text.strip().encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise ApiError(f"The data being imported is not formatted correctly. Error: {exc.msg}") from None


def _xml_item(el) -> dict:
    row = {}
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if len(child):
            row[child.tag] = {c.tag: (c.text or "") for c in child if isinstance(c.tag, str)}
        else:
            row[child.tag] = child.text or ""
    return row


def parse_data(text: str, fmt: str) -> list[dict]:
    """The rows of an import's ``data`` (values as PHP strings)."""
    if fmt == "json":
        data = _parse_json(text)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise _json_error("Syntax error")
        return [{str(k): v if isinstance(v, dict) else to_text(v) for k, v in r.items()} for r in data]
    if fmt == "csv":
        return _parse_csv(text)
    root = parse_xml_root(text)
    items = [c for c in root if isinstance(c.tag, str)]
    if items and all(len(c) or c.tag == "item" for c in items) and any(len(c) for c in items):
        return [_xml_item(c) for c in items]
    return [_xml_item(root)] if len(root) else []


def parse_one(text: str, fmt: str) -> dict:
    """A single object (``project_settings``, create-project attributes); {} if none."""
    if fmt == "json":
        data = _parse_json(text)
        if isinstance(data, list):
            data = data[0] if data else {}
        if not isinstance(data, dict):
            raise _json_error("Syntax error")
        return {str(k): to_text(v) for k, v in data.items()}
    rows = parse_data(text, fmt)
    return rows[0] if rows else {}
