"""Restore into a disposable real REDCap in Docker, built from the site's own REDCap zip.

    with targets.get("docker", zip="redcap15.2.0.zip") as target:   # or image="redcap-drill/redcap:…"
        restored = target.restore(path, title=...)

``start`` builds the web image from the zip if it is not built yet (cached by
version and hash), starts a private network with MariaDB and PHP/Apache,
installs REDCap and waits until its API answers; drills then talk to it over
HTTP exactly as the url target does (the same `RedcapApi` client). ``stop``
removes containers, volumes and network whatever happened, so restored records
do not outlive the run; ``keep=True`` leaves everything for inspection and says
how to remove it.

Options can also come from the environment (for ``--target docker`` in CI):
``REDCAP_DRILL_DOCKER_ZIP``, ``REDCAP_DRILL_DOCKER_IMAGE``, ``REDCAP_DRILL_DOCKER_DB_IMAGE``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.dockerenv import daemon, recipes
from harness.dockerenv.lifecycle import DockerEnvironment, Environment, EnvironmentSpec
from harness.dockerenv.redcap_zip import inspect_zip
from harness.errors import TargetError, UsageError
from harness.targets.api import RedcapApi
from harness.targets.base import Cleanup, ExportOptions, Restored, Target, TargetInfo
from harness.targets.restore import export_to_temp, restore_via_api

ZIP_ENV = "REDCAP_DRILL_DOCKER_ZIP"
IMAGE_ENV = "REDCAP_DRILL_DOCKER_IMAGE"
DB_IMAGE_ENV = "REDCAP_DRILL_DOCKER_DB_IMAGE"


class DockerTarget(Target):
    """A REDCap started in Docker on ``__enter__`` and removed on ``__exit__``.

    Give ``zip`` (the REDCap install zip; the web image is built from it once)
    or ``image`` (a web image built before, e.g. by ``redcap-drill docker build``).
    """

    kind = "docker"

    def __init__(self, *, zip: str | os.PathLike[str] | None = None, image: str | None = None,
                 db_image: str | None = None, php_image: str = recipes.DEFAULT_PHP_IMAGE, keep: bool = False,
                 workdir: str | os.PathLike[str] | None = None, publish: int | None = None,
                 ready_timeout: float = 600.0, timeout: tuple[float, float] = (10.0, 3600.0),
                 docker_host: str | None = None, pull: bool = True) -> None:
        super().__init__(keep=keep, workdir=workdir)
        zip = zip or os.environ.get(ZIP_ENV) or None
        image = image or os.environ.get(IMAGE_ENV) or None
        if not zip and not image:
            raise UsageError(
                "--target docker needs your REDCap: pass the install zip you downloaded from the REDCap Community "
                f"site (zip=… / {ZIP_ENV}) or an image built from it (image=… / {IMAGE_ENV}; build one with "
                "`redcap-drill docker build --zip redcapX.Y.Z.zip`)")
        self.zip = Path(zip) if zip else None
        self.image = image
        self.db_image = db_image or os.environ.get(DB_IMAGE_ENV) or recipes.DEFAULT_DB_IMAGE
        self.php_image = php_image
        self.publish = publish
        self.ready_timeout = ready_timeout
        self.timeout = timeout
        self.docker_host = docker_host
        self.pull = pull
        self.api: RedcapApi | None = None
        self.environment: DockerEnvironment | None = None
        self.env: Environment | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        try:
            facts = inspect_zip(self.zip) if self.image is None else None
            client = daemon.connect(self.docker_host)
            image = self.image or recipes.build_web_image(client, facts, base_image=self.php_image)
            spec = EnvironmentSpec(web_image=image, db_image=self.db_image, keep=self.keep, publish=self.publish,
                                   pull_db=self.pull, db_timeout=self.ready_timeout,
                                   web_timeout=self.ready_timeout, docker_host=self.docker_host)
            self.environment = DockerEnvironment(spec, client=client)
            self.env = self.environment.start()
            self._tmp = tempfile.TemporaryDirectory(prefix="redcap-drill-", dir=self.workdir)
            self.api = RedcapApi(self.env.api_url, super_token=self.env.super_token, timeout=self.timeout,
                                 export_retries=2)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        try:
            if self.api is not None:
                self.api.close()
                self.api = None
        finally:
            try:
                if self.environment is not None:
                    self.environment.stop()
            finally:
                if self._tmp is not None:
                    self._tmp.cleanup()
                    self._tmp = None

    def _ready(self) -> tuple[RedcapApi, Path]:
        if self.api is None or self._tmp is None:
            raise TargetError("the docker target is not started; use it as a context manager (with ... as target)")
        return self.api, Path(self._tmp.name)

    # -- operations ----------------------------------------------------------------------
    def version(self) -> str:
        self._ready()
        return self.env.version

    def info(self) -> TargetInfo:
        return TargetInfo(self.kind, self.env.api_url if self.env else "(not started)",
                          self.env.version if self.env else "")

    def restore(self, archive_path, *, title, purpose="0", purpose_other="", notes="") -> Restored:
        api, tmp = self._ready()
        restored = restore_via_api(api, Path(archive_path), kind=self.kind, title=title, purpose=purpose,
                                   purpose_other=purpose_other, notes=notes, tmpdir=tmp)
        return self._track(restored)

    def export(self, restored: Restored, *, options: ExportOptions = ExportOptions()) -> Path:
        api, tmp = self._ready()
        return export_to_temp(api, restored, options, tmp)

    def _remove(self, restored: Restored) -> Cleanup:
        # REDCap's API cannot delete projects; this REDCap's database volume is deleted at the end of the run.
        if self.keep:
            return Cleanup(restored.project_id, restored.title, "kept",
                           f"kept with the disposable REDCap; {self.where(restored)}")
        return Cleanup(restored.project_id, restored.title, "removed",
                       "deleted with the disposable REDCap's database volume when the run ends")

    def where(self, restored: Restored) -> str:
        if self.env is None:
            return f"project {restored.project_id} ({restored.title!r}) on a disposable Docker REDCap"
        return (f"project {restored.project_id} ({restored.title!r}) on the disposable REDCap {self.env.url} "
                f"(run {self.env.run_id}; remove it with `redcap-drill docker down {self.env.run_id}`)")
