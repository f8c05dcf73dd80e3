"""API parameters, normalised as REDCap's ``API/index.php`` does before dispatch.

Handlers never look at raw form fields: they ask ``Params`` for a value, a
flag, or an array, and get REDCap's reading of it (PHP ``name[0]``/``name[]``
arrays, REDCapR's comma strings, ``True``/``true``/``1`` flags, and the
``returnFormat`` → ``format`` → xml fallback).
"""

from __future__ import annotations

import re
from typing import BinaryIO

from harness.sandbox.forms import FormPart

FORMATS = ("json", "csv", "xml", "odm")
_ARRAY = re.compile(r"^([^\[\]]+)\[([^\]]*)\]$")

#: content values for which a ``data`` field forces an import unless action=delete.
_DATA_MEANS_IMPORT = {"user", "userRole", "userRoleMapping"}


class Params:
    """The form fields of one API request."""

    def __init__(self, parts: list[FormPart]):
        self._parts = parts
        self._scalars: dict[str, FormPart] = {}
        self._arrays: dict[str, list[tuple[str, FormPart]]] = {}
        for part in parts:
            m = _ARRAY.match(part.name)
            if m:
                self._arrays.setdefault(m.group(1), []).append((m.group(2), part))
            else:
                # PHP keeps the last of repeated scalar names.
                self._scalars[part.name] = part
        self._cache: dict[str, str] = {}

    def close(self) -> None:
        for part in self._parts:
            part.close()

    # -- raw access -----------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._scalars

    def get(self, name: str, default: str = "") -> str:
        if name not in self._scalars:
            return default
        if name not in self._cache:
            self._cache[name] = self._scalars[name].text()
        return self._cache[name]

    def stream(self, name: str) -> BinaryIO | None:
        """A field's bytes as a stream (for multi-megabyte values such as ``odm``)."""
        part = self._scalars.get(name)
        return part.stream() if part is not None else None

    def size(self, name: str) -> int:
        part = self._scalars.get(name)
        return part.size if part is not None else 0

    def file(self, name: str = "file") -> FormPart | None:
        part = self._scalars.get(name)
        return part if part is not None and part.filename is not None else None

    def is_array(self, name: str) -> bool:
        return name in self._arrays

    def array(self, name: str, *, split_commas: bool = False) -> list[str]:
        """``name[0]=a&name[1]=b`` or ``name[]=a``; optionally ``name=a,b`` (REDCapR)."""
        if name in self._arrays:
            items = self._arrays[name]
            if all(k.isdigit() for k, _ in items):
                items = sorted(items, key=lambda kv: int(kv[0]))
            return [p.text() for _, p in items]
        if split_commas and name in self._scalars:
            return [v.strip() for v in self.get(name).split(",") if v.strip() != ""]
        return []

    # -- REDCap's normalisations --------------------------------------------------
    @property
    def token(self) -> str:
        return self.get("token").strip()

    @property
    def content(self) -> str:
        return self.get("content")

    @property
    def format(self) -> str:
        fmt = self.get("format").lower()
        return fmt if fmt in FORMATS else "xml"

    @property
    def return_format(self) -> str:
        fmt = self.get("returnFormat").lower()
        if not fmt:
            fmt = self.format
        return fmt if fmt in ("json", "csv", "xml") else "xml"

    @property
    def action(self) -> str:
        action = self.get("action")
        if self.content in _DATA_MEANS_IMPORT and self.has("data") and action != "delete":
            return "import"
        if action:
            return action
        return "import" if self.has("data") else "export"

    def flag(self, name: str) -> bool:
        value = self.get(name).strip().lower()
        return value in ("1", "true")

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.get(name)
        return value if value in allowed else default

    @property
    def raw_or_label(self) -> str:
        return self.choice("rawOrLabel", ("raw", "label"), "raw")

    @property
    def raw_or_label_headers(self) -> str:
        return self.choice("rawOrLabelHeaders", ("raw", "label"), "raw")

    @property
    def date_format(self) -> str:
        return self.choice("dateFormat", ("MDY", "DMY"), "YMD")
