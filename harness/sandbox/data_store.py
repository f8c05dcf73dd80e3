"""Record data in ``redcap_data`` (EAV, like REDCap's) and ``redcap_record_list``.

A record in memory is a ``StoredRecord``: values keyed by (event_id,
instance) exactly as REDCap stores them, where instance ``None`` stands for
instance 1 (REDCap writes NULL there) and a checkbox holds the list of its
checked codes (one ``redcap_data`` row each). Records are read in REDCap's
case-insensitive natural order, a chunk of names at a time, so exporting a
large project never holds more than one chunk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from harness.odm.writer import natural_key  # REDCap's natcaseksort, one for the whole harness

CHUNK = 500

Values = dict[str, "str | list[str]"]


@dataclass
class StoredRecord:
    name: str
    dag_id: int | None = None
    #: (event_id, instance or None) -> field -> value (checkbox: list of codes)
    data: dict[tuple[int, int | None], Values] = field(default_factory=dict)

    def events(self) -> list[int]:
        return sorted({e for e, _ in self.data})

    def get(self, event_id: int, instance: int | None, name: str, default=""):
        return self.data.get((event_id, instance), {}).get(name, default)


def instance_key(instance: int | None) -> int | None:
    """REDCap stores instance 1 as NULL."""
    return None if instance in (None, 1) else instance


def record_names(conn: sqlite3.Connection, pid: int, *, dag_id: int | None = None,
                 only: Iterable[str] | None = None) -> list[str]:
    """Existing record names in natural order (optionally one DAG, or a subset)."""
    sql = "SELECT record FROM redcap_record_list WHERE project_id = ?"
    args: list = [pid]
    if dag_id is not None:
        sql += " AND dag_id = ?"
        args.append(dag_id)
    names = [r[0] for r in conn.execute(sql, args)]
    if only is not None:
        wanted = set(only)
        names = [n for n in names if n in wanted]
    return sorted(names, key=natural_key)


def record_exists(conn: sqlite3.Connection, pid: int, name: str) -> bool:
    return conn.execute("SELECT 1 FROM redcap_record_list WHERE project_id = ? AND record = ?",
                        (pid, name)).fetchone() is not None


def load_records(conn: sqlite3.Connection, pid: int, names: list[str], checkbox_fields: set[str]
                 ) -> dict[str, StoredRecord]:
    out = {n: StoredRecord(n) for n in names}
    for start in range(0, len(names), CHUNK):
        chunk = names[start:start + CHUNK]
        marks = ",".join("?" * len(chunk))
        for record, dag in conn.execute(
                f"SELECT record, dag_id FROM redcap_record_list WHERE project_id = ? AND record IN ({marks})",
                (pid, *chunk)):
            out[record].dag_id = dag
        for record, event_id, instance, fname, value in conn.execute(
                "SELECT record, event_id, instance, field_name, value FROM redcap_data"
                f" WHERE project_id = ? AND record IN ({marks})", (pid, *chunk)):
            values = out[record].data.setdefault((event_id, instance), {})
            if fname in checkbox_fields:
                values.setdefault(fname, []).append(value)
            else:
                values[fname] = value
    return out


def iter_records(conn: sqlite3.Connection, pid: int, names: list[str], checkbox_fields: set[str]
                 ) -> Iterator[StoredRecord]:
    """Records in the given order, loaded a chunk at a time."""
    for start in range(0, len(names), CHUNK):
        chunk = names[start:start + CHUNK]
        loaded = load_records(conn, pid, chunk, checkbox_fields)
        for n in chunk:
            yield loaded[n]


def data_rows(pid: int, record: StoredRecord) -> Iterator[tuple]:
    """``redcap_data`` rows of one record."""
    for (event_id, instance), values in record.data.items():
        for fname, value in values.items():
            if isinstance(value, list):
                for code in value:
                    yield (pid, event_id, record.name, fname, code, instance)
            elif value != "":
                yield (pid, event_id, record.name, fname, value, instance)


INSERT_DATA = ("INSERT INTO redcap_data (project_id, event_id, record, field_name, value, instance)"
               " VALUES (?, ?, ?, ?, ?, ?)")


def delete_record_data(conn: sqlite3.Connection, pid: int, name: str) -> None:
    conn.execute("DELETE FROM redcap_data WHERE project_id = ? AND record = ?", (pid, name))


def upsert_record_list(conn: sqlite3.Connection, rows: list[tuple[int, str, int | None]]) -> None:
    conn.executemany(
        "INSERT INTO redcap_record_list (project_id, record, dag_id) VALUES (?, ?, ?)"
        " ON CONFLICT (project_id, record) DO UPDATE SET dag_id = excluded.dag_id", rows)


def delete_record(conn: sqlite3.Connection, pid: int, name: str) -> None:
    delete_record_data(conn, pid, name)
    conn.execute("DELETE FROM redcap_record_list WHERE project_id = ? AND record = ?", (pid, name))
    conn.execute("DELETE FROM redcap_surveys_response WHERE project_id = ? AND record = ?", (pid, name))
