"""``Records::saveData``: validating incoming rows and writing them as EAV.

Both ways data gets in use this one path, as in REDCap: the record import
API and the ClinicalData of Create Project (which REDCap turns into CSV and
hands to saveData). ``RecordSaver`` takes one record at a time, validates
every value, merges it with what is stored (``normal`` never blanks a value,
``overwrite`` does), stores the record id in every event it touches,
recomputes calculated fields, and writes in ``executemany`` batches. Errors
are collected and raised together at ``finish()`` so the caller's
transaction rolls everything back.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from harness.odm.model import FileValue
from harness.sandbox import data_store
from harness.sandbox.calc import Calculator
from harness.sandbox.data_store import INSERT_DATA, StoredRecord
from harness.sandbox.design import TIMESTAMP, Design
from harness.sandbox.design_store import store_doc
from harness.sandbox.exceptions import ApiError
from harness.sandbox.validation import ValueProblem, check, check_checkbox, error_line

BATCH = 20000


@dataclass
class InputRow:
    """One incoming row: where it goes and its values by column name."""

    event_id: int
    repeat_instrument: str
    instance: int | None
    values: dict[str, str]
    files: dict[str, FileValue] = field(default_factory=dict)


@dataclass
class SaveResult:
    records: list[str]
    created: list[str]


class RecordSaver:
    def __init__(self, conn: sqlite3.Connection, design: Design, *, user: str, now: str,
                 overwrite: bool = False, date_format: str = "YMD", fresh: bool = False,
                 calculator: Calculator | None = None):
        self.conn = conn
        self.d = design
        self.pid = design.pid
        self.user = user
        self.now = now
        self.overwrite = overwrite
        self.date_format = date_format
        self.fresh = fresh
        self.calc = calculator or Calculator(design)
        self.errors: list[str] = []
        self.unknown: list[str] = []
        self.records: list[str] = []
        self.created: list[str] = []
        self._seen: set[str] = set()
        self._rows: list[tuple] = []
        self._list: list[tuple] = []
        self._log: list[tuple] = []
        self._checkbox_names = {f.name for f in design.fields if f.field_type == "checkbox"}
        self._status = {f"{f.name}_complete" for f in design.forms}
        self._missing = {c.code for c in design.missing_codes}
        self._columns: dict[str, tuple | None] = {}
        self._known: set[str] = set()
        self._repeating_events = {e for e, f in design.repeating if f is None}
        self._repeating_forms = {(e, f) for e, f in design.repeating if f is not None}

    # -- columns ---------------------------------------------------------------
    def resolve(self, column: str):
        """(field, checkbox code or None) for a column, or None if unknown."""
        try:
            return self._columns[column]
        except KeyError:
            pass
        f = self.d.field_map.get(column)
        found = (f, None) if f is not None and f.field_type != "checkbox" else self.d.checkbox_columns.get(column)
        self._columns[column] = found
        return found

    def check_columns(self, columns, *, ignore_timestamps: bool = False) -> None:
        """REDCap's whole-request check for unknown columns."""
        bad = []
        for c in columns:
            if c in self._known:
                continue
            if self.resolve(c) is not None:
                self._known.add(c)
                continue
            if ignore_timestamps and c.endswith(TIMESTAMP) and c[:-len(TIMESTAMP)] in self.d.form_map:
                continue
            if c not in bad:
                bad.append(c)
        if bad:
            raise ApiError("The following fields were not found in the project as real data fields: "
                           + ", ".join(bad))

    # -- saving ------------------------------------------------------------------
    def save(self, name: str, rows: list[InputRow], dag_id: int | None | bool = False) -> None:
        """Merge ``rows`` into record ``name``. ``dag_id=False`` leaves the DAG as it is."""
        d = self.d
        name = name.strip()
        if name == "":
            self.errors.append("The record name cannot be empty.")
            return
        existing = None
        if not self.fresh or name in self._seen:
            if name in self._seen:
                self._flush()
            loaded = data_store.load_records(self.conn, self.pid, [name], self._checkbox_names)[name]
            if data_store.record_exists(self.conn, self.pid, name):
                existing = loaded
        record = existing or StoredRecord(name)
        before = sum(len(v) for v in record.data.values())
        touched_forms: set[tuple[int, int | None, str]] = set()
        pk, longitudinal, skipped = d.pk, d.longitudinal, self.calc.names
        for row in rows:
            event = d.event_by_id[row.event_id]
            event_forms = set(d.event_forms(event))
            repeating_event = row.event_id in self._repeating_events
            for column, raw in row.values.items():
                resolved = self.resolve(column)
                if resolved is None:
                    continue  # survey timestamps and the like: ignored, as REDCap does
                f, code = resolved
                if f.name == pk or f.name in skipped or f.field_type == "file":
                    continue
                if longitudinal and f.form not in event_forms and raw != "":
                    self.errors.append(error_line(name, column, raw, f"The field is not designated to the event "
                                                  f"'{event.unique_name}'."))
                    continue
                inst = self._instance(row, f.form, repeating_event)
                values = record.data.setdefault((row.event_id, inst), {})
                try:
                    if code is not None:
                        if raw == "":
                            if self.overwrite:
                                values.setdefault(f.name, [])
                                if code in values[f.name]:
                                    values[f.name].remove(code)
                            continue
                        checked = check_checkbox(f, raw) == "1"
                        codes = values.setdefault(f.name, [])
                        if checked and code not in codes:
                            codes.append(code)
                        elif not checked and code in codes:
                            codes.remove(code)
                        touched_forms.add((row.event_id, inst, f.form))
                        continue
                    if raw == "":
                        if self.overwrite:
                            values.pop(f.name, None)
                        continue
                    # A missing-data code is a valid value of any field that may hold one.
                    values[f.name] = raw if raw in self._missing else check(f, raw, self.date_format)
                    if f.name not in self._status:
                        touched_forms.add((row.event_id, inst, f.form))
                except ValueProblem as exc:
                    self.errors.append(error_line(name, column, raw, str(exc)))
            for column, fv in row.files.items():
                resolved = self.resolve(column)
                if resolved is None or resolved[0].field_type != "file":
                    self.errors.append(error_line(name, column, fv.doc_name, "This field is not a File Upload field."))
                    continue
                f = resolved[0]
                inst = self._instance(row, f.form, repeating_event)
                doc_id = store_doc(self.conn, self.pid, fv.doc_name, fv.mime_type, fv.content, self.now)
                record.data.setdefault((row.event_id, inst), {})[f.name] = str(doc_id)
                touched_forms.add((row.event_id, inst, f.form))
            # The record id lives in every event (and repeating-event instance) the record uses.
            base = None if not repeating_event else self._instance(row, "", True)
            record.data.setdefault((row.event_id, base), {})[pk] = name
        for event_id, inst, form in touched_forms:
            record.data.setdefault((event_id, inst), {}).setdefault(f"{form}_complete", "0")
        for key in [k for k, v in record.data.items() if not any(x != [] for x in v.values())]:
            del record.data[key]
        self.calc.recompute(record)
        if name not in self._seen:
            self.records.append(name)
            self._seen.add(name)
            if existing is None:
                self.created.append(name)
        if existing is not None:
            data_store.delete_record_data(self.conn, self.pid, name)
        self._rows.extend(data_store.data_rows(self.pid, record))
        new_dag = record.dag_id if dag_id is False else dag_id
        self._list.append((self.pid, name, new_dag))
        after = sum(len(v) for v in record.data.values())
        action = "Created Record" if existing is None else "Updated Record"
        if existing is None or after != before or rows:
            self._log.append((self.pid, self.now, self.user, "INSERT" if existing is None else "UPDATE",
                              action, name, ""))
        if len(self._rows) >= BATCH:
            self._flush()

    def _instance(self, row: InputRow, form: str, repeating_event: bool) -> int | None:
        if repeating_event or (row.event_id, form) in self._repeating_forms:
            n = row.instance or 1
            return None if n == 1 else n  # REDCap stores instance 1 as NULL
        return None

    def _flush(self) -> None:
        if self._rows:
            self.conn.executemany(INSERT_DATA, self._rows)
            self._rows.clear()
        if self._list:
            data_store.upsert_record_list(self.conn, self._list)
            self._list.clear()
        if self._log:
            self.conn.executemany(
                "INSERT INTO redcap_log_event (project_id, ts, user, event, description, pk, data_values)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", self._log)
            self._log.clear()

    def finish(self) -> SaveResult:
        """Write what is pending, or raise every collected error (one per line)."""
        if self.errors:
            raise ApiError("\n".join(self.errors))
        self._flush()
        return SaveResult(self.records, self.created)
