"""``content=record`` export: REDCap's flat and EAV rows (``Records::getData``).

``Columns`` decides the export columns from the request exactly as REDCap
does (record id only when asked for or nothing was, the pseudo-columns only
with it, checkboxes expanded, metadata order whatever the request order);
``flat_values`` fills one row with REDCap's defaults (``""`` for fields not
in the row, ``"0"`` for unchecked boxes and untouched form status of
designated forms) in raw or label form. ``eav_rows`` gives the EAV view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from harness.odm.model import DAG_FIELD, SURVEY_ID_FIELD, Field, checkbox_code
from harness.sandbox.data_store import StoredRecord
from harness.sandbox.design import TIMESTAMP, Design
from harness.sandbox.dictionary import TRUEFALSE, YESNO
from harness.sandbox.exceptions import ApiError
from harness.sandbox.rows import Row


def _quoted(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def clean_label(text: str) -> str:
    """Header labels: tags stripped, ``"`` as ``'``, line breaks as two spaces."""
    text = re.sub(r"<[^>]*>", "", text or "")
    return text.replace('"', "'").replace("\r\n", "  ").replace("\n", "  ").replace("\r", "  ").strip()


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # pk, event, rep_form, rep_inst, dag, survey_id, timestamp, field, checkbox
    field: Field | None = None
    code: str = ""
    form: str = ""

    def header(self, design: Design) -> str:
        f = self.field
        return {
            "event": "Event Name", "rep_form": "Repeat Instrument", "rep_inst": "Repeat Instance",
            "dag": "Data Access Group", "survey_id": "Survey Identifier", "timestamp": "Survey Timestamp",
        }.get(self.kind) or (
            f"{clean_label(f.label)} (choice={clean_label(_choice_label(f, self.code))})" if self.kind == "checkbox"
            else clean_label(f.label))


def _choice_label(f: Field, code: str) -> str:
    for c in f.choices:
        if c.code == code:
            return c.label
    return code


def select_fields(design: Design, fields: list[str], forms: list[str]) -> tuple[list[Field], bool]:
    """The fields an export asks for, and whether the record id column is shown."""
    known = design.field_map
    bad = [f for f in fields if f not in known]
    if bad:
        raise ApiError(f'The following values in the parameter "fields" are not valid: {_quoted(bad)}')
    bad_forms = [f for f in forms if f not in design.form_map]
    if bad_forms:
        raise ApiError(f'The following values in the parameter "forms" are not valid: {_quoted(bad_forms)}')
    if not fields and not forms:
        return [f for f in design.fields if f.field_type != "descriptive"], True
    wanted = set(fields) | {f.name for f in design.fields if f.form in set(forms)}
    chosen = [f for f in design.fields if f.name in wanted and f.field_type != "descriptive"]
    if not chosen:
        raise ApiError('The variables provided in the parameter "fields" are not valid fields that contain data. '
                       "This might happen if you only provided variables for Descriptive fields.")
    return chosen, design.pk in wanted


def check_events(design: Design, events: list[str]) -> set[int] | None:
    if not events:
        return None
    if not design.longitudinal:
        return None
    bad = [e for e in events if e not in design.event_by_unique]
    if bad:
        raise ApiError(f'The following values in the parameter "events" are not valid: {_quoted(bad)}')
    return {design.event_by_unique[e].event_id for e in events}


def columns(design: Design, chosen: list[Field], with_pk: bool, *, survey_fields: bool,
            dags: bool) -> list[Column]:
    cols: list[Column] = []
    surveys = set(design.surveys) if survey_fields else set()
    if with_pk:
        cols.append(Column(design.pk, "pk", design.field_map.get(design.pk)))
        if design.longitudinal:
            cols.append(Column("redcap_event_name", "event"))
        if design.has_repeating:
            cols.append(Column("redcap_repeat_instrument", "rep_form"))
            cols.append(Column("redcap_repeat_instance", "rep_inst"))
        if dags and design.dags:
            cols.append(Column(DAG_FIELD, "dag"))
        if surveys:
            cols.append(Column(SURVEY_ID_FIELD, "survey_id"))
    seen_forms: set[str] = set()
    for f in chosen:
        if f.form not in seen_forms:
            seen_forms.add(f.form)
            if f.form in surveys:
                cols.append(Column(f"{f.form}{TIMESTAMP}", "timestamp", form=f.form))
        if f.name == design.pk and with_pk:
            continue
        if f.field_type == "checkbox":
            for code_name, (cf, code) in design.checkbox_columns.items():
                if cf.name == f.name:
                    cols.append(Column(code_name, "checkbox", f, code))
        else:
            cols.append(Column(f.name, "field", f))
    return cols


def _label(f: Field, value: str) -> str:
    if value == "":
        return ""
    if f.field_type in ("radio", "select", "sql") or f.is_form_status:
        return _choice_label(f, value)
    if f.field_type == "yesno":
        return _choice_label(Field("x", "", "radio", choices=YESNO), value)
    if f.field_type == "truefalse":
        return _choice_label(Field("x", "", "radio", choices=TRUEFALSE), value)
    return value


def _numeric(f: Field) -> bool:
    return f.field_type == "calc" or (f.field_type == "text" and (
        f.validation in ("float", "int") or f.validation.startswith("number")))


def flat_values(design: Design, stored: StoredRecord, row: Row, cols: list[Column], *, label: bool,
                checkbox_label: bool, blank_gray: bool, doc_names: dict[str, str], decimal: str = "") -> list:
    """One exported row, in column order (the repeat instance as int or "")."""
    forms = set(design.row_forms(row.event, row.repeat_form))
    out: list = []
    for c in cols:
        k = c.kind
        if k == "pk":
            out.append(stored.name)
        elif k == "event":
            out.append(design.event_label(row.event) if label else row.event.unique_name)
        elif k == "rep_form":
            rf = row.repeat_form
            out.append(design.form_map[rf].label if label and rf in design.form_map else rf)
        elif k == "rep_inst":
            out.append(row.instance if row.instance is not None else "")
        elif k == "dag":
            dag = design.dag_by_id.get(stored.dag_id) if stored.dag_id else None
            out.append("" if dag is None else (dag.name if label else dag.unique_name))
        elif k in ("survey_id", "timestamp"):
            out.append("")
        elif c.field.form not in forms:
            out.append("")
        elif k == "checkbox":
            checked = c.code in row.values.get(c.field.name, ())
            if checkbox_label:
                out.append(_choice_label(c.field, c.code) if checked else "")
            elif label:
                out.append("Checked" if checked else "Unchecked")
            else:
                out.append("1" if checked else "0")
        else:
            f = c.field
            value = row.values.get(f.name, "")
            if f.is_form_status and value == "" and not blank_gray:
                value = "0"
            if f.field_type == "file" and value:
                value = doc_names.get(value, "")
            elif decimal and value and _numeric(f):
                value = value.replace("." if decimal == "," else ",", decimal)
            out.append(_label(f, value) if label else value)
    return out


def eav_rows(design: Design, stored: StoredRecord, rows: list[Row], chosen: set[str], *,
             label: bool) -> Iterator[dict]:
    """REDCap's EAV export: one entry per stored value (checkboxes: one per checked code)."""
    for row in rows:
        forms = set(design.row_forms(row.event, row.repeat_form))
        for f in design.fields:
            if f.name not in chosen or f.name not in row.values or f.form not in forms:
                continue
            values = row.values[f.name]
            for value in (values if isinstance(values, list) else [values]):
                item = {"record": stored.name}
                if design.longitudinal:
                    item["redcap_event_name"] = row.event.unique_name
                if design.has_repeating:
                    item["redcap_repeat_instrument"] = row.repeat_form
                    item["redcap_repeat_instance"] = row.instance if row.instance is not None else ""
                item["field_name"] = f.name
                item["value"] = _label(f, value) if label and f.field_type != "checkbox" else value
                yield item


__all__ = ["Column", "columns", "select_fields", "check_events", "flat_values", "eav_rows", "checkbox_code"]
