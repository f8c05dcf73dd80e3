"""The disposable Docker REDCap against a real Docker daemon: start, readiness, super token, a full
drill, teardown, and sweeping up after a run that was killed.

REDCap is licensed per site, so the web image is the stand-in (`harness.dockerenv.standin`): our
sandbox behind REDCap's install contract — it only serves once the install has written the version
row, switched the API on, set the base URL and stored an administrator's super token, and then it
accepts exactly that token. The DB is a real MariaDB. ``scripts/docker-e2e`` sets everything up and
runs these with REDCAP_DRILL_DOCKER_TESTS=1; without it they are skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from harness import targets
from harness.dockerenv import daemon, recipes, standin, sweep
from harness.dockerenv.errors import (BuildFailed, DaemonUnavailable, ImageMissing, InstallFailed,
                                      ReadinessTimeout)
from harness.dockerenv.lifecycle import DockerEnvironment, EnvironmentSpec
from harness.dockerenv.redcap_zip import inspect_zip
from harness.drill import DrillOptions, drill
from harness.errors import TargetError
from harness.targets.api import RedcapApi
from harness.targets.secret import Secret

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(os.environ.get("REDCAP_DRILL_DOCKER_TESTS") != "1",
                       reason="Docker end-to-end tests run through scripts/docker-e2e "
                              "(or set REDCAP_DRILL_DOCKER_TESTS=1 with a daemon and REDCAP_DRILL_STANDIN_BASE)"),
]

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "samples"
SAMPLE = SAMPLES / "2025-05-03" / "DrillClassicAllTypes_2025-05-03_0200.REDCap.zip"
HARNESS = [sys.executable, "-m", "harness"]


@pytest.fixture(scope="module")
def client():
    try:
        return daemon.connect()
    except DaemonUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def images(client) -> tuple[str, str]:
    """(web, db) stand-in images, built from the base image scripts/docker-e2e made."""
    base = os.environ.get("REDCAP_DRILL_STANDIN_BASE", "")
    if not base or not recipes.image_exists(client, base):
        pytest.skip(f"stand-in base image {base or '(REDCAP_DRILL_STANDIN_BASE unset)'} not found; "
                    "run scripts/docker-e2e")
    return standin.build_standin_images(client, base_image=base)


def test_a_site_starts_serves_its_super_token_only_and_leaves_nothing_behind(client, images):
    web, db = images
    with DockerEnvironment(EnvironmentSpec(web_image=web, db_image=db), client=client) as env:
        made = sweep.find(client, env.run_id)
        assert sorted(obj.kind for obj in made) == ["container", "container", "network", "volume", "volume"]
        assert client.networks.get(env.network).attrs["Internal"] is True  # no way out for restored records
        assert re.fullmatch(r"[0-9A-F]{64}", env.super_token.reveal())
        assert env.super_token.reveal() not in repr(env) + json.dumps(env.to_dict())

        api = RedcapApi(env.api_url, super_token=env.super_token)
        assert api.version() == env.version
        with pytest.raises(TargetError, match="HTTP 403"):
            RedcapApi(env.api_url, super_token=Secret("F" * 64)).version()

        # database.php is readable by Apache's group only: it holds the DB password and salt.
        chunks, _ = client.containers.get(env.web_container).get_archive("/var/www/html/database.php")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.getmembers()[0]
        assert (member.mode & 0o777, member.gid) == (0o640, recipes.WWW_DATA)
        for name in (env.web_container, env.db_container):
            assert env.super_token.reveal().encode() not in client.containers.get(name).logs()
        run_id = env.run_id
    assert sweep.find(client, run_id) == []


def test_a_sample_archive_drills_green_through_the_docker_target(client, images):
    web, db = images
    with targets.get("docker", image=web, db_image=db) as target:
        assert target.info().kind == "docker" and target.info().url.endswith("/api/")
        result = drill(SAMPLE, target, DrillOptions())
        run_id = target.env.run_id
        assert result.stage("restore").status == "passed", result.stage("restore").reason
        assert result.stage("export").status == "passed", result.stage("export").reason
        assert result.passed, f"{result.failed_stage.name}: {result.failed_stage.reason}"
    assert sweep.find(client, run_id) == []
    assert all(c.status == "removed" for c in target.cleanups)


KILLED_RUN = """
import sys, time
from harness.dockerenv.lifecycle import DockerEnvironment, EnvironmentSpec
env = DockerEnvironment(EnvironmentSpec(web_image=sys.argv[1], db_image=sys.argv[2])).start()
print(env.run_id, flush=True)
time.sleep(600)
"""


def test_sweep_removes_what_a_killed_run_left_and_only_that(client, images):
    web, db = images
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, web, db], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    run_id = child.stdout.readline().strip()
    try:
        assert run_id, child.stderr.read() if child.poll() is not None else "the run printed no id"
        assert len(sweep.find(client, run_id)) == 5
        swept_while_alive = subprocess.run([*HARNESS, "docker", "sweep"], capture_output=True, text=True)
        assert f"run {run_id}" not in swept_while_alive.stdout  # its process is still going
        assert "still going" in swept_while_alive.stderr
    finally:
        child.send_signal(signal.SIGKILL)  # no teardown can run: this is what sweep is for
        child.wait(timeout=30)
    assert len(sweep.find(client, run_id)) == 5

    swept = subprocess.run([*HARNESS, "docker", "sweep"], capture_output=True, text=True, timeout=300)
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.count(f"(run {run_id})") == 5
    assert sweep.find(client, run_id) == []


def test_up_prints_where_keeps_the_token_in_a_private_file_and_down_removes_it(client, images, tmp_path):
    web, db = images
    up = subprocess.run([*HARNESS, "docker", "up", "--image", web, "--db-image", db, "--state-dir", str(tmp_path),
                         "--json"], capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, up.stderr
    facts = json.loads(up.stdout)
    token_file = Path(facts["token_file"])
    token = token_file.read_text().strip()
    try:
        assert re.fullmatch(r"[0-9A-F]{64}", token)
        assert token not in up.stdout + up.stderr
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(facts["admin_password_file"]).stat().st_mode) == 0o600
        # The site outlived `up`, answers its token, and a sweep leaves a kept site alone.
        assert RedcapApi(facts["api_url"], super_token=Secret(token)).version() == facts["version"]
        swept = subprocess.run([*HARNESS, "docker", "sweep"], capture_output=True, text=True)
        assert "kept on purpose" in swept.stderr and len(sweep.find(client, facts["run_id"])) == 5
    finally:
        down = subprocess.run([*HARNESS, "docker", "down", facts["run_id"], "--state-dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"{facts['run_id']}: removed 5 object(s)"
    assert sweep.find(client, facts["run_id"]) == []
    assert not Path(facts["state_dir"]).exists()


def test_a_db_that_never_gets_healthy_times_out_with_its_log_and_is_removed(client, images):
    web, db = images
    # A server without TCP never passes the TCP healthcheck, exactly like one still initialising.
    site = DockerEnvironment(EnvironmentSpec(web_image=web, db_image=db, db_args=("--skip-networking",),
                                             db_timeout=8), client=client)
    with pytest.raises(ReadinessTimeout, match=r"database container did not report healthy within 8 s") as exc:
        site.start()
    assert "last lines of its log" in str(exc.value) and "mariadbd" in str(exc.value).lower()
    assert sweep.find(client, site.run_id) == []


def test_missing_images_say_how_to_build_or_pull_them(client, images):
    web, _ = images
    with pytest.raises(ImageMissing, match=r"redcap-drill/redcap:0\.0\.0-none is not on this machine.*docker build"):
        DockerEnvironment(EnvironmentSpec(web_image="redcap-drill/redcap:0.0.0-none"), client=client).start()
    with pytest.raises(ImageMissing, match=r"mariadb:0-none is not on this machine.*docker pull mariadb:0-none"):
        DockerEnvironment(EnvironmentSpec(web_image=web, db_image="mariadb:0-none", pull_db=False),
                          client=client).start()


def test_an_image_without_redcap_is_refused_before_anything_starts(client, images):
    _, db = images
    site = DockerEnvironment(EnvironmentSpec(web_image=db, db_image=db), client=client)
    with pytest.raises(InstallFailed, match=r"has no /var/www/html/redcap_vX\.Y\.Z folder.*docker build --zip"):
        site.start()
    assert sweep.find(client, site.run_id) == []


def test_a_web_image_build_that_fails_says_why_and_tags_nothing(client, tmp_path):
    from test_docker_build import INSTALL, make_zip

    facts = inspect_zip(make_zip(tmp_path / "redcap15.2.0.zip", INSTALL))
    with pytest.raises(BuildFailed, match=r"building redcap-drill/redcap:15\.2\.0-\w+ failed: .*redcap-drill/no-php"):
        recipes.build_web_image(client, facts, base_image="redcap-drill/no-php:0")
    assert not recipes.image_exists(client, recipes.web_image_tag(facts))
