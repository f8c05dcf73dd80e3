"""REDCap's rows of a record: (event, repeat instrument, instance), in export order.

``Records::getData`` turns EAV values into rows: each stored value lands in
the base row of its event, in an instance of its repeating instrument, or
in an instance of a repeating event. ``record_rows`` does the same and
orders them as the flat export does (events in project order; in each, the
base row first, then repeating instruments in form order, instances
ascending). Record export, ``project_xml`` and ``filterLogic`` share it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.sandbox.data_store import StoredRecord
from harness.sandbox.design import Design, EventInfo


@dataclass
class Row:
    event: EventInfo
    repeat_form: str
    instance: int | None  # None: not a repeating row
    values: dict  # field -> stored value (checkbox: list of codes)

    @property
    def key(self) -> tuple:
        return (self.event.event_id, self.repeat_form, self.instance)

    @property
    def stored_instance(self) -> int | None:
        return None if self.instance in (None, 1) else self.instance


def record_rows(design: Design, record: StoredRecord) -> list[Row]:
    pk = design.pk
    rows: dict[tuple, Row] = {}
    fmap = design.field_map
    for (event_id, inst), values in record.data.items():
        event = design.event_by_id.get(event_id)
        if event is None:
            continue
        repeating_event = design.is_repeating_event(event_id)
        for name, value in values.items():
            f = fmap.get(name)
            if f is None:
                continue
            if name == pk:
                key = (event_id, "", (inst or 1) if repeating_event else None)
            else:
                key = design.row_key(event_id, f.form, inst)
            row = rows.get(key)
            if row is None:
                row = rows[key] = Row(event, key[1], key[2], {})
            row.values[name] = value
    order = {e.event_id: i for i, e in enumerate(design.events)}
    form_order = {f.name: i for i, f in enumerate(design.forms)}
    return sorted(rows.values(), key=lambda r: (
        order.get(r.event.event_id, 0), r.instance is not None, form_order.get(r.repeat_form, -1), r.instance or 0))
