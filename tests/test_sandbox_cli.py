"""``redcap-drill sandbox serve`` and ``python -m harness.sandbox`` run a usable sandbox in the foreground."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

TOKEN = "AB" * 32


def start(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed = {}
    for _ in range(2):
        line = proc.stdout.readline()
        key, _, value = line.strip().partition("=")
        printed[key] = value
    return proc, printed


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    return out, err


@pytest.mark.parametrize("command", [
    ["-m", "harness", "sandbox", "serve"],
    ["-m", "harness.sandbox"],
], ids=["redcap-drill sandbox serve", "python -m harness.sandbox"])
def test_serve_prints_url_and_token_once_and_never_logs_the_token(command):
    proc, printed = start(*command, "--port", "0", "--super-token", TOKEN)
    try:
        assert printed["url"].startswith("http://127.0.0.1:") and printed["url"].endswith("/api/")
        assert printed["super_token"] == TOKEN
        r = requests.post(printed["url"], data={"token": TOKEN, "content": "version"}, timeout=10)
        assert r.text == "15.7.6"
        r = requests.post(printed["url"], data={"token": TOKEN, "content": "project", "format": "json",
                                                "data": '[{"project_title":"CLI","purpose":"0"}]'}, timeout=10)
        project_token = r.text
        requests.post(printed["url"], data={"token": project_token, "content": "record", "format": "json"}, timeout=10)
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0
    assert TOKEN not in out and TOKEN not in err and project_token not in err
    assert "token=********" in err


def test_a_random_token_is_made_when_none_is_given():
    proc, printed = start("-m", "harness", "sandbox", "serve")
    try:
        token = printed["super_token"]
        assert len(token) == 64 and token == token.upper()
        assert requests.post(printed["url"], data={"token": token, "content": "version"}, timeout=10).ok
    finally:
        stop(proc)


def test_a_malformed_super_token_is_a_usage_error():
    r = subprocess.run([sys.executable, "-m", "harness", "sandbox", "serve", "--super-token", "short"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "64 hexadecimal characters" in r.stderr and r.stdout == ""


def test_the_database_file_keeps_projects_between_runs(tmp_path):
    db = tmp_path / "sandbox.sqlite3"
    proc, printed = start("-m", "harness", "sandbox", "serve", "--db", str(db), "--super-token", TOKEN)
    try:
        project = requests.post(printed["url"], data={"token": TOKEN, "content": "project", "format": "json",
                                                      "data": '[{"project_title":"Kept","purpose":"0"}]'},
                                timeout=10).text
    finally:
        stop(proc)
    proc, printed = start("-m", "harness", "sandbox", "serve", "--db", str(db), "--super-token", TOKEN)
    try:
        r = requests.post(printed["url"], data={"token": project, "content": "project", "format": "json"}, timeout=10)
        assert r.json()["project_title"] == "Kept"
    finally:
        stop(proc)
