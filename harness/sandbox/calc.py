"""Recomputing calculated fields of a record, as ``saveData(performAutoCalc)`` does.

REDCap ignores imported values of calc, ``@CALCTEXT`` and ``@CALCDATE``
fields and computes them from the record's data. ``Calculator`` compiles each
equation once per project and recomputes a whole ``StoredRecord`` in place:
every row (event, instance) where the field's instrument exists gets the
result, a blank result removes the stored value. An equation the evaluator
cannot compile keeps the imported value and is reported once in the log.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from harness.odm.model import Field
from harness.sandbox.data_store import StoredRecord, instance_key
from harness.sandbox.design import Design
from harness.sandbox.logic import BLANK, Context, Logic, LogicError, _parse_date, to_number

log = logging.getLogger("harness.sandbox")

_TAG = re.compile(r"@(CALCTEXT|CALCDATE)\s*\(", re.I)


def _tag_argument(annotation: str, start: int) -> str | None:
    """The text inside the parentheses opened just before ``start``."""
    depth, i = 1, start
    quote = None
    while i < len(annotation):
        ch = annotation[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return annotation[start:i]
        i += 1
    return None


def _split_args(text: str) -> list[str]:
    out, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [a.strip() for a in out]


class RecordContext(Context):
    """One row of a stored record, as logic sees it."""

    def __init__(self, design: Design, record: StoredRecord, event_id: int, instance: int | None):
        self.design = design
        self.stored = record
        self.record = record.name
        self.event_id = event_id
        self.inst = instance
        ev = design.event_by_id[event_id]
        self.event = design.unique_event(ev)
        self.event_label = ev.name
        self.arm_num = ev.arm_num
        self.instance = instance or 1
        self.missing_codes = frozenset(c.code for c in design.missing_codes)

    def _event_id(self, event: str | None) -> int | None:
        if not event:
            return self.event_id
        ev = self.design.event_by_unique.get(event)
        if ev is not None:
            return ev.event_id
        if not self.design.longitudinal and event == self.event:
            return self.event_id
        return None

    def _instance(self, f: Field, event_id: int, instance) -> int | None:
        d = self.design
        if not (d.is_repeating_event(event_id) or d.is_repeating_form(event_id, f.form)):
            return None
        if isinstance(instance, int):
            return instance_key(instance)
        if instance in ("first", "last", "previous", "next"):
            names = {x.name for x in d.form_fields.get(f.form, ())}
            whole_event = d.is_repeating_event(event_id)
            present = sorted((i or 1) for (e, i), vals in self.stored.data.items()
                             if e == event_id and (whole_event or names.intersection(vals)))
            if not present:
                return None
            if instance == "first":
                return instance_key(present[0])
            if instance == "last":
                return instance_key(present[-1])
            target = self.instance - 1 if instance == "previous" else self.instance + 1
            return instance_key(target)
        return self.inst if event_id == self.event_id else None

    def value(self, field: str, event: str | None = None, instance=None) -> str:
        f = self.design.field_map.get(field)
        event_id = self._event_id(event)
        if f is None or event_id is None:
            return BLANK
        v = self.stored.get(event_id, self._instance(f, event_id, instance), field)
        return ",".join(v) if isinstance(v, list) else v

    def checkbox(self, field: str, code: str, event: str | None = None, instance=None) -> str:
        f = self.design.field_map.get(field)
        event_id = self._event_id(event)
        if f is None or event_id is None:
            return "0"
        v = self.stored.get(event_id, self._instance(f, event_id, instance), field, [])
        return "1" if isinstance(v, list) and code in v else "0"


class Calculator:
    """The project's calculated fields, compiled once."""

    def __init__(self, design: Design):
        self.design = design
        self.items: list[tuple[Field, object]] = []
        self.skipped: list[str] = []
        names = set(design.field_map)
        events = set(design.event_by_unique) | {"event_1_arm_1"}
        for f in design.fields:
            compiled = None
            try:
                if f.field_type == "calc":
                    compiled = Logic(f.calculation, fields=names, events=events).calc
                elif f.field_type == "text" and _TAG.search(f.field_annotation):
                    compiled = self._action_tag(f, names, events)
            except LogicError as exc:
                self.skipped.append(f.name)
                log.warning("sandbox: calculation of %s is not supported in sandbox (%s); imported values kept",
                            f.name, exc)
                continue
            if compiled is not None:
                self.items.append((f, compiled))
        self.names = {f.name for f, _ in self.items}

    def _action_tag(self, f: Field, names, events):
        m = _TAG.search(f.field_annotation)
        arg = _tag_argument(f.field_annotation, m.end())
        if arg is None:
            raise LogicError("unbalanced parentheses in the action tag")
        if m.group(1).upper() == "CALCTEXT":
            return Logic(arg, fields=names, events=events).calc
        parts = _split_args(arg)
        if len(parts) != 3:
            raise LogicError("@CALCDATE needs three arguments")
        start = Logic(parts[0], fields=names, events=events)
        offset = Logic(parts[1], fields=names, events=events)
        unit = parts[2].strip("'\"")
        seconds = {"y": 365.2425 * 86400, "M": 30.44 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}.get(unit)
        if seconds is None:
            raise LogicError(f"unknown @CALCDATE unit {unit!r}")
        datetime_out = f.validation.startswith("datetime")

        def calcdate(ctx):
            d = _parse_date(start.evaluate(ctx))
            n = to_number(offset.evaluate(ctx))
            if d is None or n is None:
                return BLANK
            out = d + timedelta(seconds=n * seconds)
            if datetime_out:
                return out.strftime("%Y-%m-%d %H:%M:%S" if "seconds" in f.validation else "%Y-%m-%d %H:%M")
            return out.strftime("%Y-%m-%d")
        return calcdate

    def recompute(self, record: StoredRecord) -> None:
        if not self.items:
            return
        d = self.design
        for event_id in record.events():
            event = d.event_by_id.get(event_id)
            if event is None:
                continue
            forms = set(d.event_forms(event))
            for f, compiled in self.items:
                if f.form not in forms:
                    continue
                for inst in self._instances(record, event_id, f.form):
                    ctx = RecordContext(d, record, event_id, inst)
                    value = compiled(ctx)
                    values = record.data.setdefault((event_id, inst), {})
                    if value == BLANK:
                        values.pop(f.name, None)
                    else:
                        values[f.name] = value

    def _instances(self, record: StoredRecord, event_id: int, form: str) -> list[int | None]:
        """Rows of ``form`` in this event that exist in the record."""
        d = self.design
        if d.is_repeating_event(event_id):
            return sorted({i for e, i in record.data if e == event_id}, key=lambda i: i or 1)
        form_fields = {x.name for x in d.form_fields.get(form, ())} - self.names
        if d.is_repeating_form(event_id, form):
            return sorted({i for (e, i), vals in record.data.items()
                           if e == event_id and form_fields.intersection(vals)}, key=lambda i: i or 1)
        return [None] if (event_id, None) in record.data else []
