"""redcap-drill's pytest plugin: restore drills as a pytest run (entry point ``pytest11: redcap_drill``).

    pytest suites/ --archives /backups/redcap --max-age 36h -n auto

It is loaded into every pytest run on a machine where redcap-drill is
installed, so it stays inert unless asked: it only activates when
``--archives`` is given or the run collects the drill suites (their
``conftest.py`` sets ``REDCAP_DRILL_SUITE = True``). Inert, it adds its
command-line options and, when the sandbox provides one, the
``redcap_sandbox`` fixture; nothing else.

Active, every archive is drilled once per run, lazily, by the first test that
needs it; the suite's tests then only assert on the cached `DrillResult`.
Under pytest-xdist each worker has its own target, all tests of one archive go
to the same worker (``--dist loadgroup``), workers send their results to the
controller, and only the controller writes the report.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.compare.model import RECORD_ID_POLICIES
from harness.drill import STAGE_TITLES, STAGES, DrillOptions, DrillResult, drill, human
from harness.errors import ArchiveError, DrillError, UsageError

#: Set by the suites' conftest.py; a collected module with this attribute activates the plugin.
SUITE_FLAG = "REDCAP_DRILL_SUITE"
RESULTS_KEY = "redcap_drill_results"
LOADGROUP_KEY = "redcap_drill_loadgroup"
SESSION = pytest.StashKey["DrillSession"]()
REPORTER = pytest.StashKey["DrillReporter"]()

REPO_ROOT = Path(__file__).resolve().parents[1]
SUITES_DIR = REPO_ROOT / "suites"
DEFAULT_ARCHIVES = "fixtures/samples"
DEFAULT_REPORT_DIR = "reports"


# --------------------------------------------------------------------------------------------
# Options (always registered: an option nobody passes costs nothing)
# --------------------------------------------------------------------------------------------
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("redcap-drill", "REDCap restore drills (redcap-drill)")
    group.addoption("--archives", dest="drill_archives", metavar="PATH", default=None,
                    help="backup folder or file to drill; activates redcap-drill "
                         f"(default with the drill suites: ini redcap_drill_archives, else {DEFAULT_ARCHIVES})")
    group.addoption("--target", dest="drill_target", metavar="KIND", default=None,
                    choices=("sandbox", "url", "docker"),
                    help="where to restore: sandbox (embedded, default), url (an existing REDCap; "
                         "token from REDCAP_DRILL_SUPER_TOKEN), docker")
    group.addoption("--target-url", dest="drill_target_url", metavar="URL", default=None,
                    help="API URL for --target url (…/api/); default: REDCAP_DRILL_URL")
    group.addoption("--token-file", dest="drill_token_file", metavar="FILE", default=None,
                    help="file holding the super API token for --target url (never pass the token itself)")
    group.addoption("--docker-zip", dest="drill_docker_zip", metavar="ZIP", default=None,
                    help="for --target docker: your REDCap install zip (default: REDCAP_DRILL_DOCKER_ZIP)")
    group.addoption("--docker-image", dest="drill_docker_image", metavar="IMAGE", default=None,
                    help="for --target docker: an image built by `redcap-drill docker build` "
                         "(default: REDCAP_DRILL_DOCKER_IMAGE)")
    group.addoption("--report-dir", dest="drill_report_dir", metavar="DIR", default=None,
                    help=f"where reports go (default: ini redcap_drill_report_dir, else {DEFAULT_REPORT_DIR}/)")
    group.addoption("--max-age", dest="drill_max_age", metavar="DURATION", default=None,
                    help="recovery point objective: fail archives older than this (36h, 7d, 90m)")
    group.addoption("--max-rto", dest="drill_max_rto", metavar="DURATION", default=None,
                    help="recovery time objective: fail drills whose restore and verification take longer (15m)")
    group.addoption("--project", dest="drill_projects", metavar="NAME", action="append", default=[],
                    help="only drill these projects: project key, title or test id; glob patterns and "
                         "commas allowed; repeatable")
    group.addoption("--shard", dest="drill_shard", metavar="K/N", default=None,
                    help="drill only shard K of N (1-based), split deterministically by project key; "
                         "merge shard reports with `redcap-drill report merge`")
    group.addoption("--show-values", dest="drill_show_values", action="store_true", default=False,
                    help="show record values in differences (they are masked by default: they are PHI); "
                         "record IDs follow --record-ids, not this")
    group.addoption("--record-ids", dest="drill_record_ids", metavar="POLICY", default=None,
                    choices=RECORD_ID_POLICIES,
                    help="record IDs in reports: auto (default: a pseudonym such as R-3f9a1c, stable within one "
                         "report, when the project's record ID field is marked identifier), mask (always), "
                         "show (never); --show-values does not show them")
    group.addoption("--require-data", dest="drill_require_data", action="store_true", default=False,
                    help="fail a backup that holds no records (a metadata-only export) instead of passing it "
                         "with a warning")
    group.addoption("--keep", dest="drill_keep", action="store_true", default=False,
                    help="keep restored projects on the target when their drill fails, for inspection")
    group.addoption("--drill-run-id", dest="drill_run_id", default=None, help=argparse_suppress())
    group.addoption("--drill-builtin-suite", dest="drill_builtin_suite", action="store_true", default=False,
                    help=argparse_suppress())
    parser.addini("redcap_drill_archives", "default --archives for the drill suites", default=DEFAULT_ARCHIVES)
    parser.addini("redcap_drill_target", "default --target", default="sandbox")
    parser.addini("redcap_drill_report_dir", "default --report-dir", default=DEFAULT_REPORT_DIR)
    parser.addini("redcap_drill_record_ids", "default --record-ids (auto, mask or show)", default="auto")


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


# --------------------------------------------------------------------------------------------
# Archives: listing, selection, sharding
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveRef:
    """A backup chosen for drilling: cheap facts from its header, enough to name and order it.

    The full checks (checksum, completeness) are the drill's integrity stage,
    so collection stays fast on every xdist worker even for a large store.
    """

    path: Path
    project_key: str
    title: str
    mtime: datetime
    created: datetime | None = None
    #: Why the header could not be read; the drill then fails at integrity.
    header_error: str | None = None
    test_id: str = ""

    @property
    def taken(self) -> datetime:
        return self.created or self.mtime

    def __str__(self) -> str:
        return self.test_id or self.title


def list_archives(root: str | os.PathLike[str]) -> list[ArchiveRef]:
    """The newest backup of each project under ``root`` (a folder or one file), by project key."""
    from harness.sources.base import newest_per_project
    from harness.sources.directory import SUFFIXES
    from harness.sources.header import key_from_filename, project_key, read_header

    root = Path(root)
    if not root.exists():
        raise UsageError(f"archive path {root} does not exist; pass --archives DIR (a folder of REDCap project "
                         "XML backups) or a single backup file")
    if root.is_file():
        paths = [root]
    else:
        paths = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not paths:
        raise UsageError(f"no REDCap backups ({', '.join(SUFFIXES)}) under {root}; check --archives, or check "
                         "that the backup job writes there (an empty store is a failed backup, not a pass)")
    refs = []
    for path in paths:
        mtime = datetime.fromtimestamp(path.stat().st_mtime)
        try:
            header = read_header(path)
            refs.append(ArchiveRef(path, project_key(header, path), header.study_name or header.description
                                   or key_from_filename(path.name), mtime, header.created))
        except ArchiveError as exc:
            key = key_from_filename(path.name)
            refs.append(ArchiveRef(path, key, key, mtime, None, str(exc)))
    return _with_ids(newest_per_project(refs))  # type: ignore[arg-type]


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+:-]+|:{2,}")  # "::" separates node-id parts: never in an id


def _with_ids(refs: list[ArchiveRef]) -> list[ArchiveRef]:
    """Test ids a REDCap admin recognises: the project title, made safe for node ids."""
    seen: dict[str, int] = {}
    out = []
    for ref in refs:
        base = " ".join(_ID_UNSAFE.sub("_", ref.title).split())[:60].strip() or ref.project_key
        seen[base] = seen.get(base, 0) + 1
        test_id = base if seen[base] == 1 else f"{base}-{seen[base]}"
        out.append(ArchiveRef(ref.path, ref.project_key, ref.title, ref.mtime, ref.created, ref.header_error, test_id))
    return out


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"invalid --shard {text!r}: use K/N with 1 <= K <= N, e.g. --shard 2/4 "
                         "(in a CI matrix: --shard ${{ matrix.shard }}/4)")
    return int(match[1]), int(match[2])


def in_shard(project_key: str, shard: tuple[int, int] | None) -> bool:
    """Shard membership from a hash of the key alone: every machine agrees, whatever it lists."""
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha256(project_key.encode("utf-8")).hexdigest(), 16) % n == k - 1


def select(refs: list[ArchiveRef], patterns: list[str]) -> list[ArchiveRef]:
    """``--project`` selection: key, title or test id, case-insensitive globs; unknown names are an error."""
    wanted = [p.strip() for item in patterns for p in item.split(",") if p.strip()]
    if not wanted:
        return refs
    chosen = []
    for ref in refs:
        names = [ref.project_key.lower(), ref.title.lower(), ref.test_id.lower()]
        if any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in wanted for name in names):
            chosen.append(ref)
    if not chosen:
        known = ", ".join(r.test_id for r in refs[:10])
        raise UsageError(f"--project {', '.join(wanted)} matches none of the {len(refs)} projects "
                         f"(e.g. {known}); use a title, a project key or a glob such as 'pilot*'")
    return chosen


# --------------------------------------------------------------------------------------------
# Activation and configuration
# --------------------------------------------------------------------------------------------
def _suite_collected(config: pytest.Config) -> bool:
    return any(getattr(plugin, SUITE_FLAG, False) for plugin in config.pluginmanager.get_plugins())


def is_active(config: pytest.Config) -> bool:
    return config.stash.get(SESSION, None) is not None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _register_sandbox_fixture(config)
    builtin = config.getoption("drill_builtin_suite", False)
    if config.getoption("drill_archives", None) is None and not builtin and not _suite_collected(config):
        return
    try:
        session = DrillSession(config)
    except DrillError as exc:
        raise pytest.UsageError(f"redcap-drill: {exc}") from None
    config.stash[SESSION] = session
    config.pluginmanager.register(session, "redcap-drill-session")
    for stage in STAGES:
        config.addinivalue_line("markers", f"{stage}: redcap-drill stage — {STAGE_TITLES[stage]}")
    if not hasattr(config, "workerinput"):
        reporter = DrillReporter(config, session)
        config.stash[REPORTER] = reporter
        config.pluginmanager.register(reporter, "redcap-drill-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(config), "redcap-drill-xdist")
            # All tests of one archive must run on one worker, or it is drilled once per worker.
            if getattr(config.option, "dist", "no") == "load":
                config.option.dist = "loadgroup"
    elif config.workerinput.get(LOADGROUP_KEY):
        config.option.loadgroup = True


def _register_sandbox_fixture(config: pytest.Config) -> None:
    # The sandbox's pytest fixture (moto-style) is offered to every test suite on the machine.
    name = "harness.sandbox.fixtures"
    if config.pluginmanager.get_plugin(name) is not None:
        return
    import importlib

    module = importlib.import_module(name)
    if hasattr(module, "redcap_sandbox") and not config.pluginmanager.is_registered(module):
        config.pluginmanager.register(module, name)


class DrillSession:
    """Per process: the selected archives, one target, and each archive's cached DrillResult."""

    def __init__(self, config: pytest.Config) -> None:
        from harness.sources.duration import parse_duration

        self.config = config
        self.root = _archives_root(config)
        self.kind = config.getoption("drill_target") or config.getini("redcap_drill_target") or "sandbox"
        self.report_dir = _path_option(config, "drill_report_dir", "redcap_drill_report_dir")
        self.shard = parse_shard(config.getoption("drill_shard"))
        max_age = config.getoption("drill_max_age")
        max_rto = config.getoption("drill_max_rto")
        self.options = DrillOptions(
            max_age=parse_duration(max_age) if max_age else None,
            max_rto=parse_duration(max_rto) if max_rto else None,
            show_values=bool(config.getoption("drill_show_values")),
            keep=bool(config.getoption("drill_keep")),
            record_ids=_record_ids(config),
            require_data=bool(config.getoption("drill_require_data")),
        )
        listed = select(list_archives(self.root), config.getoption("drill_projects") or [])
        #: What this run was asked to drill, before sharding (the merged report checks all of it ran).
        self.selected = listed
        self.archives = [ref for ref in listed if in_shard(ref.project_key, self.shard)]
        self.results: dict[str, DrillResult] = {}
        self._stack = ExitStack()
        self._target = None
        self._target_error: DrillError | None = None

    # -- the target ----------------------------------------------------------------------
    def target_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"keep": self.options.keep}
        if self.kind == "sandbox" and self.options.keep:
            # A kept project must outlive the run: give the sandbox a database file to keep it in.
            worker = getattr(self.config, "workerinput", {}).get("workerid", "main")
            reporter = self.config.stash.get(REPORTER, None)
            run_id = (reporter.run_id if reporter is not None
                      else getattr(self.config, "workerinput", {}).get("redcap_drill_run_id", "run"))
            folder = self.report_dir / "kept"
            folder.mkdir(parents=True, exist_ok=True)
            options["db"] = folder / f"sandbox-{run_id}-{worker}.sqlite"
        if self.kind == "url":
            options["url"] = self.config.getoption("drill_target_url")
            options["token_file"] = self.config.getoption("drill_token_file")
        if self.kind == "docker":
            # Unset flags fall through to the REDCAP_DRILL_DOCKER_* variables the target reads.
            options["zip"] = self.config.getoption("drill_docker_zip")
            options["image"] = self.config.getoption("drill_docker_image")
        return options

    def target(self):
        if self._target_error is not None:
            raise self._target_error
        if self._target is None:
            from harness import targets

            options = self.target_options()
            try:
                made = self.config.hook.pytest_redcap_drill_make_target(config=self.config, kind=self.kind,
                                                                        options=options)
                target = made if made is not None else targets.get(self.kind, **options)
                self._target = self._stack.enter_context(target)
            except DrillError as exc:
                self._target_error = exc
                raise
        return self._target

    def close(self) -> None:
        self._stack.close()
        self._target = None

    # -- drilling ------------------------------------------------------------------------
    def result_for(self, ref: ArchiveRef) -> DrillResult:
        cached = self.results.get(ref.project_key)
        if cached is not None:
            return cached
        target = self.target()
        extra: dict[str, Any] = {}
        for options in self.config.hook.pytest_redcap_drill_compare_options(config=self.config, archive=ref):
            extra.update(options or {})
        options = replace(self.options, compare_options=tuple(extra.items())) if extra else self.options
        result = drill(ref.path, target, options)
        self.results[ref.project_key] = result
        self.config.hook.pytest_redcap_drill_finished(config=self.config, result=result)
        return result

    # -- pytest hooks (every process) --------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "drill_archive" not in metafunc.fixturenames:
            return
        if self.archives:
            metafunc.parametrize("drill_archive", self.archives, ids=[a.test_id for a in self.archives],
                                 scope="session")
        else:
            # Only a shard can end up empty (more shards than projects): nothing is owed, say so.
            k, n = self.shard or (1, 1)
            reason = f"shard {k}/{n} holds none of the {len(self.selected)} selected projects"
            metafunc.parametrize("drill_archive", [pytest.param(None, marks=pytest.mark.skip(reason=reason),
                                                                id="no-projects-in-shard")], scope="session")

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector):
        if self.config.getoption("drill_builtin_suite") and Path(file_path).resolve() == Path(__file__).resolve():
            return BuiltinSuite.from_parent(parent, path=file_path)
        return None

    # tryfirst: xdist's worker turns the xdist_group marks into node-id suffixes in its own hook.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        order = {ref.project_key: i for i, ref in enumerate(self.archives)}
        stage_order = {name: i for i, name in enumerate(STAGES)}
        keyed = []
        for index, item in enumerate(items):
            ref = _item_archive(item)
            if ref is None:
                keyed.append(((len(order), 0, index), item))
                continue
            item.add_marker(pytest.mark.xdist_group(name=_group(ref)))
            stage = next((m.name for m in item.iter_markers() if m.name in stage_order), None)
            keyed.append(((order.get(ref.project_key, len(order)), stage_order.get(stage, len(stage_order)), index),
                          item))
        # Archive by archive, stages in drill order: progress reads like the drill itself.
        items[:] = [item for _, item in sorted(keyed, key=lambda pair: pair[0])]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.close()
        if hasattr(self.config, "workeroutput"):
            self.config.workeroutput[RESULTS_KEY] = [r.to_dict() for r in self.results.values()]

    def pytest_unconfigure(self) -> None:
        self.close()


def _archives_root(config: pytest.Config) -> Path:
    explicit = config.getoption("drill_archives")
    if explicit:
        return Path(explicit).expanduser()
    configured = config.getini("redcap_drill_archives") or DEFAULT_ARCHIVES
    path = Path(configured)
    if path.is_absolute():
        return path
    for base in (config.invocation_params.dir, config.rootpath, REPO_ROOT):
        if (base / path).exists():
            return base / path
    return config.invocation_params.dir / path


def _record_ids(config: pytest.Config) -> str:
    policy = config.getoption("drill_record_ids") or config.getini("redcap_drill_record_ids") or "auto"
    if policy not in RECORD_ID_POLICIES:
        raise UsageError(f"redcap_drill_record_ids = {policy!r} in the ini file: use one of "
                         f"{', '.join(RECORD_ID_POLICIES)}")
    return policy


def _path_option(config: pytest.Config, option: str, ini: str) -> Path:
    value = config.getoption(option) or config.getini(ini)
    path = Path(value).expanduser()
    return path if path.is_absolute() else config.invocation_params.dir / path


def _group(ref: ArchiveRef) -> str:
    # xdist appends "@<group>" to node ids; the project's test id reads better than a hash (and has no "@").
    return ref.test_id or ref.project_key.replace("@", "_")


def _item_archive(item: pytest.Item) -> ArchiveRef | None:
    if isinstance(item, DrillStageItem):
        return item.archive
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get("drill_archive")
    return value if isinstance(value, ArchiveRef) else None


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def drill_session(request: pytest.FixtureRequest) -> DrillSession:
    """The active drill session (archives, options, target)."""
    session = request.config.stash.get(SESSION, None)
    if session is None:
        pytest.fail("redcap-drill is not active in this run: pass --archives DIR, or run the drill suites "
                    "(redcap-drill run, or pytest suites/)", pytrace=False)
    return session


@pytest.fixture(scope="session")
def drill_archive(request: pytest.FixtureRequest) -> ArchiveRef:
    """Replaced by one parameter per archive when the plugin is active."""
    pytest.fail("drill_archive is only available in an active redcap-drill run (pass --archives DIR)",
                pytrace=False)


@pytest.fixture(scope="session")
def drill_result(drill_session: DrillSession, drill_archive: ArchiveRef) -> DrillResult:
    """The archive's DrillResult; drilled on first use, then shared by every test of the archive."""
    try:
        return drill_session.result_for(drill_archive)
    except DrillError as exc:
        # The target could not start: no drill ran, and every test of the archive says why.
        pytest.fail(f"{drill_archive.title}: no drill: {type(exc).__name__}: {exc}", pytrace=False)


def check_stage(result: DrillResult, name: str) -> None:
    """Pass, fail or skip a test exactly as the drill judged the stage ``name``.

    ``skipped`` fails the test: a check that was owed but not made is not a
    pass. ``not_run`` after an earlier failure and ``not_applicable`` skip it,
    with the reason; the earlier failure already fails the run.
    """
    stage = result.stage(name)
    if stage.status == "passed":
        return
    if stage.status == "not_applicable":
        _skip(f"{name} does not apply: {stage.reason}")
    first = result.failed_stage
    if stage.status == "not_run" and first is not None and first.name != name and first.status == "failed":
        _skip(stage.reason)
    lines = [f"{result.title}: {name} {stage.status.upper()}: {stage.reason}"]
    related = [d for d in result.differences if d.stage == name and d.severity == "failure"]
    for d in related[:10]:
        change = f": {d.expected!s} → {d.actual!s}" if (d.expected or d.actual) else ""
        lines.append(f"  {d.kind} at {d.location}{change}")
    if len(related) > 10:
        lines.append(f"  … and {len(related) - 10} more (see the HTML report)")
    for f in [f for f in result.findings if f.stage == name and f.severity == "error"][:10]:
        lines.append(f"  {f.code}: {f.message}" + (f" (line {f.line})" if f.line else ""))
    pytest.fail("\n".join(lines), pytrace=False)


def _skip(reason: str) -> None:
    # Report the skip at the test, not at this line (what skip marks do); fall back if pytest changes.
    try:
        raise pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:
        pytest.skip(reason)


# --------------------------------------------------------------------------------------------
# The built-in suite (used by `redcap-drill run` when suites/ is not installed)
# --------------------------------------------------------------------------------------------
class BuiltinSuite(pytest.File):
    """One `DrillStageItem` per archive and stage, the same checks as ``suites/``."""

    def collect(self) -> Iterator[pytest.Item]:
        session: DrillSession = self.config.stash[SESSION]
        for ref in session.archives:
            for stage in STAGES:
                item = DrillStageItem.from_parent(self, name=f"test_{stage}[{ref.test_id}]", archive=ref, stage=stage)
                item.add_marker(getattr(pytest.mark, stage))
                yield item


class DrillStageItem(pytest.Item):
    def __init__(self, *, archive: ArchiveRef, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.archive = archive
        self.stage = stage

    def runtest(self) -> None:
        session: DrillSession = self.config.stash[SESSION]
        try:
            result = session.result_for(self.archive)
        except DrillError as exc:
            pytest.fail(f"{self.archive.title}: no drill: {type(exc).__name__}: {exc}", pytrace=False)
        check_stage(result, self.stage)

    def reportinfo(self):
        return self.path, None, f"{self.stage}[{self.archive.test_id}]"

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, DrillError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo, style)


# --------------------------------------------------------------------------------------------
# The controller: xdist plumbing and the report
# --------------------------------------------------------------------------------------------
class XdistHooks:
    """Registered on the controller only when pytest-xdist is installed."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node) -> None:
        node.workerinput[LOADGROUP_KEY] = getattr(self.config.option, "dist", "") == "loadgroup"
        reporter = self.config.stash.get(REPORTER, None)
        if reporter is not None:
            node.workerinput["redcap_drill_run_id"] = reporter.run_id

    def pytest_testnodedown(self, node, error) -> None:
        reporter = self.config.stash.get(REPORTER, None)
        data = getattr(node, "workeroutput", {}).get(RESULTS_KEY, [])
        if reporter is not None:
            for item in data:
                result = DrillResult.from_dict(item)
                reporter.worker_results[result.project_key] = result


@dataclass(eq=False)  # a plugin object must stay hashable
class DrillReporter:
    """Controller only: writes the HTML/JSON report, the ledger and ``latest/`` at session end."""

    config: pytest.Config
    session: DrillSession
    worker_results: dict[str, DrillResult] = field(default_factory=dict)
    run_id: str = ""
    written: Any = None
    started: datetime = field(default_factory=datetime.now)

    def __post_init__(self) -> None:
        from harness.reports.writer import JUNIT, new_run_id, run_dir

        shard = self.config.getoption("drill_shard")
        self.run_id = self.config.getoption("drill_run_id") or new_run_id(self.session.report_dir, shard=shard)
        if not self.config.option.xmlpath and not self.config.option.collectonly:
            # JUnit for CI dashboards comes from pytest itself; we only choose where it goes.
            self.config.option.xmlpath = str(run_dir(self.session.report_dir, self.run_id) / JUNIT)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.session
        shard = f", shard {s.shard[0]}/{s.shard[1]}: {len(s.archives)} of {len(s.selected)}" if s.shard else ""
        return [
            f"redcap-drill: target {s.kind}; {len(s.archives)} archive(s) from {s.root}{shard}",
            f"redcap-drill: ODM schema {_schema_source()}; reports in {s.report_dir}",
        ]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.config.option.collectonly:
            return
        results = {**self.session.results, **self.worker_results}
        if not results and not self.session.archives:
            return
        from harness.ledger import Ledger
        from harness.reports.model import RunInfo, build
        from harness.reports.writer import write_run

        s = self.session
        target = next((r.target for r in results.values() if r.target), {"kind": s.kind, "url": "", "version": ""})
        run = RunInfo(
            run_id=self.run_id, started=self.started.isoformat(timespec="seconds"),
            finished=datetime.now().isoformat(timespec="seconds"), host=_host(), user=_user(),
            target=target, archives=str(s.root),
            shard=f"{s.shard[0]}/{s.shard[1]}" if s.shard else None,
            max_age=human(s.options.max_age) if s.options.max_age else None,
            max_rto=human(s.options.max_rto) if s.options.max_rto else None,
            show_values=s.options.show_values, record_ids=s.options.record_ids,
            require_data=s.options.require_data, schema_source=_schema_source(),
            store_projects=tuple(ref.project_key for ref in (s.archives if s.shard else s.selected)),
        )
        ledger = Ledger(s.report_dir)
        trends = {key: ledger.trend(key).to_dict() for key in results}
        report = build(list(results.values()), run, trends=trends)
        replacement = self.config.hook.pytest_redcap_drill_report(config=self.config, report=report)
        try:
            self.written = write_run(replacement or report, s.report_dir)
        except DrillError as exc:
            self.written = exc

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.written is None:
            return
        if isinstance(self.written, DrillError):
            terminalreporter.write_line(f"redcap-drill: report NOT written: {self.written}", red=True)
            return
        latest = self.written.latest or self.written.run_dir
        terminalreporter.write_sep("-", "redcap-drill")
        terminalreporter.write_line(f"report: {latest / 'report.html'}")
        terminalreporter.write_line(f"run folder: {self.written.run_dir} (summary.json, junit.xml)")


def _schema_source() -> str:
    try:
        from harness.schema.locate import locate_schema

        location = locate_schema()
        return f"{location.root} (from {location.source})"
    except DrillError as exc:
        return f"NOT INSTALLED — {exc}"


def _host() -> str:
    import socket

    return socket.gethostname()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


__all__ = ["ArchiveRef", "DrillSession", "check_stage", "in_shard", "is_active", "list_archives", "parse_shard",
           "select"]
