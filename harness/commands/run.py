"""``redcap-drill run``: drill the newest backup of every project and write the report.

A thin wrapper over pytest: it checks what would make the run meaningless
(no schema, no archives, bad options, unreachable target) and says how to fix
it, then runs the drill suites with redcap-drill's plugin and prints one
progress line per archive and stage on stderr.

    redcap-drill run                                   # fixtures/samples on the embedded sandbox
    redcap-drill run --archives /backups/redcap --max-age 36h --max-rto 30m -n auto
    redcap-drill run --target url --target-url https://redcap-dev.example.org/api/   # token from env
    redcap-drill run -- -k restore                     # anything after -- goes to pytest

Exit codes: 0 every drill passed, 1 a drill failed, 2 could not run, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TextIO

import pytest

from harness.compare.model import RECORD_ID_POLICIES
from harness.errors import UsageError

ENTRY_POINT = "redcap_drill"

#: pytest's exit codes -> ours (0 ok, 1 a check failed, 2 could not run, 130 interrupted).
EXIT_CODES = {0: 0, 1: 1, 2: 130, 3: 2, 4: 2, 5: 2}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="drill backups: validate, restore, re-export, compare, report",
        description="Drill the newest backup of each project: integrity, freshness, schema, semantics, restore, "
                    "re-export and comparison, then write reports/latest/report.html.",
        epilog="The super token for --target url comes from REDCAP_DRILL_SUPER_TOKEN or --token-file, never "
               "from the command line. Anything after -- is passed to pytest. "
               "Exit codes: 0 all drills passed, 1 a drill failed, 2 could not run, 130 interrupted.",
    )
    p.add_argument("--archives", metavar="PATH", help="backup folder or file (default: fixtures/samples)")
    p.add_argument("--target", choices=("sandbox", "url", "docker"), default="sandbox",
                   help="where to restore (default: the embedded sandbox)")
    p.add_argument("--target-url", metavar="URL", help="API URL for --target url (default: REDCAP_DRILL_URL)")
    p.add_argument("--token-file", metavar="FILE", help="file holding the super API token for --target url")
    p.add_argument("--docker-zip", metavar="ZIP",
                   help="for --target docker: your REDCap install zip (default: REDCAP_DRILL_DOCKER_ZIP)")
    p.add_argument("--docker-image", metavar="IMAGE",
                   help="for --target docker: an image from `redcap-drill docker build` (default: REDCAP_DRILL_DOCKER_IMAGE)")
    p.add_argument("--report-dir", metavar="DIR", default="reports", help="where reports go (default: reports/)")
    p.add_argument("--max-age", metavar="DURATION", help="recovery point objective, e.g. 36h: older backups fail")
    p.add_argument("--max-rto", metavar="DURATION", help="recovery time objective, e.g. 30m: slower drills fail")
    p.add_argument("-n", "--numprocesses", metavar="N", help="drill in N parallel workers (pytest-xdist; 'auto')")
    p.add_argument("--shard", metavar="K/N", help="drill only shard K of N (CI matrix); merge with `report merge`")
    p.add_argument("--project", metavar="NAME", action="append", default=[],
                   help="only these projects (title, key or glob); repeatable")
    p.add_argument("--show-values", action="store_true",
                   help="show record values in the report (PHI!); record IDs follow --record-ids, not this")
    p.add_argument("--record-ids", choices=RECORD_ID_POLICIES, default=None,
                   help="record IDs in the report: auto (default: a pseudonym such as R-3f9a1c, stable within "
                        "the report, when the project's record ID field is marked identifier), mask (always), "
                        "show (never)")
    p.add_argument("--require-data", action="store_true",
                   help="fail a backup that holds no records (a metadata-only export); without it that is a "
                        "warning")
    p.add_argument("--keep", action="store_true", help="keep restored projects of failed drills on the target")
    p.add_argument("--odm-schema", metavar="DIR", help="folder with CDISC's ODM 1.3.1 XSD (default: "
                   "REDCAP_DRILL_ODM_SCHEMA, else the cache `redcap-drill schema install` fills)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then extra pytest arguments")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    argv, run_dir = build_argv(args)
    plugins: list[object] = []
    if not args.no_progress and not args.quiet:
        plugins.append(Progress(sys.stderr))
    code = int(pytest.main(argv, plugins=plugins))
    ours = EXIT_CODES.get(code, 2)
    if ours == 0 and not _summary_passed(run_dir):
        # pytest saw no failure, yet the report says a selected project was not drilled.
        ours = 1
    return ours


def build_argv(args: argparse.Namespace) -> tuple[list[str], Path]:
    """Check everything a run needs, then the pytest command line; raises DrillError (exit 2)."""
    from harness.pytest_plugin import SUITES_DIR, list_archives, parse_shard, select
    from harness.reports.writer import JUNIT, new_run_id, run_dir
    from harness.schema import locate_schema
    from harness.sources.duration import parse_duration

    if args.odm_schema:
        # The environment carries it to the drill and to every xdist worker.
        os.environ["REDCAP_DRILL_ODM_SCHEMA"] = str(Path(args.odm_schema).expanduser().resolve())
    locate_schema()  # SchemaError says: run `redcap-drill schema install`
    for value in (args.max_age, args.max_rto):
        if value:
            parse_duration(value)
    parse_shard(args.shard)
    archives = Path(args.archives).expanduser() if args.archives else _default_archives()
    select(list_archives(archives), args.project)  # a bad path or selection fails now, not in pytest
    if args.numprocesses and importlib.util.find_spec("xdist") is None:
        raise UsageError("-n needs pytest-xdist: pip install pytest-xdist (or drop -n)")
    if args.target == "url":
        _check_url_target(args)
    elif args.target == "docker":
        _check_docker_target(args)

    report_dir = Path(args.report_dir).expanduser().resolve()
    run_id = new_run_id(report_dir, shard=args.shard)
    folder = run_dir(report_dir, run_id)
    if SUITES_DIR.is_dir():
        argv = [str(SUITES_DIR)]
    else:
        # Installed without the repository's suites/: the plugin carries the same checks built in.
        import harness.pytest_plugin as plugin

        argv = [str(Path(plugin.__file__).resolve()), "--drill-builtin-suite"]
    argv += _plugin_args(bool(args.numprocesses))
    argv += ["--archives", str(archives.resolve()), "--target", args.target, "--report-dir", str(report_dir),
             "--drill-run-id", run_id, f"--junitxml={folder / JUNIT}", "-q",
             # `run` imported harness before pytest started, so pytest cannot rewrite its asserts; it need not.
             "-W", "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"]
    if args.target_url:
        argv += ["--target-url", args.target_url]
    if args.token_file:
        argv += ["--token-file", args.token_file]
    if args.docker_zip:
        argv += ["--docker-zip", str(Path(args.docker_zip).resolve())]
    if args.docker_image:
        argv += ["--docker-image", args.docker_image]
    for flag, value in (("--max-age", args.max_age), ("--max-rto", args.max_rto), ("--shard", args.shard)):
        if value:
            argv += [flag, value]
    for project in args.project:
        argv += ["--project", project]
    if args.show_values:
        argv.append("--show-values")
    if args.record_ids:
        argv += ["--record-ids", args.record_ids]
    if args.require_data:
        argv.append("--require-data")
    if args.keep:
        argv.append("--keep")
    if args.numprocesses:
        argv += ["-n", str(args.numprocesses)]
    extra = list(args.pytest_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    return argv + extra, folder


def _default_archives() -> Path:
    from harness.pytest_plugin import DEFAULT_ARCHIVES, REPO_ROOT

    here = Path.cwd() / DEFAULT_ARCHIVES
    return here if here.exists() else REPO_ROOT / DEFAULT_ARCHIVES


def _plugin_args(xdist: bool) -> list[str]:
    """``-p`` options: none when pytest autoloads our entry point (loading it twice is an error)."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return ["-p", "harness.pytest_plugin"] + (["-p", "xdist.plugin"] if xdist else [])
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if ENTRY_POINT in names else ["-p", "harness.pytest_plugin"]


def _check_url_target(args: argparse.Namespace) -> None:
    from harness import targets

    target = targets.get("url", url=args.target_url, token_file=args.token_file)
    with target:
        target.version()  # TargetError (exit 2) names the URL and what to check


def _check_docker_target(args: argparse.Namespace) -> None:
    """What can be known before minutes of image building: the daemon answers and the REDCap zip is one."""
    from harness.dockerenv.daemon import connect
    from harness.dockerenv.redcap_zip import inspect_zip
    from harness.targets.docker import IMAGE_ENV, ZIP_ENV

    zip_path = args.docker_zip or os.environ.get(ZIP_ENV)
    image = args.docker_image or os.environ.get(IMAGE_ENV)
    if not zip_path and not image:
        raise UsageError(f"--target docker needs your REDCap: --docker-zip redcapX.Y.Z.zip (or {ZIP_ENV}), "
                         f"or --docker-image from `redcap-drill docker build` (or {IMAGE_ENV})")
    if zip_path and not image:
        inspect_zip(zip_path)  # NotARedcapZip (exit 2) says what is wrong with it
    connect().close()  # DaemonUnavailable (exit 2) says how to start one


def _summary_passed(folder: Path) -> bool:
    try:
        data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # no report: nothing proves the drills passed
    return data.get("summary", {}).get("outcome") == "passed"


class Progress:
    """One stderr line per archive and stage, as results arrive (on the controller under xdist)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream  # the real stderr, captured before pytest redirects it
        self.archives: set[str] = set()
        self.done: set[str] = set()
        self.total = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from harness.pytest_plugin import SESSION

        drill = session.config.stash.get(SESSION, None)
        self.total = len(drill.archives) if drill is not None else 0

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport):
        # The progress lines replace pytest's dots, which would otherwise interleave with them.
        if report.when == "call" or report.outcome != "passed":
            category = "error" if report.failed and report.when != "call" else report.outcome
            return category, "", category.upper()
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            stage, archive = _parse_nodeid(report.nodeid)
            if archive is None:
                return
            self.archives.add(archive)
            outcome = {"passed": "passed", "failed": "FAILED", "skipped": "skipped"}[report.outcome]
            if report.when == "setup" and report.outcome == "failed":
                outcome = "ERROR"
            if stage == "rto":
                self.done.add(archive)
            total = self.total or len(self.archives)
            self.stream.write(f"redcap-drill: [{len(self.done)}/{total}] {archive}: {stage} {outcome}\n")
            self.stream.flush()


def _parse_nodeid(nodeid: str) -> tuple[str, str | None]:
    name = nodeid.rpartition("::")[2].split("@", 1)[0]
    if "[" not in name:
        return name, None
    test, _, rest = name.partition("[")
    return test.removeprefix("test_"), rest.rsplit("]", 1)[0]


__all__ = ["EXIT_CODES", "Progress", "build_argv", "register", "run"]
