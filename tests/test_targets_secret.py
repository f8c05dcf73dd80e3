"""Tokens cannot leak: Secret masks itself everywhere, and super tokens come only from env or a file."""

from __future__ import annotations

import pickle
from datetime import datetime

import pytest

from harness.errors import UsageError
from harness.targets import Restored, Secret, scrub, super_token_from
from harness.targets.api import RedcapApi, redact_url

TOKEN = "0123456789ABCDEF0123456789ABCDEF"


def test_a_secret_never_shows_its_value_in_repr_str_or_format():
    secret = Secret(TOKEN)
    for text in (repr(secret), str(secret), f"{secret}", "%s" % secret, format(secret, ">40"), repr([secret])):
        assert TOKEN not in text
        assert "****" in text
    assert secret.reveal() == TOKEN


def test_a_secret_refuses_to_be_pickled_into_another_process():
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(TOKEN))


def test_a_restored_project_hides_its_token_in_repr_and_to_dict():
    restored = Restored("sandbox", 7, "My study", datetime(2025, 1, 1), Secret(TOKEN))
    assert TOKEN not in repr(restored)
    assert TOKEN not in str(restored.to_dict())
    assert restored.to_dict()["project_id"] == 7


def test_scrub_replaces_every_occurrence_of_a_token_in_foreign_text():
    text = f"ERROR: token {TOKEN} is invalid ({TOKEN})"
    assert TOKEN not in scrub(text, Secret(TOKEN))


def test_the_super_token_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN", "A" * 64)
    assert super_token_from().reveal() == "A" * 64


def test_the_super_token_comes_from_a_file_when_one_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("REDCAP_DRILL_SUPER_TOKEN", raising=False)
    path = tmp_path / "token"
    path.write_text("B" * 64 + "\n")
    assert super_token_from(file=path).reveal() == "B" * 64


def test_the_super_token_file_can_be_named_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("REDCAP_DRILL_SUPER_TOKEN", raising=False)
    path = tmp_path / "token"
    path.write_text("C" * 64 + "\n")
    monkeypatch.setenv("REDCAP_DRILL_SUPER_TOKEN_FILE", str(path))
    assert super_token_from().reveal() == "C" * 64


def test_a_missing_super_token_says_where_to_put_it(monkeypatch):
    monkeypatch.delenv("REDCAP_DRILL_SUPER_TOKEN", raising=False)
    monkeypatch.delenv("REDCAP_DRILL_SUPER_TOKEN_FILE", raising=False)
    with pytest.raises(UsageError, match="REDCAP_DRILL_SUPER_TOKEN"):
        super_token_from()


def test_the_url_target_has_no_way_to_take_a_token_on_the_command_line():
    from harness.commands import run

    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    run.register(sub)
    options = {opt for action in sub.choices["run"]._actions for opt in action.option_strings}
    assert not any("token" in opt and "file" not in opt for opt in options)


def test_credentials_in_a_url_never_reach_messages():
    assert redact_url("https://user:pass@redcap.example.org/api/") == "https://redcap.example.org/api/"


def test_an_api_url_must_end_in_api():
    from harness.errors import TargetError

    with pytest.raises(TargetError, match="must end with /api/"):
        RedcapApi("https://redcap.example.org/redcap/")
