"""``redcap-drill run`` and ``redcap-drill report``, as a user runs them (a subprocess per command).

Exit codes: 0 every drill passed, 1 a drill failed, 2 could not run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema


ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "fixtures" / "samples"
CANARY = ROOT / "fixtures" / "canary"


def redcap_drill(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def summary(report_dir: Path) -> dict:
    return json.loads((report_dir / "latest" / "summary.json").read_text())


def test_run_without_arguments_drills_the_sample_store_on_the_sandbox(tmp_path):
    done = redcap_drill("run", "--report-dir", str(tmp_path))
    assert (tmp_path / "latest" / "report.html").is_file(), done.stderr
    data = summary(tmp_path)
    assert data["run"]["target"]["kind"] == "sandbox"
    assert data["summary"]["projects"] == 4 and data["run"]["archives"] == str(SAMPLES)
    # the exit code is the report's verdict
    assert done.returncode == (0 if data["summary"]["outcome"] == "passed" else 1), done.stdout[-2000:]
    assert (tmp_path / "latest" / "junit.xml").is_file() and (tmp_path / "ledger.jsonl").is_file()


def test_a_passing_run_exits_0_and_prints_progress_per_archive_and_stage(tmp_path):
    done = redcap_drill("run", "--report-dir", str(tmp_path), "--project", "Drill Classic*",
                        "--project", "Drill Metadata Only")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    progress = [line for line in done.stderr.splitlines() if line.startswith("redcap-drill: [")]
    assert "redcap-drill: [0/2] Drill Classic All Types: integrity passed" in progress
    assert any(line.endswith("Drill Metadata Only: records skipped") for line in progress)
    assert progress[-1].startswith("redcap-drill: [2/2]")
    assert len(progress) == 2 * 9


def test_a_failing_drill_exits_1_and_still_writes_the_report(tmp_path):
    done = redcap_drill("run", "--archives", str(CANARY), "--report-dir", str(tmp_path))
    assert done.returncode == 1
    assert summary(tmp_path)["projects"][0]["failed_stage"] == "semantics"


def test_a_missing_schema_says_how_to_install_it(tmp_path):
    done = redcap_drill("run", "--report-dir", str(tmp_path), env={"REDCAP_DRILL_ODM_SCHEMA": str(tmp_path / "none")})
    assert done.returncode == 2
    assert "redcap-drill schema install" in done.stderr
    assert not (tmp_path / "latest").exists()


@pytest.mark.parametrize("args, message", [
    (("--archives", "/nonexistent/backups"), "does not exist; pass --archives DIR"),
    (("--shard", "3/2"), "invalid --shard '3/2'"),
    (("--max-age", "soon"), "invalid duration 'soon'"),
    (("--project", "no such project"), "matches none of the 4 projects"),
    (("--target", "docker"), "--target docker needs your REDCap: --docker-zip"),
    (("--target", "docker", "--docker-zip", "/nonexistent/redcap15.2.0.zip"), "redcap15.2.0.zip does not exist"),
])
def test_unusable_options_exit_2_with_what_to_do(tmp_path, args, message):
    done = redcap_drill("run", "--report-dir", str(tmp_path), *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_an_unreachable_url_target_exits_2_before_anything_runs(tmp_path):
    done = redcap_drill("run", "--report-dir", str(tmp_path), "--target", "url", "--target-url",
                        "http://127.0.0.1:9/api/", env={"REDCAP_DRILL_SUPER_TOKEN": "C" * 64})
    assert done.returncode == 2
    assert "127.0.0.1:9" in done.stderr and "C" * 64 not in done.stderr + done.stdout


def test_arguments_after_a_double_dash_go_to_pytest_and_no_progress_keeps_stderr_quiet(tmp_path):
    done = redcap_drill("run", "--report-dir", str(tmp_path), "--project", "Drill Metadata Only", "--no-progress",
                        "--", "-k", "integrity")
    assert done.returncode == 0
    assert "1 passed" in done.stdout and "deselected" in done.stdout
    assert "redcap-drill: [" not in done.stderr


def test_shards_run_separately_merge_into_one_report_and_share_the_ledger(tmp_path):
    runs = []
    for k in (1, 2):
        done = redcap_drill("run", "--report-dir", str(tmp_path), "--shard", f"{k}/2", "--no-progress",
                            "--project", "Drill Classic*,Drill DAGs*,Drill Metadata*")
        assert done.returncode == 0, done.stdout[-2000:]
        runs.append(next(p for p in (tmp_path / "runs").iterdir() if p.name.endswith(f"shard{k}of2")))
    merged = redcap_drill("report", "merge", *map(str, runs), "--out", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "PASSED: 3/3 projects passed" in merged.stdout
    data = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert data["summary"]["projects"] == 3 and len(data["run"]["merged_from"]) == 2
    history = redcap_drill("report", "history", "--report-dir", str(tmp_path))
    rows = [line for line in history.stdout.splitlines() if "(Project." in line]
    assert history.returncode == 0 and len(rows) == 3 and all(" passed " in row for row in rows)
