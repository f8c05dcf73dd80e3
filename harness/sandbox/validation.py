"""Per-value checks of ``Records::saveData``: what REDCap refuses to store.

``check`` returns the value to store (dates converted to Y-M-D, datetimes
with a space, as REDCap stores them) or raises ``ValueProblem`` with
REDCap's message. Out-of-range values are only warnings in REDCap, so they
pass. Formats REDCap checks with site-configurable regexes (phone, zipcode,
postal codes, MRN…) are accepted as they are.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from harness.odm.model import Field
from harness.sandbox.dictionary import NUMBER_VALIDATIONS

_INT = re.compile(r"^[-+]?\d+$")
_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_COMMA_NUM = re.compile(r"^[-+]?(\d+,?\d*|,\d+)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")
_TIME_SECONDS = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d:[0-5]\d$")
_TIME_MM_SS = re.compile(r"^[0-5]\d:[0-5]\d$")
_DATE_NOTE = ("(NOTE: Dates must be imported here only in Y-M-D format, regardless of the specific date "
              "format designated for this field.)")


class ValueProblem(ValueError):
    """REDCap rejects the value; ``str(exc)`` is its message."""


_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def _date(value: str, date_format: str) -> str:
    m = _YMD.match(value)
    if m:  # the common case, without strptime's cost
        try:
            date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            return value
        except ValueError:
            raise ValueProblem(f"Invalid date format. {_DATE_NOTE}") from None
    patterns = {"YMD": (), "MDY": ("%m/%d/%Y", "%m-%d-%Y"), "DMY": ("%d/%m/%Y", "%d-%m-%Y")}
    for pattern in patterns[date_format]:
        try:
            return datetime.strptime(value, pattern).strftime("%Y-%m-%d")
        except ValueError:
            continue
    raise ValueProblem(f"Invalid date format. {_DATE_NOTE}")


def _datetime(value: str, date_format: str, seconds: bool) -> str:
    value = value.replace("T", " ").strip()
    day, _, time = value.partition(" ")
    stored_day = _date(day, date_format)
    pattern = _TIME_SECONDS if seconds else _TIME
    if not pattern.match(time):
        kind = "Y-M-D H:M:S" if seconds else "Y-M-D H:M"
        raise ValueProblem(f"Invalid datetime format. (NOTE: Datetimes must be imported here only in {kind} "
                           "format, regardless of the specific datetime format designated for this field.)")
    h, rest = time.split(":", 1)
    return f"{stored_day} {int(h):02d}:{rest}"


def check_text(f: Field, value: str, date_format: str = "YMD") -> str:
    v = f.validation
    if not v or f.field_type != "text":
        return value
    if v == "int":
        if not _INT.match(value):
            raise ValueProblem(f"The value of {f.name} must be an integer.")
    elif v in NUMBER_VALIDATIONS:
        if not _NUM.match(value):
            raise ValueProblem(f"The value of {f.name} must be numeric.")
    elif v.startswith("number") and v.endswith("comma_decimal"):
        if not _COMMA_NUM.match(value):
            raise ValueProblem(f"The value of {f.name} must be numeric.")
    elif v.startswith("date_"):
        return _date(value, date_format)
    elif v.startswith("datetime_seconds"):
        return _datetime(value, date_format, True)
    elif v.startswith("datetime"):
        return _datetime(value, date_format, False)
    elif v == "time":
        if not _TIME.match(value):
            raise ValueProblem(f"The value of {f.name} must be a valid time (HH:MM).")
    elif v == "time_hh_mm_ss":
        if not _TIME_SECONDS.match(value):
            raise ValueProblem(f"The value of {f.name} must be a valid time (HH:MM:SS).")
    elif v == "time_mm_ss":
        if not _TIME_MM_SS.match(value):
            raise ValueProblem(f"The value of {f.name} must be a valid time (MM:SS).")
    elif v == "email":
        if not _EMAIL.match(value):
            raise ValueProblem("Email address is not properly formatted.")
    return value


def check(f: Field, value: str, date_format: str = "YMD") -> str:
    """The value REDCap would store for a (non-checkbox) field, or ValueProblem."""
    t = f.field_type
    if t == "text":
        return check_text(f, value, date_format)
    if t in ("radio", "select", "sql"):
        if f.choices and value not in {c.code for c in f.choices}:
            raise ValueProblem(f"The value is not a valid category for {f.name}")
        return value
    if t in ("yesno", "truefalse"):
        if value not in ("0", "1"):
            raise ValueProblem(f"The value is not a valid category for {f.name}")
        return value
    if t == "slider":
        if not _INT.match(value) or not 0 <= int(value) <= 100:
            raise ValueProblem(f"The value of {f.name} must be an integer between 0 and 100.")
        return value
    return value


def check_checkbox(f: Field, value: str) -> str:
    if value not in ("0", "1"):
        raise ValueProblem(f"{f.name} is a checkbox field and thus can only have a value of '1' (checked) or "
                           "'0' (unchecked).")
    return value


def error_line(record: str, field: str, value: str, message: str) -> str:
    """One line of REDCap's import error report."""
    def q(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'
    return ",".join(q(x) for x in (record, field, value, message))
