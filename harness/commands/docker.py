"""``redcap-drill docker build|up|down|sweep``: a disposable real REDCap in Docker.

``build`` makes the web image from the site's REDCap install zip; ``up`` starts
a site and leaves it running (URL on stdout, super token in a 0600 file, never
printed); ``down`` removes a site; ``sweep`` removes what killed runs left
behind. Results go to stdout, progress and errors to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from harness.dockerenv import daemon, recipes, standin, sweep
from harness.dockerenv.lifecycle import DockerEnvironment, EnvironmentSpec
from harness.dockerenv.redcap_zip import inspect_zip
from harness.errors import UsageError
from harness.targets.secret import Secret

log = logging.getLogger(__name__)
STATE_ENV = "REDCAP_DRILL_DOCKER_STATE"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "docker", help="a disposable real REDCap in Docker, built from your REDCap zip",
        description="Build, start and remove a throw-away REDCap (MariaDB + PHP/Apache) from the REDCap install "
                    "zip your site downloaded. Every Docker object is labelled redcap-drill.run=<id>.",
        epilog="Exit codes: 0 ok, 2 could not run (no daemon, image missing, not a REDCap zip, not ready in time).")
    parser.add_argument("--docker-host", metavar="URL", help="Docker daemon (default: DOCKER_HOST or the local socket)")
    actions = parser.add_subparsers(dest="docker_command", metavar="ACTION", required=True)

    build = actions.add_parser("build", help="build the REDCap web image from your install zip",
                               description="Build (or reuse) the web image: PHP 8 + Apache with mysqli, gd and zip, "
                                           "raised upload limits, and your zip's redcap/ folder as the web root.")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--zip", type=Path, metavar="ZIP", help="REDCap install zip (redcapX.Y.Z.zip)")
    source.add_argument("--standin", metavar="BASE_IMAGE",
                        help="instead: build the stand-in image pair (our sandbox behind REDCap's install contract) "
                             "from a Debian base image, for trying the Docker path without REDCap")
    build.add_argument("--php-image", default=recipes.DEFAULT_PHP_IMAGE,
                       help=f"PHP + Apache base image (default {recipes.DEFAULT_PHP_IMAGE})")
    build.add_argument("--tag", help="image tag (default redcap-drill/redcap:<version>-<zip sha256 prefix>)")
    build.add_argument("--rebuild", action="store_true", help="build even if the tag exists")
    build.set_defaults(func=run_build)

    up = actions.add_parser("up", help="start a REDCap and leave it running",
                            description="Start a disposable REDCap and leave it running. Prints its URL; the super "
                                        "API token and admin password go to 0600 files, never to the terminal.")
    _site_options(up)
    up.add_argument("--publish", type=int, metavar="PORT",
                    help="publish the web port on 127.0.0.1:PORT (0 = any free port) instead of using the "
                         "container's address (needed with Docker Desktop)")
    up.add_argument("--state-dir", type=Path, metavar="DIR",
                    help=f"where the token files go (default ${STATE_ENV}, else ~/.local/state/redcap-drill/docker)")
    up.add_argument("--json", action="store_true", help="print the site's facts as JSON")
    up.set_defaults(func=run_up)

    down = actions.add_parser("down", help="remove started REDCaps (containers, volumes, network, token files)")
    down.add_argument("runs", nargs="*", metavar="RUN_ID", help="run ids printed by `up`")
    down.add_argument("--all", action="store_true", help="every redcap-drill run on this daemon")
    down.add_argument("--state-dir", type=Path, metavar="DIR", help="where `up` put the token files")
    down.set_defaults(func=run_down)

    sweeper = actions.add_parser("sweep", help="remove what killed runs left behind",
                                 description="Remove containers, volumes and networks labelled by redcap-drill "
                                             "whose run's process is gone. Kept sites (`up`, --keep) and runs "
                                             "still going are left alone unless --all is given.")
    sweeper.add_argument("--all", action="store_true", help="also kept sites and runs that look alive")
    sweeper.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    sweeper.set_defaults(func=run_sweep)


def _site_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--zip", type=Path, metavar="ZIP", help="REDCap install zip (the image is built once)")
    source.add_argument("--image", help="a web image built before (`redcap-drill docker build`)")
    parser.add_argument("--db-image", default=recipes.DEFAULT_DB_IMAGE,
                        help=f"MariaDB image (default {recipes.DEFAULT_DB_IMAGE})")
    parser.add_argument("--php-image", default=recipes.DEFAULT_PHP_IMAGE, help="PHP base image when building")
    parser.add_argument("--no-pull", action="store_true", help="never pull a missing DB image")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="how long to wait for the DB and then for REDCap (default 600)")


# -- build ---------------------------------------------------------------------------------
def run_build(args: argparse.Namespace) -> int:
    # The zip is checked before the daemon is asked for anything: a wrong file is the likelier mistake.
    facts = inspect_zip(args.zip) if args.zip else None
    client = daemon.connect(args.docker_host)
    if facts is None:
        web, db = standin.build_standin_images(client, base_image=args.standin)
        print(f"web image: {web}\ndb image:  {db}")
        return 0
    tag = recipes.build_web_image(client, facts, base_image=args.php_image, tag=args.tag, rebuild=args.rebuild)
    print(tag)
    return 0


# -- up / down -----------------------------------------------------------------------------
def run_up(args: argparse.Namespace) -> int:
    facts = inspect_zip(args.zip) if args.zip else None
    client = daemon.connect(args.docker_host)
    image = args.image or recipes.build_web_image(client, facts, base_image=args.php_image)
    spec = EnvironmentSpec(web_image=image, db_image=args.db_image, keep=True, publish=args.publish,
                           pull_db=not args.no_pull, db_timeout=args.timeout, web_timeout=args.timeout,
                           docker_host=args.docker_host)
    site = DockerEnvironment(spec, client=client)
    state = _state_root(args.state_dir) / site.run_id
    env = site.start()
    try:
        state.mkdir(parents=True, mode=0o700)
        token_file = _write_secret(state / "super-token", env.super_token)
        password_file = _write_secret(state / "admin-password", env.admin_password)
        (state / "environment.json").write_text(json.dumps(env.to_dict(), indent=2) + "\n", encoding="utf-8")
    except BaseException as exc:
        # A site nobody holds the token of is no use: remove it rather than keep it.
        site.remove()
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write the token files under {state}: {exc.strerror or exc}; "
                             "pass a writable --state-dir") from None
        raise
    site.detach()
    facts = {**env.to_dict(), "token_file": str(token_file), "admin_password_file": str(password_file),
             "state_dir": str(state)}
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        print(f"run:        {env.run_id}\nurl:        {env.url}\napi:        {env.api_url}\n"
              f"version:    {env.version}\ntoken file: {token_file}\n"
              f"admin:      {env.admin_user} (password in {password_file})")
    log.info("drill against it with REDCAP_DRILL_URL=%s REDCAP_DRILL_SUPER_TOKEN_FILE=%s (--target url); "
             "remove it with `redcap-drill docker down %s`", env.api_url, token_file, env.run_id)
    return 0


def run_down(args: argparse.Namespace) -> int:
    if not args.runs and not args.all:
        raise UsageError("name the runs to remove (run ids printed by `redcap-drill docker up`) or pass --all")
    client = daemon.connect(args.docker_host)
    if args.all:
        runs = sorted({obj.owner.run_id for obj in sweep.find(client)})
    else:
        runs = args.runs
    root = _state_root(args.state_dir)
    failed = 0
    for run_id in runs:
        result = sweep.remove_run(client, run_id)
        failed += len(result.failed)
        for obj, reason in result.failed:
            log.error("could not remove %s %s: %s", obj.kind, obj.name, reason)
        state = root / run_id
        if run_id and "/" not in run_id and state.is_dir():
            shutil.rmtree(state, ignore_errors=True)
        print(f"{run_id}: removed {len(result.removed)} object(s)" + (f", {len(result.failed)} failed" if result.failed else ""))
    return 2 if failed else 0


# -- sweep ---------------------------------------------------------------------------------
def run_sweep(args: argparse.Namespace) -> int:
    client = daemon.connect(args.docker_host)
    result = sweep.sweep(client, include_kept=args.all, include_live=args.all, dry_run=args.dry_run)
    for obj in result.removed:
        print(f"removed {obj.kind} {obj.name} (run {obj.owner.run_id})")
    for obj, reason in result.skipped:
        stream = sys.stdout if reason == "dry run" else sys.stderr
        label = "would remove" if reason == "dry run" else "left"
        print(f"{label} {obj.kind} {obj.name} (run {obj.owner.run_id})" + ("" if reason == "dry run" else f": {reason}"),
              file=stream)
    for obj, reason in result.failed:
        log.error("could not remove %s %s: %s", obj.kind, obj.name, reason)
    if not result.removed and not result.skipped and not result.failed:
        log.info("nothing to sweep")
    return 2 if result.failed else 0


def _state_root(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "redcap-drill" / "docker"


def _write_secret(path: Path, secret: Secret) -> Path:
    # Created 0600 from the start (no window where another user could read it), never overwritten.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret.reveal() + "\n")
    return path
