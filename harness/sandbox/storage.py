"""SQLite storage shaped like REDCap's own tables, and how to get at it safely.

Table and column names follow REDCap's schema (``redcap_projects``,
``redcap_metadata``, ``redcap_events_*``, ``redcap_data`` as EAV,
``redcap_edocs_metadata``, …) so anyone who knows REDCap can read a sandbox
database. Two deliberate extras: ``redcap_metadata.odm`` keeps the facts only
project XML carries (plain labels, exact choice labels, unknown attributes)
as JSON, and ``redcap_odm_rows`` keeps every other ``redcap:*Group`` of an
imported file as generic rows, the way ``ODM::addArrayToTable`` spreads them
over dozens of vendor tables.

Connections come from a small pool (any thread may use any connection, one
at a time); writes are serialised by a lock and run in one transaction, so a
failed import leaves nothing behind. WAL lets exports read while an import
writes.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS redcap_user_information (
    ui_id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    user_email TEXT NOT NULL DEFAULT '',
    user_firstname TEXT NOT NULL DEFAULT '',
    user_lastname TEXT NOT NULL DEFAULT '',
    super_user INTEGER NOT NULL DEFAULT 0,
    api_token TEXT UNIQUE                -- the 64-char super token, if any
);
CREATE TABLE IF NOT EXISTS redcap_projects (
    project_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_name TEXT NOT NULL,
    app_title TEXT NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    creation_time TEXT NOT NULL,
    production_time TEXT,
    created_by TEXT NOT NULL,
    purpose INTEGER NOT NULL DEFAULT 0,
    purpose_other TEXT NOT NULL DEFAULT '',
    project_note TEXT NOT NULL DEFAULT '',
    project_language TEXT NOT NULL DEFAULT 'English',
    repeatforms INTEGER NOT NULL DEFAULT 0,  -- the "longitudinal" flag
    table_pk TEXT NOT NULL DEFAULT 'record_id'
);
-- Every single-value GlobalVariables setting, keyed by its redcap: tag.
CREATE TABLE IF NOT EXISTS redcap_project_settings (
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '',
    doc_id INTEGER,                      -- ProtectedEmailModeLogo
    PRIMARY KEY (project_id, name)
);
CREATE TABLE IF NOT EXISTS redcap_user_rights (
    project_id INTEGER NOT NULL,
    username TEXT NOT NULL,
    api_token TEXT UNIQUE,
    expiration TEXT NOT NULL DEFAULT '',
    group_id INTEGER,
    role_id INTEGER,
    rights TEXT NOT NULL DEFAULT '{}',   -- JSON: right -> int
    forms TEXT NOT NULL DEFAULT '{}',    -- JSON: form -> data entry right
    forms_export TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (project_id, username)
);
CREATE TABLE IF NOT EXISTS redcap_events_arms (
    arm_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    arm_num INTEGER NOT NULL,
    arm_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS redcap_events_metadata (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    arm_id INTEGER NOT NULL,
    day_offset REAL NOT NULL DEFAULT 0,
    offset_min REAL NOT NULL DEFAULT 0,
    offset_max REAL NOT NULL DEFAULT 0,
    descrip TEXT NOT NULL,
    custom_event_label TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS redcap_events_forms (
    event_id INTEGER NOT NULL,
    form_name TEXT NOT NULL,
    PRIMARY KEY (event_id, form_name)
);
CREATE TABLE IF NOT EXISTS redcap_events_repeat (
    event_id INTEGER NOT NULL,
    form_name TEXT,                      -- NULL: the whole event repeats
    custom_repeat_form_label TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS redcap_data_access_groups (
    group_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    group_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS redcap_metadata (
    project_id INTEGER NOT NULL,
    field_name TEXT NOT NULL,
    field_order INTEGER NOT NULL,
    form_name TEXT NOT NULL,
    form_menu_description TEXT,          -- the form label, on a form's first field only
    element_preceding_header TEXT NOT NULL DEFAULT '',
    element_type TEXT NOT NULL,
    element_label TEXT NOT NULL DEFAULT '',
    element_enum TEXT NOT NULL DEFAULT '', -- choices, calc equation, slider labels or ontology
    element_note TEXT NOT NULL DEFAULT '',
    element_validation_type TEXT NOT NULL DEFAULT '',
    element_validation_min TEXT NOT NULL DEFAULT '',
    element_validation_max TEXT NOT NULL DEFAULT '',
    field_phi TEXT NOT NULL DEFAULT '',
    branching_logic TEXT NOT NULL DEFAULT '',
    field_req INTEGER NOT NULL DEFAULT 0,
    edoc_id INTEGER,
    edoc_display_img INTEGER NOT NULL DEFAULT 0,
    custom_alignment TEXT NOT NULL DEFAULT '',
    stop_actions TEXT NOT NULL DEFAULT '',
    question_num TEXT NOT NULL DEFAULT '',
    grid_name TEXT NOT NULL DEFAULT '',
    grid_rank INTEGER NOT NULL DEFAULT 0,
    misc TEXT NOT NULL DEFAULT '',       -- field annotation (action tags)
    video_url TEXT NOT NULL DEFAULT '',
    video_display_inline TEXT NOT NULL DEFAULT '',
    odm TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (project_id, field_name)
);
CREATE TABLE IF NOT EXISTS redcap_data (
    project_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    record TEXT NOT NULL,
    field_name TEXT NOT NULL,
    value TEXT NOT NULL,
    instance INTEGER                     -- NULL means instance 1, as in REDCap
);
CREATE INDEX IF NOT EXISTS redcap_data_record ON redcap_data (project_id, record);
CREATE TABLE IF NOT EXISTS redcap_record_list (
    project_id INTEGER NOT NULL,
    record TEXT NOT NULL,
    dag_id INTEGER,
    PRIMARY KEY (project_id, record)
);
CREATE TABLE IF NOT EXISTS redcap_edocs_metadata (
    doc_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    doc_name TEXT NOT NULL,
    mime_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    doc_size INTEGER NOT NULL DEFAULT 0,
    stored_date TEXT NOT NULL,
    content BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS redcap_docs_folders (
    folder_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    parent_folder_id INTEGER,
    dag_id INTEGER,
    role_id INTEGER
);
CREATE TABLE IF NOT EXISTS redcap_docs_to_edocs (
    docs_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    doc_id INTEGER NOT NULL,
    folder_id INTEGER
);
-- Every other redcap:*Group of an imported project, one row per element.
CREATE TABLE IF NOT EXISTS redcap_odm_rows (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    group_tag TEXT NOT NULL,
    row_tag TEXT NOT NULL,
    attrs TEXT NOT NULL,                 -- JSON list of [name, value]
    doc_id INTEGER                       -- OdmAttachment content
);
CREATE TABLE IF NOT EXISTS redcap_surveys_response (
    project_id INTEGER NOT NULL,
    record TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    form_name TEXT NOT NULL,
    instance INTEGER NOT NULL DEFAULT 1,
    hash TEXT NOT NULL,
    access_code TEXT NOT NULL,
    return_code TEXT NOT NULL,
    PRIMARY KEY (project_id, record, event_id, form_name, instance)
);
CREATE TABLE IF NOT EXISTS redcap_log_event (
    log_event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    ts TEXT NOT NULL,                    -- YYYY-MM-DD HH:MM:SS
    user TEXT NOT NULL,
    event TEXT NOT NULL,                 -- MANAGE, INSERT, UPDATE, DELETE, DATA_EXPORT, OTHER
    description TEXT NOT NULL,
    pk TEXT NOT NULL DEFAULT '',
    data_values TEXT NOT NULL DEFAULT ''
);
"""

TABLES = (
    "redcap_user_information", "redcap_projects", "redcap_project_settings", "redcap_user_rights",
    "redcap_events_arms", "redcap_events_metadata", "redcap_events_forms", "redcap_events_repeat",
    "redcap_data_access_groups", "redcap_metadata", "redcap_data", "redcap_record_list",
    "redcap_edocs_metadata", "redcap_docs_folders", "redcap_docs_to_edocs", "redcap_odm_rows",
    "redcap_surveys_response", "redcap_log_event",
)


class Database:
    """One SQLite file and a pool of connections to it.

    ``path=None`` uses a private temporary file that ``close()`` deletes; an
    in-memory database cannot be shared between connections with WAL.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, pool_size: int = 8):
        self._tmpdir = None
        if path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="redcap-sandbox-")
            path = Path(self._tmpdir.name) / "sandbox.sqlite3"
        self.path = Path(path)
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._pool_size = pool_size
        self._pool_lock = threading.Lock()
        self._write_lock = threading.RLock()
        with self.connection() as conn:
            conn.executescript(SCHEMA)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        # A sandbox is disposable: durability across power loss buys nothing here.
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute("PRAGMA cache_size=-32000")
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (autocommit); returned to the pool afterwards."""
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._open()
            with self._pool_lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            if self._pool.qsize() < self._pool_size:
                self._pool.put(conn)
            else:
                with self._pool_lock:
                    self._all.remove(conn)
                conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: all or nothing, one writer at a time."""
        with self._write_lock, self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()

    def reset(self) -> None:
        """Empty every table (and restart the ids), as a freshly installed REDCap."""
        with self.transaction() as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM sqlite_sequence")

    def close(self) -> None:
        with self._pool_lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        while not self._pool.empty():
            self._pool.get_nowait()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
