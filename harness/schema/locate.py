"""Find the official CDISC ODM 1.3.1 XSD on this machine, and prove it is the right one.

redcap-drill never ships CDISC's schema files. They are looked for, in order:

1. ``--odm-schema DIR`` on the command line;
2. the environment variable ``REDCAP_DRILL_ODM_SCHEMA``;
3. the user cache that ``redcap-drill schema install`` fills:
   ``$XDG_CACHE_HOME/redcap-drill/odm_schema`` (default ``~/.cache/...``).

DIR holds ``cdisc-odm-1.3.1/ODM1-3-1.xsd``, ``cdisc-odm-1.3.1/ODM1-3-1-foundation.xsd``,
``core/xml.xsd`` and ``core/xmldsig-core-schema.xsd`` (the layout of the
edc-cdisc wheel, whose ODM files include the core ones by relative path). Each
file's sha256 is checked before the schema is used: a validator that quietly
used an edited schema would prove nothing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SchemaError

ENV_VAR = "REDCAP_DRILL_ODM_SCHEMA"

#: Relative path -> sha256 of the exact files CDISC published (as redistributed in edc-cdisc 0.3.0).
SCHEMA_FILES: dict[str, str] = {
    "cdisc-odm-1.3.1/ODM1-3-1.xsd": "587ba3810a30ede6301fc7d2e9c6147ca1e0e1ced17bc997996fe41d365905a8",
    "cdisc-odm-1.3.1/ODM1-3-1-foundation.xsd": "2abe2a2bec6295b13bc11c89a488056b6856d5213430824145a613f70e917053",
    "core/xml.xsd": "c8100d08ef7408010c7e00de0e1719fe84f06e174f3fd3294706d4b7aa52bb3a",
    "core/xmldsig-core-schema.xsd": "94f8f6443e33f6e691bc5896b2f267e48669781499502351b8de82a0362ad09b",
}
MAIN = "cdisc-odm-1.3.1/ODM1-3-1.xsd"
FOUNDATION = "cdisc-odm-1.3.1/ODM1-3-1-foundation.xsd"

_HOW_TO_GET_IT = (
    "run `redcap-drill schema install` (downloads CDISC's ODM 1.3.1 XSD once into your user cache) "
    f"or pass --odm-schema DIR / set {ENV_VAR}=DIR to a folder holding "
    + ", ".join(SCHEMA_FILES)
)


@dataclass(frozen=True)
class SchemaLocation:
    """A verified folder with the four official schema files."""

    root: Path
    #: Where it was found: "--odm-schema", the environment variable's name, or "user cache".
    source: str

    @property
    def main(self) -> Path:
        return self.root / MAIN

    @property
    def foundation(self) -> Path:
        return self.root / FOUNDATION


def cache_dir() -> Path:
    """Where ``schema install`` puts the files by default."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "redcap-drill" / "odm_schema"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def problems(root: Path) -> list[str]:
    """What is wrong with ``root`` as a schema folder; empty when it is complete and unaltered."""
    found = []
    for rel, expected in SCHEMA_FILES.items():
        path = root / rel
        if not path.is_file():
            found.append(f"{rel} is missing")
        elif (actual := sha256_of(path)) != expected:
            found.append(f"{rel} has sha256 {actual[:12]}…, expected {expected[:12]}… (edited or a different version)")
    return found


def verify(root: Path, source: str) -> SchemaLocation:
    """The location, or SchemaError saying which file is missing or altered and what to do."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise SchemaError(f"the ODM schema folder {root} (from {source}) does not exist; {_HOW_TO_GET_IT}")
    wrong = problems(root)
    if wrong:
        raise SchemaError(
            f"the ODM schema folder {root} (from {source}) is not CDISC's ODM 1.3.1 schema: "
            + "; ".join(wrong)
            + f". Re-run `redcap-drill schema install --force`, or point {source} at an unaltered copy"
        )
    return SchemaLocation(root.resolve(), source)


def locate_schema(explicit: str | os.PathLike[str] | None = None) -> SchemaLocation:
    """Find and verify the schema folder; the first place that is set wins, and must be right.

    A folder that is named explicitly (flag or environment) but wrong is an
    error rather than a reason to fall back: silently validating against a
    different copy than the one asked for would hide a configuration mistake.
    """
    if explicit:
        return verify(Path(explicit), "--odm-schema")
    env = os.environ.get(ENV_VAR)
    if env:
        return verify(Path(env), ENV_VAR)
    cached = cache_dir()
    if cached.is_dir():
        return verify(cached, "user cache")
    raise SchemaError(f"the official ODM 1.3.1 XSD is not installed on this machine; {_HOW_TO_GET_IT}")
