"""Restore into an existing REDCap (a dev or test instance) reached by URL.

The super token comes from ``REDCAP_DRILL_SUPER_TOKEN`` or a file, never from
the command line. TLS is always verified. REDCap's API cannot delete projects,
so every restored project is listed for manual removal, and renamed (best
effort) so an administrator can find them in the Control Center.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import TargetError, UsageError
from harness.targets.api import RedcapApi, redact_url
from harness.targets.base import Cleanup, ExportOptions, Restored, Target, TargetInfo
from harness.targets.restore import export_to_temp, restore_via_api
from harness.targets.secret import Secret, super_token_from

URL_ENV = "REDCAP_DRILL_URL"
TOKEN_ENV = "REDCAP_DRILL_SUPER_TOKEN"
LEFTOVER_PREFIX = "[redcap-drill: delete me] "


class UrlTarget(Target):
    """A REDCap instance at ``url`` (…/api/), with a super token from the environment or ``token_file``.

    Timeouts are long because a real REDCap imports a large project in one
    request; exports are retried, Create Project never is.
    """

    kind = "url"

    def __init__(self, *, url: str | None = None, token_file: str | os.PathLike[str] | None = None,
                 super_token: Secret | None = None, keep: bool = False,
                 workdir: str | os.PathLike[str] | None = None, verify: bool | str = True,
                 timeout: tuple[float, float] = (30.0, 3600.0), export_retries: int = 3,
                 rename_leftovers: bool = True) -> None:
        super().__init__(keep=keep, workdir=workdir)
        url = url or os.environ.get(URL_ENV, "")
        if not url:
            raise UsageError(f"--target url needs the instance's API URL: pass --target-url or set {URL_ENV} "
                             "(e.g. https://redcap-dev.example.org/api/)")
        if verify is False:
            raise UsageError("TLS verification cannot be switched off; point REQUESTS_CA_BUNDLE at the "
                             "instance's CA certificate instead")
        if token_file is None and os.environ.get(TOKEN_ENV + "_FILE"):
            token_file = os.environ[TOKEN_ENV + "_FILE"]
        token = super_token if super_token is not None else super_token_from(TOKEN_ENV, token_file)
        self.api = RedcapApi(url, super_token=token, verify=verify, timeout=timeout, export_retries=export_retries)
        self.rename_leftovers = rename_leftovers
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._version = ""

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="redcap-drill-", dir=self.workdir)
        try:
            self._version = self.api.version()
        except TargetError:
            self.stop()
            raise

    def stop(self) -> None:
        self.api.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _dir(self) -> Path:
        if self._tmp is None:
            raise TargetError("the url target is not started; use it as a context manager (with ... as target)")
        return Path(self._tmp.name)

    def version(self) -> str:
        return self._version

    def info(self) -> TargetInfo:
        return TargetInfo(self.kind, redact_url(self.api.url), self._version)

    def restore(self, archive_path, *, title, purpose="0", purpose_other="", notes="") -> Restored:
        restored = restore_via_api(self.api, Path(archive_path), kind=self.kind, title=title, purpose=purpose,
                                   purpose_other=purpose_other, notes=notes, tmpdir=self._dir())
        return self._track(restored)

    def export(self, restored: Restored, *, options: ExportOptions = ExportOptions()) -> Path:
        return export_to_temp(self.api, restored, options, self._dir())

    def _remove(self, restored: Restored) -> Cleanup:
        # REDCap has no "delete project" API method; only an administrator can delete it.
        detail = (f"REDCap's API cannot delete projects: an administrator must delete {self.where(restored)} "
                  "(Control Center > Browse Projects, or the project's Other Functionality page)")
        if self.rename_leftovers:
            try:
                self.api.rename_project(restored.project_token, LEFTOVER_PREFIX + restored.title)
                detail += f"; it was renamed to start with {LEFTOVER_PREFIX.strip()!r}"
            except TargetError:
                pass
        return Cleanup(restored.project_id, restored.title, "manual", detail)

    def where(self, restored: Restored) -> str:
        host = redact_url(self.api.url).removesuffix("api/")
        return f"project {restored.project_id} ({restored.title!r}) on {host}"
