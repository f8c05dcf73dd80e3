"""`schema install`: the XSD comes only from a wheel whose hash is pinned, file by file verified.

The tests build their own wheel from the shared copy of CDISC's files, so they
need no network; one test really runs pip against the configured index and is
skipped unless REDCAP_DRILL_NETWORK_TESTS=1.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import SchemaError
from harness.schema.install import MEMBER_PREFIX, WHEEL_SHA256, install_schema
from harness.schema.locate import SCHEMA_FILES, locate_schema, problems
from tests.corpus import SHARED

OFFICIAL = SHARED / "schemas" / "odm_schema"

pytestmark = pytest.mark.skipif(not OFFICIAL.is_dir(), reason=f"shared ODM schema copy not found at {OFFICIAL}")


def build_wheel(path: Path, *, edit: str | None = None, extra: dict[str, bytes] | None = None) -> tuple[Path, str]:
    """A wheel laid out like edc-cdisc's, from the shared XSD copy; returns (path, sha256)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("edc_cdisc/__init__.py", "")
        for rel in SCHEMA_FILES:
            data = (OFFICIAL / rel).read_bytes()
            if rel == edit:
                data = data.replace(b"<xs:", b"<xs:", 1) + b"<!-- edited -->"
            zf.writestr(MEMBER_PREFIX + rel, data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        zf.writestr("edc_cdisc-0.3.0.dist-info/METADATA", "Name: edc-cdisc\nVersion: 0.3.0\n")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_installs_the_four_files_from_the_wheel_and_they_verify(tmp_path):
    wheel, digest = build_wheel(tmp_path / "edc_cdisc-0.3.0-py3-none-any.whl")
    dest = tmp_path / "cache" / "odm_schema"
    result = install_schema(dest, wheel=wheel, wheel_sha256=digest)
    assert result.installed and result.path == dest and result.wheel_sha256 == digest
    assert problems(dest) == []
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.xsd")) == sorted(SCHEMA_FILES)
    assert locate_schema(dest).root == dest.resolve()
    assert "CDISC" in result.origin and "edc-cdisc" in result.origin


def test_a_wheel_with_another_hash_is_refused_and_nothing_is_written(tmp_path):
    wheel, _ = build_wheel(tmp_path / "edc_cdisc-0.3.0-py3-none-any.whl")
    dest = tmp_path / "odm_schema"
    with pytest.raises(SchemaError) as exc:
        install_schema(dest, wheel=wheel)  # the real pin: our home-made wheel cannot match it
    assert "refusing" in str(exc.value) and WHEEL_SHA256 in str(exc.value)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [wheel]


def test_a_schema_file_that_differs_inside_a_trusted_wheel_is_refused(tmp_path):
    wheel, digest = build_wheel(tmp_path / "w.whl", edit="core/xml.xsd")
    dest = tmp_path / "odm_schema"
    with pytest.raises(SchemaError, match="core/xml.xsd in w.whl has sha256"):
        install_schema(dest, wheel=wheel, wheel_sha256=digest)
    assert not dest.exists()


def test_member_names_never_become_paths(tmp_path):
    hostile = {
        MEMBER_PREFIX + "../../../../escaped.xsd": b"<evil/>",
        "/tmp/absolute-escape.xsd": b"<evil/>",
        MEMBER_PREFIX + "cdisc-odm-1.3.1/extra.xsd": b"<extra/>",
    }
    wheel, digest = build_wheel(tmp_path / "w.whl", extra=hostile)
    dest = tmp_path / "deep" / "odm_schema"
    install_schema(dest, wheel=wheel, wheel_sha256=digest)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(["w.whl"] + [f"deep/odm_schema/{rel}" for rel in SCHEMA_FILES])
    assert not Path("/tmp/absolute-escape.xsd").exists()


def test_a_verified_copy_is_kept_unless_forced(tmp_path):
    wheel, digest = build_wheel(tmp_path / "w.whl")
    dest = tmp_path / "odm_schema"
    install_schema(dest, wheel=wheel, wheel_sha256=digest)
    again = install_schema(dest, wheel=tmp_path / "not-even-read.whl")
    assert not again.installed
    forced = install_schema(dest, wheel=wheel, wheel_sha256=digest, force=True)
    assert forced.installed and problems(dest) == []


def test_a_damaged_copy_is_replaced_whole_and_no_temporary_folders_remain(tmp_path):
    wheel, digest = build_wheel(tmp_path / "w.whl")
    dest = tmp_path / "cache" / "odm_schema"
    install_schema(dest, wheel=wheel, wheel_sha256=digest)
    (dest / "core" / "xml.xsd").write_text("damaged")
    (dest / "stray.txt").write_text("left by someone")
    install_schema(dest, wheel=wheel, wheel_sha256=digest)
    assert problems(dest) == [] and not (dest / "stray.txt").exists()
    assert [p.name for p in dest.parent.iterdir()] == ["odm_schema"]


def test_the_cli_refuses_an_unpinned_wheel_with_exit_2(tmp_path, capsys):
    wheel, _ = build_wheel(tmp_path / "w.whl")
    code = main(["schema", "install", "--dest", str(tmp_path / "s"), "--wheel", str(wheel)])
    assert code == 2
    assert "SchemaError: refusing w.whl" in capsys.readouterr().err


def test_the_cli_installs_and_says_where_the_files_come_from(tmp_path, capsys, monkeypatch):
    wheel, digest = build_wheel(tmp_path / "w.whl")
    import harness.schema.install as install

    # The CLI always uses the real pin; only this test swaps in the pin of its home-made wheel.
    monkeypatch.setattr(install, "WHEEL_SHA256", digest)
    code = main(["schema", "install", "--dest", str(tmp_path / "s"), "--wheel", str(wheel)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "installed the ODM 1.3.1 XSD" in out and "CDISC" in out and "--odm-schema" in out
    assert main(["schema", "where", "--odm-schema", str(tmp_path / "s")]) == 0
    assert "match CDISC's published hashes" in capsys.readouterr().out


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("REDCAP_DRILL_NETWORK_TESTS") != "1",
                    reason="downloads from the package index; set REDCAP_DRILL_NETWORK_TESTS=1 to run")
def test_really_downloads_the_pinned_wheel_with_pip(tmp_path):
    result = install_schema(tmp_path / "odm_schema")
    assert result.installed and result.wheel_sha256 == WHEEL_SHA256
    assert problems(tmp_path / "odm_schema") == []
