"""The default target: our embedded REDCap-compatible server, one per target.

Nothing to install and nothing shared: each target starts its own
`harness.sandbox.SandboxServer` on a free localhost port (so pytest-xdist
workers never see each other's projects), talks to it over real HTTP like any
REDCap, and stops it on exit, which discards every restored project unless a
database file was asked for.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import requests

from harness.errors import TargetError
from harness.targets.api import RedcapApi
from harness.targets.base import Cleanup, ExportOptions, Restored, Target, TargetInfo
from harness.targets.restore import export_to_temp, restore_via_api
from harness.targets.secret import Secret


class SandboxTarget(Target):
    """Restores into an embedded sandbox started on ``__enter__``.

    ``db`` keeps the sandbox's database in a file (with ``keep=True`` the kept
    projects can then be inspected with ``redcap-drill sandbox serve --db FILE``);
    by default it lives in a temporary folder and is gone after ``__exit__``.
    """

    kind = "sandbox"

    def __init__(self, *, keep: bool = False, workdir: str | os.PathLike[str] | None = None,
                 host: str = "127.0.0.1", db: str | os.PathLike[str] | None = None,
                 timeout: tuple[float, float] = (10.0, 900.0)) -> None:
        super().__init__(keep=keep, workdir=workdir)
        self.host = host
        self.db = Path(db) if db is not None else None
        self.timeout = timeout
        self.server = None
        self.api: RedcapApi | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._version = ""

    def start(self) -> None:
        from harness.sandbox import SandboxServer

        self._tmp = tempfile.TemporaryDirectory(prefix="redcap-drill-", dir=self.workdir)
        kwargs = {"db": str(self.db)} if self.db is not None else {}
        try:
            self.server = SandboxServer(self.host, port=0, **kwargs)
            self.server.start()
        except OSError as exc:
            self._tmp.cleanup()
            raise TargetError(f"could not start the embedded sandbox on {self.host}: {exc}; "
                              "is the address available?") from None
        self.api = RedcapApi(self.server.url, super_token=Secret(str(self.server.super_token)),
                             timeout=self.timeout, export_retries=1, retry_wait=0.2)
        self._version = self.api.version()

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
        if self.server is not None:
            try:
                self.server.stop()
            finally:
                self.server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _ready(self) -> RedcapApi:
        if self.api is None:
            raise TargetError("the sandbox target is not started; use it as a context manager (with ... as target)")
        return self.api

    def version(self) -> str:
        self._ready()
        return self._version

    def info(self) -> TargetInfo:
        # The URL as it was when started: the server may be gone by the time a report asks.
        return TargetInfo(self.kind, self.api.url if self.api is not None else f"http://{self.host}/api/",
                          self._version)

    def restore(self, archive_path, *, title, purpose="0", purpose_other="", notes="") -> Restored:
        restored = restore_via_api(self._ready(), Path(archive_path), kind=self.kind, title=title, purpose=purpose,
                                   purpose_other=purpose_other, notes=notes, tmpdir=Path(self._tmp.name))
        return self._track(restored)

    def export(self, restored: Restored, *, options: ExportOptions = ExportOptions()) -> Path:
        return export_to_temp(self._ready(), restored, options, Path(self._tmp.name))

    def _remove(self, restored: Restored) -> Cleanup:
        api = self._ready()
        remove = getattr(self.server, "delete_project", None)
        try:
            if callable(remove):
                remove(restored.project_token.reveal())
            else:
                response = api.session.post(
                    api.url.removesuffix("api/") + "_sandbox/delete_project",
                    data={"token": api.super_token.reveal(), "project_token": restored.project_token.reveal()},
                    timeout=api.timeout)
                if response.status_code != 200:
                    return Cleanup(restored.project_id, restored.title, "manual",
                                   f"the sandbox refused to delete it (HTTP {response.status_code}); "
                                   "it disappears when the sandbox stops")
        except (requests.RequestException, OSError) as exc:
            return Cleanup(restored.project_id, restored.title, "manual",
                           f"delete failed ({type(exc).__name__}); it disappears when the sandbox stops")
        return Cleanup(restored.project_id, restored.title, "removed", "")

    def where(self, restored: Restored) -> str:
        if self.db is not None:
            return (f"project {restored.project_id} in sandbox database {self.db} "
                    f"(serve it with: redcap-drill sandbox serve --db {self.db}; delete the file when done, it holds records)")
        return f"project {restored.project_id} in the sandbox (gone when the run ends; pass a db file to keep it)"
