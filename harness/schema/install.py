"""``redcap-drill schema install``: fetch CDISC's ODM 1.3.1 XSD once, verified, into the user cache.

redcap-drill does not redistribute CDISC's schema files. They are taken from
the ``edc-cdisc`` 0.3.0 wheel, which carries them unchanged, and downloaded
with pip from whatever package index pip is configured to use (so mirrors and
proxies work as for any other package). Nothing is trusted that is not pinned:

1. ``pip download --no-deps --only-binary=:all: edc-cdisc==0.3.0`` into a temporary folder
   (``--python-version 3.14`` because the wheel declares Python >= 3.12; it is
   never installed or imported, only read as a zip);
2. the wheel's sha256 must be `WHEEL_SHA256`;
3. only the four schema files under ``edc_cdisc/odm_schema/`` are read out of
   it, each by its expected name (no member name ever becomes a path, so a
   crafted archive cannot write outside the target), and each must have the
   sha256 `locate.SCHEMA_FILES` lists;
4. they are written to a temporary folder beside the destination, which is
   then renamed into place, so an interrupted install leaves nothing half-done.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SchemaError
from harness.schema.locate import SCHEMA_FILES, cache_dir, problems, sha256_of

REQUIREMENT = "edc-cdisc==0.3.0"
WHEEL_SHA256 = "402b9ef993c0693500e450a982abb63ab2bef8f99bb1f781f24f80707279f76e"
MEMBER_PREFIX = "edc_cdisc/odm_schema/"
# The wheel declares Requires-Python >= 3.12; pip must be told which Python to fetch for.
_PIP_PYTHON = "3.14"
_MAX_MEMBER = 1 << 20  # the largest schema file is 116 KiB

ORIGIN = (
    "The ODM 1.3.1 XML Schema files are CDISC's (Clinical Data Interchange Standards Consortium, "
    "https://www.cdisc.org/standards/data-exchange/odm), published by CDISC for implementing ODM, with the "
    "W3C's xml.xsd and xmldsig-core-schema.xsd they import. They are taken unchanged from the edc-cdisc 0.3.0 "
    "wheel (https://github.com/clinicedc/edc-cdisc), pinned by sha256. They are installed for local use only; "
    "redcap-drill does not redistribute them."
)


@dataclass(frozen=True)
class InstallResult:
    path: Path
    #: False when a verified copy was already there and ``force`` was not given.
    installed: bool
    wheel_sha256: str = ""
    origin: str = ORIGIN


def install_schema(dest: str | os.PathLike[str] | None = None, *, force: bool = False,
                   wheel: str | os.PathLike[str] | None = None,
                   wheel_sha256: str | None = None) -> InstallResult:
    """Install the verified schema files into ``dest`` (default: the user cache).

    ``wheel`` uses an already downloaded edc-cdisc wheel instead of running pip
    (offline machines); its hash is checked all the same. ``wheel_sha256`` is
    for tests only, which build their own wheel from a local copy of the XSD:
    the four schema files inside are still checked against CDISC's hashes.
    """
    target = Path(dest).expanduser() if dest else cache_dir()
    if target.is_dir() and not force and not problems(target):
        return InstallResult(target, installed=False)
    with tempfile.TemporaryDirectory(prefix="redcap-drill-wheel-") as tmp:
        path = Path(wheel) if wheel else download_wheel(Path(tmp))
        digest = sha256_of(path)
        wheel_sha256 = wheel_sha256 or WHEEL_SHA256
        if digest != wheel_sha256:
            raise SchemaError(
                f"refusing {path.name}: its sha256 is {digest}, not the pinned {wheel_sha256} of {REQUIREMENT}; "
                "the package index served a different file (a mirror out of date, or tampering). "
                "Check your pip index configuration, or download the wheel from a trusted machine and pass it"
            )
        files = extract_schema(path)
    _write_atomically(target, files)
    return InstallResult(target, installed=True, wheel_sha256=digest)


def download_wheel(into: Path) -> Path:
    """Run pip (its own configured index) to fetch the wheel; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", _PIP_PYTHON, "--dest", str(into), "--disable-pip-version-check",
           "--quiet", REQUIREMENT]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchemaError(f"could not run pip to download {REQUIREMENT} ({exc}); is pip installed?") from exc
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SchemaError(
            f"pip could not download {REQUIREMENT} (exit {proc.returncode}: {' / '.join(tail) or 'no output'}); "
            "check network access and pip's index settings (pip config list), or pass --odm-schema DIR "
            "pointing at a copy of the ODM 1.3.1 XSD"
        )
    return wheels[0]


def extract_schema(wheel: Path) -> dict[str, bytes]:
    """The four schema files from the wheel, each verified; nothing else is read."""
    wanted = {MEMBER_PREFIX + rel: rel for rel in SCHEMA_FILES}
    found: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                rel = wanted.get(info.filename)
                if rel is None:
                    continue  # only ever the exact expected names, so a crafted name cannot escape
                if info.file_size > _MAX_MEMBER:
                    raise SchemaError(f"{info.filename} in {wheel.name} is {info.file_size} bytes; not the ODM schema")
                with zf.open(info) as member:
                    found[rel] = member.read(_MAX_MEMBER + 1)
    except zipfile.BadZipFile as exc:
        raise SchemaError(f"{wheel.name} is not a readable wheel ({exc}); download it again") from exc
    for rel, expected in SCHEMA_FILES.items():
        data = found.get(rel)
        if data is None:
            raise SchemaError(f"{wheel.name} has no {MEMBER_PREFIX}{rel}; it is not the {REQUIREMENT} wheel")
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise SchemaError(
                f"{MEMBER_PREFIX}{rel} in {wheel.name} has sha256 {actual}, expected {expected}; refusing to install it"
            )
    return found


def _write_atomically(target: Path, files: dict[str, bytes]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    old: Path | None = None
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if target.exists():
            # A folder cannot be renamed over a non-empty one: move the old copy aside first.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / "odm_schema")
        os.rename(staging, target)
    except OSError as exc:
        if old is not None and not target.exists():
            os.rename(old / "odm_schema", target)  # put the previous copy back
        raise SchemaError(f"could not write the schema to {target} ({exc}); choose another --dest") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

