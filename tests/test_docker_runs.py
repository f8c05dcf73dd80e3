"""Runs of the disposable REDCap are found and removed by label, teardown survives SIGTERM and
interpreter exit, and logs quoted in errors never carry a token. These parts need no Docker daemon;
``tests/test_docker_e2e.py`` runs the same lifecycle against a real one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone

import pytest

from harness import targets
from harness.cli import main
from harness.dockerenv import labels, readiness
from harness.dockerenv.daemon import connect
from harness.dockerenv.errors import DaemonUnavailable
from harness.dockerenv.labels import Owner
from harness.dockerenv.sweep import Labelled, plan
from harness.dockerenv.teardown import TeardownGuard
from harness.errors import UsageError
from harness.targets.secret import Secret

NO_DAEMON = "unix:///nonexistent/redcap-drill-test.sock"


# --- labels --------------------------------------------------------------------------------------


def test_every_object_of_a_run_carries_its_run_owner_and_keep_flag():
    made = labels.run_labels("20250101T000000-abc123", "db", keep=True, owner="42@99", host="build-7")
    assert made == {labels.RUN: "20250101T000000-abc123", labels.ROLE: "db", labels.HOST: "build-7",
                    labels.OWNER: "42@99", labels.KEEP: "1"}
    assert Owner.from_labels(made) == Owner("20250101T000000-abc123", "build-7", "42@99", True)
    assert Owner.from_labels({"com.example": "x"}) is None


def test_run_ids_sort_by_time_and_filters_select_one_run_or_all():
    run = labels.new_run_id(datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert run.startswith("20250102T030405-") and len(run) == 22
    assert labels.object_name(run, "db") == f"redcap-drill-{run}-db"
    assert labels.run_filter(run) == {"label": [f"redcap-drill.run={run}"]}
    assert labels.run_filter() == {"label": ["redcap-drill.run"]}


def test_this_process_is_alive_and_a_recycled_or_dead_pid_is_not():
    assert labels.owner_alive(labels.process_owner())
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not labels.owner_alive(child.stdout.strip())
    if labels.process_owner() != str(os.getpid()):  # start times are readable (Linux)
        assert not labels.owner_alive(f"{os.getpid()}@1")  # same pid, different process start
    assert not labels.owner_alive("garbage")


# --- sweep: what gets removed ----------------------------------------------------------------------


def objects(run: str, *, host: str = "here", owner: str = "1@1", keep: bool = False) -> list[Labelled]:
    who = Owner(run, host, owner, keep)
    return [Labelled("network", f"n-{run}", f"{run}-net", who), Labelled("container", f"c-{run}", f"{run}-db", who),
            Labelled("volume", f"v-{run}", f"{run}-dbdata", who)]


def test_sweep_removes_whole_runs_whose_process_is_gone_and_leaves_the_rest():
    everything = (objects("dead", owner="1@1") + objects("live", owner="2@2") + objects("kept", keep=True)
                  + objects("elsewhere", host="ci-runner-9"))
    remove, leave = plan(everything, this_host="here", alive=lambda owner: owner == "2@2")
    assert [(o.kind, o.owner.run_id) for o in remove] == [("container", "dead"), ("volume", "dead"),
                                                          ("network", "dead")]
    reasons = {o.owner.run_id: reason for o, reason in leave}
    assert "still going" in reasons["live"]
    assert "kept on purpose" in reasons["kept"] and "docker down kept" in reasons["kept"]
    assert "host ci-runner-9" in reasons["elsewhere"]


def test_sweep_all_removes_kept_live_and_foreign_runs_too():
    everything = objects("live", owner="2@2") + objects("kept", keep=True) + objects("elsewhere", host="x")
    remove, leave = plan(everything, this_host="here", alive=lambda owner: True, include_kept=True,
                         include_live=True)
    assert leave == [] and len(remove) == 9
    assert [o.kind for o in remove][:3] == ["container"] * 3  # containers first: they hold volumes and networks


# --- teardown on signals and at exit ---------------------------------------------------------------


def test_sigterm_unwinds_like_ctrl_c_so_finally_blocks_tear_down():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    stopped = []
    guard = TeardownGuard(lambda: stopped.append("atexit")).arm()
    try:
        with pytest.raises(SystemExit) as exc:
            try:
                signal.raise_signal(signal.SIGTERM)
            finally:
                stopped.append("finally")
        assert exc.value.code == 128 + signal.SIGTERM
    finally:
        guard.disarm()
    assert stopped == ["finally"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


GUARDED_CHILD = textwrap.dedent("""
    import sys, time
    from harness.dockerenv.teardown import TeardownGuard
    marker = sys.argv[1]
    def stop():
        open(marker, "a").write("stopped\\n")
    guard = TeardownGuard(stop).arm()
    if sys.argv[2] == "exit":
        sys.exit(0)          # never disarmed: atexit must stop it
    print("ready", flush=True)
    try:
        time.sleep(60)
    finally:
        guard.disarm()
        stop()
""")


@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_a_process_that_exits_or_is_terminated_still_tears_down(tmp_path, how):
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", GUARDED_CHILD, str(marker), how], stdout=subprocess.PIPE,
                             text=True)
    if how == "sigterm":
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == (128 + signal.SIGTERM if how == "sigterm" else 0)
    assert marker.read_text() == "stopped\n"


# --- logs and errors never carry tokens ------------------------------------------------------------


def test_log_tails_are_scrubbed_of_our_secrets_hex_tokens_and_password_values():
    token = Secret("C0FFEE" * 10 + "ABCD")
    log = (f"POST /api/ token={token.reveal()}\nproject token 0123456789ABCDEF0123456789ABCDEF created\n"
           "mysqld: password: hunter2-long\nok")
    scrubbed = readiness.scrub_log(log, token)
    assert token.reveal() not in scrubbed and "0123456789ABCDEF0123456789ABCDEF" not in scrubbed
    assert "hunter2-long" not in scrubbed
    assert scrubbed.endswith("ok") and "created" in scrubbed


def test_polling_stops_at_the_first_answer_or_at_the_deadline():
    now = [0.0]
    answers = iter([None, None, "15.2.0"])
    assert readiness.poll(lambda: next(answers), timeout=10, clock=lambda: now[0],
                          sleep=lambda s: now.__setitem__(0, now[0] + s)) == "15.2.0"
    assert readiness.poll(lambda: None, timeout=3, interval=1, clock=lambda: now[0],
                          sleep=lambda s: now.__setitem__(0, now[0] + s)) is None


# --- errors a user sees without a daemon -----------------------------------------------------------


def test_no_daemon_says_how_to_start_one():
    with pytest.raises(DaemonUnavailable, match=r"cannot reach a Docker daemon at unix:///nonexistent.*start it"):
        connect(NO_DAEMON)


def test_cli_without_a_daemon_exits_2_with_the_reason(capsys):
    assert main(["docker", "--docker-host", NO_DAEMON, "sweep"]) == 2
    assert "DaemonUnavailable: cannot reach a Docker daemon" in capsys.readouterr().err


def test_cli_checks_the_zip_before_asking_the_daemon(tmp_path, capsys):
    (tmp_path / "notes.zip").write_bytes(b"PK but not really")
    assert main(["docker", "--docker-host", NO_DAEMON, "build", "--zip", str(tmp_path / "notes.zip")]) == 2
    assert "NotARedcapZip" in capsys.readouterr().err


def test_cli_down_needs_run_ids_or_all(capsys):
    assert main(["docker", "--docker-host", NO_DAEMON, "down"]) == 2
    assert "name the runs to remove" in capsys.readouterr().err


def test_the_docker_target_needs_a_zip_or_an_image(monkeypatch):
    monkeypatch.delenv("REDCAP_DRILL_DOCKER_ZIP", raising=False)
    monkeypatch.delenv("REDCAP_DRILL_DOCKER_IMAGE", raising=False)
    with pytest.raises(UsageError, match="needs your REDCap.*redcap-drill docker build --zip"):
        targets.get("docker")
    with pytest.raises(UsageError, match="bad option for the docker target"):
        targets.get("docker", image="x", colour="red")
