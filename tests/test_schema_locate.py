"""Finding CDISC's ODM 1.3.1 XSD: flag, environment, user cache — and refusing altered copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import SchemaError
from harness.schema.locate import ENV_VAR, SCHEMA_FILES, cache_dir, locate_schema
from tests.corpus import SHARED

OFFICIAL = SHARED / "schemas" / "odm_schema"

pytestmark = pytest.mark.skipif(not OFFICIAL.is_dir(), reason=f"shared ODM schema copy not found at {OFFICIAL}")


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No environment variable and an empty user cache."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def copy_schema(dest: Path) -> Path:
    shutil.copytree(OFFICIAL, dest)
    return dest


def test_without_any_copy_the_error_says_how_to_get_one(nowhere):
    with pytest.raises(SchemaError) as exc:
        locate_schema()
    message = str(exc.value)
    assert "redcap-drill schema install" in message and "--odm-schema" in message and ENV_VAR in message
    assert exc.value.exit_code == 2


def test_the_flag_comes_first(nowhere, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(nowhere / "does-not-exist"))
    location = locate_schema(OFFICIAL)
    assert location.root == OFFICIAL.resolve() and location.source == "--odm-schema"
    assert location.main.name == "ODM1-3-1.xsd" and location.foundation.is_file()


def test_then_the_environment_variable(nowhere, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(OFFICIAL))
    assert locate_schema().source == ENV_VAR


def test_then_the_user_cache(nowhere):
    copy_schema(cache_dir())
    assert cache_dir() == nowhere / "cache" / "redcap-drill" / "odm_schema"
    assert locate_schema().source == "user cache"


def test_a_named_folder_that_is_wrong_is_an_error_not_a_reason_to_fall_back(nowhere, monkeypatch):
    copy_schema(cache_dir())
    monkeypatch.setenv(ENV_VAR, str(nowhere / "typo"))
    with pytest.raises(SchemaError, match="does not exist"):
        locate_schema()


def test_an_edited_file_is_refused_with_its_name(nowhere):
    root = copy_schema(nowhere / "edited")
    foundation = root / "cdisc-odm-1.3.1" / "ODM1-3-1-foundation.xsd"
    foundation.write_bytes(foundation.read_bytes().replace(b'value="text"', b'value="texts"', 1))
    with pytest.raises(SchemaError) as exc:
        locate_schema(root)
    assert "ODM1-3-1-foundation.xsd has sha256" in str(exc.value)
    assert "schema install --force" in str(exc.value)


def test_a_missing_file_is_refused_with_its_name(nowhere):
    root = copy_schema(nowhere / "partial")
    (root / "core" / "xml.xsd").unlink()
    with pytest.raises(SchemaError, match="core/xml.xsd is missing"):
        locate_schema(root)


def test_the_pinned_hashes_are_those_of_the_shared_copy():
    from harness.schema.locate import sha256_of

    assert {rel: sha256_of(OFFICIAL / rel) for rel in SCHEMA_FILES} == SCHEMA_FILES
