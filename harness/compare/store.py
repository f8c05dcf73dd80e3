"""A key -> value map that moves to a temporary SQLite file when it grows.

The record comparison keeps one small entry per record it could not pair up
yet. For a 1 GB archive that can be millions of entries, so past ``limit``
entries they go to a SQLite file in the temporary directory, which is deleted
on ``close()``. Memory stays bounded whatever the archive size.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any


class SpillStore:
    def __init__(self, limit: int = 200_000):
        self.limit = limit
        self._mem: dict[str, Any] = {}
        self._db: sqlite3.Connection | None = None
        self._path: str | None = None
        self._db_len = 0

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> SpillStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = None

    @property
    def spilled(self) -> bool:
        return self._db is not None

    def __len__(self) -> int:
        return len(self._mem) + self._db_len

    # -- map operations --------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        if key in self._mem:
            return self._mem[key]
        if self._db is not None:
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            if row is not None:
                return pickle.loads(row[0])
        return default

    def __contains__(self, key: str) -> bool:
        return key in self._mem or (
            self._db is not None
            and self._db.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None
        )

    def put(self, key: str, value: Any) -> None:
        if self._db is not None:
            if self._db.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is None:
                self._db_len += 1
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, pickle.dumps(value)))
            return
        self._mem[key] = value
        if len(self._mem) > self.limit:
            self._spill()

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self._mem:
            return self._mem.pop(key)
        if self._db is not None:
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM kv WHERE k = ?", (key,))
                self._db_len -= 1
                return pickle.loads(row[0])
        return default

    def items(self) -> Iterator[tuple[str, Any]]:
        yield from list(self._mem.items())
        if self._db is not None:
            for key, blob in self._db.execute("SELECT k, v FROM kv"):
                yield key, pickle.loads(blob)

    def _spill(self) -> None:
        fd, self._path = tempfile.mkstemp(prefix="redcap-drill-compare-", suffix=".sqlite")
        os.close(fd)
        # The file only lives for this comparison: durability buys nothing.
        self._db = sqlite3.connect(self._path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO kv VALUES (?, ?)",
                             ((k, pickle.dumps(v)) for k, v in self._mem.items()))
        self._db.execute("COMMIT")
        self._db_len = len(self._mem)
        self._mem.clear()
