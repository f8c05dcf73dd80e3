"""The data dictionary: ``Field`` ⇄ ``redcap_metadata`` rows ⇄ the API's 18 columns.

REDCap keeps one ``redcap_metadata`` row per variable, overloading
``element_enum`` with choices, a calc equation, slider labels or an ontology
depending on the type, and derives everything ODM shows (DataType, Length,
``<form>_complete``) from those columns. This module does the same
conversions in both directions, plus ``MetaData::error_checking`` for imports.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping

from harness.odm.model import Attachment, Choice, Field, parse_choices
from harness.odm.writer import FORM_STATUS_CHOICES, form_status_field, with_odm_facts
from harness.sandbox.exceptions import ApiError

#: The 18 columns of the API data dictionary, in order.
DICTIONARY_COLUMNS = (
    "field_name", "form_name", "section_header", "field_type", "field_label",
    "select_choices_or_calculations", "field_note", "text_validation_type_or_show_slider_number",
    "text_validation_min", "text_validation_max", "identifier", "branching_logic", "required_field",
    "custom_alignment", "question_number", "matrix_group_name", "matrix_ranking", "field_annotation",
)

#: Back-end type -> the name the dictionary shows, and back.
_TYPE_OUT = {"select": "dropdown", "textarea": "notes"}
_TYPE_IN = {v: k for k, v in _TYPE_OUT.items()}
_VALIDATION_OUT = {"int": "integer", "float": "number", "date": "date_ymd", "datetime": "datetime_ymd",
                   "datetime_seconds": "datetime_seconds_ymd"}
_VALIDATION_IN = {"integer": "int", "number": "float", "date": "date_ymd", "datetime": "datetime_ymd",
                  "datetime_seconds": "datetime_seconds_ymd"}
CHOICE_FIELD_TYPES = ("radio", "select", "checkbox", "sql")
FIELD_TYPES = ("text", "textarea", "calc", "select", "radio", "checkbox", "yesno", "truefalse", "file",
               "slider", "descriptive", "sql")
_VALID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

STATUS_CHOICES = FORM_STATUS_CHOICES
YESNO = (Choice("1", "Yes"), Choice("0", "No"))
TRUEFALSE = (Choice("1", "True"), Choice("0", "False"))

#: Validation types whose data type is "number" (REDCap's redcap_validation_types).
NUMBER_VALIDATIONS = frozenset({"float", "number_1dp", "number_2dp", "number_3dp", "number_4dp", "number"})


def normalize_validation(name: str) -> str:
    """Legacy back-end names (``date``, ``datetime``…) as the dictionary import rewrites them."""
    return {"date": "date_ymd", "datetime": "datetime_ymd", "datetime_seconds": "datetime_seconds_ymd"}.get(
        name, name)


def complete_field(form: str) -> Field:
    """The ``<form>_complete`` field REDCap adds to every instrument."""
    return form_status_field(form)


def _strip_tags(text: str) -> str:
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.I)
    return html.unescape(re.sub(r"<[^>]*>", "", text))


def _has_markup(text: str) -> bool:
    return "<" in text and ">" in text


def choices_text(choices: Iterable[Choice]) -> str:
    return " | ".join(f"{c.code}, {c.formatted_label or c.label}" for c in choices)


def parse_choice_labels(text: str) -> tuple[Choice, ...]:
    """Choices from dictionary text; a label with markup keeps it as the formatted label."""
    out = []
    for c in parse_choices(text):
        if _has_markup(c.label):
            out.append(Choice(c.code, _strip_tags(c.label), c.label))
        else:
            out.append(c)
    return tuple(out)


# -- Field <-> redcap_metadata -------------------------------------------------
def field_to_row(f: Field, order: int, form_label: str | None, edoc_id: int | None = None) -> dict:
    """One ``redcap_metadata`` row (without project_id)."""
    odm: dict = {}
    if f.formatted_label is not None:
        odm["label"] = f.label
    label = f.formatted_label if f.formatted_label is not None else f.label
    enum = ""
    if f.field_type == "checkbox":
        enum = f.checkbox_choices if f.checkbox_choices is not None else choices_text(f.choices)
        odm["choices"] = [[c.code, c.label, c.formatted_label] for c in f.choices]
    elif f.field_type in ("radio", "select", "sql"):
        enum = choices_text(f.choices)
        odm["choices"] = [[c.code, c.label, c.formatted_label] for c in f.choices]
    elif f.field_type == "calc":
        enum = f.calculation
    elif f.field_type == "slider":
        enum = f.slider_labels or ""
    elif f.field_type == "text":
        enum = f.ontology
    if f.extra:
        odm["extra"] = [list(kv) for kv in f.extra]
    if f.attachment is not None and edoc_id is None:
        odm["attachment"] = [f.attachment.doc_name, f.attachment.mime_type, f.attachment.content_b64]
    return {
        "field_name": f.name, "field_order": order, "form_name": f.form,
        "form_menu_description": form_label,
        "element_preceding_header": f.section_header, "element_type": f.field_type,
        "element_label": label, "element_enum": enum, "element_note": f.field_note,
        "element_validation_type": f.validation, "element_validation_min": f.range_min,
        "element_validation_max": f.range_max, "field_phi": "1" if f.identifier else "",
        "branching_logic": f.branching_logic, "field_req": 1 if f.required else 0,
        "edoc_id": edoc_id, "edoc_display_img": 1 if f.inline_image else 0,
        "custom_alignment": f.custom_alignment, "stop_actions": f.stop_actions,
        "question_num": f.question_number, "grid_name": f.matrix_group,
        "grid_rank": 1 if f.matrix_ranking else 0, "misc": f.field_annotation,
        "video_url": f.video_url, "video_display_inline": f.video_display_inline,
        "odm": json.dumps(odm) if odm else "{}",
    }


METADATA_COLUMNS = tuple(field_to_row(Field("x", "f", "text"), 1, None).keys())


def row_to_field(row: Mapping, attachment: Attachment | None = None) -> Field:
    odm = json.loads(row["odm"] or "{}")
    ftype = row["element_type"]
    label = row["element_label"]
    formatted = None
    if "label" in odm:
        formatted, label = label, odm["label"]
    enum = row["element_enum"]
    choices: tuple[Choice, ...] = ()
    checkbox_choices = None
    if "choices" in odm:
        choices = tuple(Choice(c, l, fl) for c, l, fl in odm["choices"])
    elif ftype in CHOICE_FIELD_TYPES:
        choices = parse_choice_labels(enum)
    if ftype == "checkbox":
        checkbox_choices = enum
    validation = row["element_validation_type"]
    return with_odm_facts(Field(
        name=row["field_name"], form=row["form_name"], field_type=ftype, label=label,
        formatted_label=formatted, validation=validation, range_min=row["element_validation_min"],
        range_max=row["element_validation_max"], choices=choices, checkbox_choices=checkbox_choices,
        required=bool(row["field_req"]), identifier=row["field_phi"] == "1",
        field_note=row["element_note"], section_header=row["element_preceding_header"],
        calculation=enum if ftype == "calc" else "", branching_logic=row["branching_logic"],
        custom_alignment=row["custom_alignment"], question_number=row["question_num"],
        matrix_group=row["grid_name"], matrix_ranking=bool(row["grid_rank"]),
        field_annotation=row["misc"], slider_labels=enum if ftype == "slider" else None,
        stop_actions=row["stop_actions"], ontology=enum if ftype == "text" else "",
        inline_image="1" if row["edoc_display_img"] else "", video_url=row["video_url"],
        video_display_inline=row["video_display_inline"], attachment=attachment,
        extra=tuple(tuple(kv) for kv in odm.get("extra", ())),
    ))


# -- Field <-> API data dictionary ----------------------------------------------
def field_to_dictionary(f: Field) -> dict[str, str]:
    if f.field_type == "calc":
        enum = f.calculation
    elif f.field_type == "checkbox":
        enum = f.checkbox_choices if f.checkbox_choices is not None else choices_text(f.choices)
    elif f.field_type in ("radio", "select", "sql"):
        enum = choices_text(f.choices)
    elif f.field_type == "slider":
        enum = f.slider_labels or ""
    elif f.field_type == "text":
        enum = f.ontology
    else:
        enum = ""
    validation = _VALIDATION_OUT.get(f.validation, f.validation)
    alignment = f.custom_alignment
    if f.field_type == "slider" and not alignment:
        alignment = "RV"
    return {
        "field_name": f.name, "form_name": f.form, "section_header": f.section_header,
        "field_type": _TYPE_OUT.get(f.field_type, f.field_type),
        "field_label": f.formatted_label if f.formatted_label is not None else f.label,
        "select_choices_or_calculations": enum, "field_note": f.field_note,
        "text_validation_type_or_show_slider_number": validation,
        "text_validation_min": f.range_min, "text_validation_max": f.range_max,
        "identifier": "y" if f.identifier else "", "branching_logic": f.branching_logic,
        "required_field": "y" if f.required else "", "custom_alignment": alignment,
        "question_number": f.question_number, "matrix_group_name": f.matrix_group,
        "matrix_ranking": "y" if f.matrix_ranking else "", "field_annotation": f.field_annotation,
    }


def dictionary_to_fields(rows: list[Mapping[str, str]]) -> list[Field]:
    """Build the fields of an imported dictionary; raise ApiError as ``error_checking`` would.

    ``<form>_complete`` rows are skipped: REDCap recreates them.
    """
    if not rows:
        raise ApiError("No fields were provided in the data dictionary.")
    errors: list[str] = []
    out: list[Field] = []
    for raw in rows:
        row = {k: (raw.get(k) or "") for k in DICTIONARY_COLUMNS}
        row = {k: v if k == "field_label" else v.strip() for k, v in row.items()}
        name, form = row["field_name"], row["form_name"]
        ftype = _TYPE_IN.get(row["field_type"], row["field_type"])
        if name == f"{form}_complete":
            continue
        enum = row["select_choices_or_calculations"]
        validation = row["text_validation_type_or_show_slider_number"]
        if ftype != "slider":
            validation = _VALIDATION_IN.get(validation, validation)
        label = row["field_label"]
        formatted = label if _has_markup(label) else None
        out.append(Field(
            name=name, form=form, field_type=ftype,
            label=_strip_tags(label) if formatted else label, formatted_label=formatted,
            validation=validation, range_min=row["text_validation_min"],
            range_max=row["text_validation_max"],
            choices=parse_choice_labels(enum) if ftype in CHOICE_FIELD_TYPES else (),
            checkbox_choices=enum if ftype == "checkbox" else None,
            required=row["required_field"].lower() == "y", identifier=row["identifier"].lower() == "y",
            field_note=row["field_note"], section_header=row["section_header"],
            calculation=enum if ftype == "calc" else "", branching_logic=row["branching_logic"],
            custom_alignment=row["custom_alignment"], question_number=row["question_number"],
            matrix_group=row["matrix_group_name"], matrix_ranking=row["matrix_ranking"].lower() == "y",
            field_annotation=row["field_annotation"],
            slider_labels=enum if ftype == "slider" else None,
            ontology=enum if ftype == "text" else "",
        ))
    errors = check_fields(out)
    if errors:
        raise ApiError("\n".join(errors))
    return out


def check_fields(fields: list[Field]) -> list[str]:
    """``MetaData::error_checking`` on dictionary order (row 2 is the first field)."""
    errors: list[str] = []
    missing_choices: list[str] = []
    seen: set[str] = set()
    for i, f in enumerate((f for f in fields if not f.is_form_status), start=2):
        if not _VALID_NAME.match(f.name):
            errors.append(f"The variable name \"{f.name}\" (cell A{i}) is not valid. Variable names may only "
                          "contain lowercase letters, numbers, and underscores, and must begin with a letter.")
        if f.name in seen:
            errors.append(f"The variable name \"{f.name}\" (cell A{i}) is a duplicate of another variable name.")
        seen.add(f.name)
        if not _VALID_NAME.match(f.form):
            errors.append(f"The form name \"{f.form}\" (cell B{i}) is not valid.")
        if f.field_type not in FIELD_TYPES:
            errors.append(f"The field type \"{f.field_type}\" (cell D{i}) is not a valid field type.")
        elif f.field_type in CHOICE_FIELD_TYPES and not f.choices:
            missing_choices.append(f"F{i}")
        elif f.field_type == "calc" and not f.calculation.strip():
            errors.append(f"Calculated fields must have a calculation equation listed in column F (cell F{i}).")
    if missing_choices:
        # The double space is REDCap's own.
        errors.insert(0, "Each multiple choice field (radio, drop-down, checkbox, etc.) must have choices "
                         "listed in column F, but the following  cells have choices missing: "
                         + ", ".join(missing_choices))
    return errors


def with_status_fields(fields: Iterable[Field]) -> list[Field]:
    """Fields in order with each form's ``<form>_complete`` after its last field."""
    out: list[Field] = []
    current = None
    for f in fields:
        if f.is_form_status:
            continue
        if current is not None and f.form != current:
            out.append(complete_field(current))
        current = f.form
        out.append(f)
    if current is not None:
        out.append(complete_field(current))
    return out
