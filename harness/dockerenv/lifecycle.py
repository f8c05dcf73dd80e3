"""Start and always remove one disposable REDCap: a private network, a MariaDB and a PHP/Apache container.

    spec = EnvironmentSpec(web_image="redcap-drill/redcap:15.2.0-…")
    with DockerEnvironment(spec) as env:     # an Environment: url, api_url, version, super_token
        ...
    # network, containers and volumes are gone here, whatever happened inside

Start-up, in order: network and volumes; DB container started with a
healthcheck; web container created (not started) so REDCap's install SQL can be
read out of the image and ``database.php`` written in; wait for the DB; install
the schema, version rows, settings and an administrator with a super token; start
the web container; set the base URL; wait until the web server answers and then
until the API answers Export Version with the super token.

Everything made carries the run's labels (`labels.run_labels`), and teardown
removes by label, so objects from a start that failed half-way go too.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
import tarfile
from dataclasses import dataclass, field

import requests
from docker.errors import DockerException

from harness.dockerenv import daemon, labels, readiness, siteconfig
from harness.dockerenv.errors import DockerError, InstallFailed
from harness.dockerenv.recipes import DEFAULT_DB_IMAGE, WEB_ROOT, WWW_DATA, tar_of
from harness.dockerenv.redcap_zip import version_key
from harness.dockerenv.sweep import SweepResult, remove_run
from harness.dockerenv.teardown import TeardownGuard
from harness.targets.api import RedcapApi
from harness.targets.secret import Secret

log = logging.getLogger(__name__)

#: MariaDB server options: REDCap stores whole uploaded files in one query when a project XML embeds them.
DB_ARGS = (
    "--max_allowed_packet=1G",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--sql-mode=NO_ENGINE_SUBSTITUTION",
)
#: TCP ping: during the official image's first-start init the server listens on a socket only.
DB_HEALTHCHECK = {
    "test": ["CMD-SHELL", "mariadb-admin ping -h 127.0.0.1 --silent || mysqladmin ping -h 127.0.0.1 --silent"],
    "interval": 1_000_000_000,
    "timeout": 5_000_000_000,
    "retries": 1000,
}
DB_DATA = "/var/lib/mysql"
EDOCS = f"{WEB_ROOT}/edocs"
_SQL_DIR = "/tmp"
#: ``sh -c`` script: $0 is the SQL file (deleted after use), "$@" the client's extra arguments.
_RUN_SQL_FILE = ('client="$(command -v mariadb || command -v mysql)"; '
                 '"$client" --user=root --default-character-set=utf8mb4 "$@" < "$0"; rc=$?; rm -f "$0"; exit $rc')
_VERSION_DIR = re.compile(r"redcap_v(\d+\.\d+\.\d+)/?$")


@dataclass(frozen=True)
class EnvironmentSpec:
    """What to start. Only ``web_image`` is required; it is built from a zip by `recipes.build_web_image`."""

    web_image: str
    db_image: str = DEFAULT_DB_IMAGE
    #: Read from the web image's label, or its redcap_v* folder, when None.
    redcap_version: str | None = None
    #: Leave everything running at the end (for ``docker up`` and debugging); ``docker down`` removes it.
    keep: bool = False
    #: Publish the web port on 127.0.0.1 (0 = any free port) instead of using the container's IP,
    #: for Docker Desktop where container IPs are not reachable from the host.
    publish: int | None = None
    #: Pull a missing DB image (the web image is never pulled: it holds the site's licensed REDCap).
    pull_db: bool = True
    db_args: tuple[str, ...] = DB_ARGS
    db_timeout: float = 300.0
    web_timeout: float = 600.0
    docker_host: str | None = None


@dataclass(frozen=True)
class Environment:
    """A running disposable REDCap; the super token and admin password are `Secret`s."""

    run_id: str
    url: str
    api_url: str
    version: str
    network: str
    db_container: str
    web_container: str
    admin_user: str
    super_token: Secret = field(repr=False, compare=False)
    admin_password: Secret = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "url": self.url, "api_url": self.api_url, "version": self.version,
                "network": self.network, "db_container": self.db_container, "web_container": self.web_container,
                "admin_user": self.admin_user}


class DockerEnvironment:
    """Context manager around one run; `stop` is idempotent and never raises."""

    def __init__(self, spec: EnvironmentSpec, *, client=None, run_id: str | None = None) -> None:
        self.spec = spec
        self.run_id = run_id or labels.new_run_id()
        self._client = client
        self._site = siteconfig.SiteSecrets.generate()
        self._guard = TeardownGuard(self.stop)
        self._env: Environment | None = None
        self._started = False
        self.teardown: SweepResult | None = None

    def __enter__(self) -> Environment:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def environment(self) -> Environment | None:
        return self._env

    @property
    def client(self):
        if self._client is None:
            self._client = daemon.connect(self.spec.docker_host)
        return self._client

    # -- start ---------------------------------------------------------------------------
    def start(self) -> Environment:
        if self._env is not None:
            return self._env
        client = self.client
        daemon.ensure_image(client, self.spec.web_image, pull=False,
                            how="build it from your REDCap install zip with `redcap-drill docker build --zip "
                                "redcapX.Y.Z.zip` (or `docker load` an image you built elsewhere)")
        daemon.ensure_image(client, self.spec.db_image, pull=self.spec.pull_db,
                            how=f"pull it where a registry is reachable (`docker pull {self.spec.db_image}`, then "
                                "`docker save`/`docker load`), or pass another MariaDB image with --db-image")
        self._started = True
        self._guard.arm()
        try:
            self._env = self._start(client)
        except BaseException:
            # Even with keep: a half-started site is no use, and the error already quotes its logs.
            self.remove()
            raise
        log.info("REDCap %s is ready at %s (run %s)", self._env.version, self._env.url, self.run_id)
        return self._env

    def _start(self, client) -> Environment:
        spec, site, run = self.spec, self._site, self.run_id
        hidden = site.all()
        version = siteconfig.check_version(spec.redcap_version or self._version_of(client, spec.web_image))
        network = client.networks.create(
            labels.object_name(run, "net"), driver="bridge", labels=self._labels("network"),
            # No way out for a site full of restored records, unless a port must be published.
            internal=spec.publish is None)
        db_volume = client.volumes.create(labels.object_name(run, "dbdata"), labels=self._labels("volume"))
        edocs = client.volumes.create(labels.object_name(run, "edocs"), labels=self._labels("volume"))

        db_name = labels.object_name(run, "db")
        db = client.containers.create(
            spec.db_image, command=list(spec.db_args), name=db_name, detach=True, network=network.name,
            environment={"MARIADB_ROOT_PASSWORD": site.db_root_password.reveal(),
                         "MYSQL_ROOT_PASSWORD": site.db_root_password.reveal()},
            healthcheck=DB_HEALTHCHECK, labels=self._labels("db"),
            volumes={db_volume.name: {"bind": DB_DATA, "mode": "rw"}})
        db.start()

        ports = {"80/tcp": ("127.0.0.1", spec.publish or None)} if spec.publish is not None else None
        web = client.containers.create(
            spec.web_image, name=labels.object_name(run, "web"), detach=True, network=network.name,
            labels=self._labels("web"), ports=ports, volumes={edocs.name: {"bind": EDOCS, "mode": "rw"}})
        sql_dir = f"{WEB_ROOT}/redcap_v{version}/Resources/sql"
        schema = _read_text(web, f"{sql_dir}/install.sql", spec.web_image)
        initial_rows = _read_text(web, f"{sql_dir}/install_data.sql", spec.web_image)
        php = siteconfig.database_php(password=site.db_password, salt=site.salt, host=db_name)
        # Readable by Apache (group www-data), not by everyone: it holds the DB password and salt.
        web.put_archive(WEB_ROOT, tar_of({"database.php": php.encode()}, mode=0o640, gid=WWW_DATA))

        readiness.wait_healthy(db, timeout=spec.db_timeout, what="database", secrets=hidden)
        _run_sql(db, siteconfig.database_sql(password=site.db_password), site, what="create REDCap's database")
        _run_sql(db, siteconfig.install_sql(schema=schema, initial_rows=initial_rows, version=version), site,
                 database=siteconfig.DB_NAME, what=f"install REDCap {version}'s schema")
        user_columns = _columns(db, "redcap_user_information", site)
        auth_columns = _columns(db, "redcap_auth", site)
        _run_sql(db, siteconfig.admin_sql(site, user_columns=user_columns, auth_columns=auth_columns), site,
                 database=siteconfig.DB_NAME, what="create the site administrator")

        web.start()
        url = _web_url(web, network.name, published=spec.publish is not None)
        _run_sql(db, siteconfig.base_url_sql(url), site, database=siteconfig.DB_NAME, what="set the base URL")
        readiness.wait_http(url, web, timeout=spec.web_timeout, what="web", secrets=hidden)
        api = RedcapApi(url + "api/", super_token=site.super_token, timeout=(5.0, 60.0), export_retries=0)
        try:
            reported = readiness.wait_api(api, web, timeout=spec.web_timeout, what="web", secrets=hidden)
        finally:
            api.close()
        return Environment(run_id=run, url=url, api_url=url + "api/", version=reported, network=network.name,
                           db_container=db.name, web_container=web.name, admin_user=siteconfig.ADMIN_USER,
                           super_token=site.super_token, admin_password=site.admin_password)

    def _labels(self, role: str) -> dict[str, str]:
        return labels.run_labels(self.run_id, role, keep=self.spec.keep)

    def _version_of(self, client, image: str) -> str:
        """The REDCap version inside ``image``: our build label, else its ``redcap_v*`` folders."""
        found = (client.images.get(image).labels or {}).get(labels.REDCAP_VERSION)
        if found:
            return found
        output = client.containers.run(
            image, entrypoint=["sh", "-c", f"ls -d {WEB_ROOT}/redcap_v* 2>/dev/null; true"], remove=True,
            network_disabled=True, labels=self._labels("probe"), name=labels.object_name(self.run_id, "probe"))
        versions = [m.group(1) for line in output.decode().split() if (m := _VERSION_DIR.search(line))]
        if not versions:
            raise InstallFailed(f"the image {image} has no {WEB_ROOT}/redcap_vX.Y.Z folder, so it is not a REDCap "
                                "web image; build one with `redcap-drill docker build --zip redcapX.Y.Z.zip`")
        return max(versions, key=version_key)

    # -- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Remove the run's containers, volumes and network (unless kept); safe to call twice."""
        self._guard.disarm()
        if not self._started:
            return
        self._started = False
        if self.spec.keep:
            log.warning("kept the disposable REDCap of run %s%s; remove it with `redcap-drill docker down %s`",
                        self.run_id, f" at {self._env.url}" if self._env else "", self.run_id)
            return
        self.remove()

    def detach(self) -> Environment:
        """Let the running site outlive this process (``docker up``); ``docker down`` removes it later."""
        if self._env is None or not self.spec.keep:
            raise DockerError("only a started environment with keep=True can be detached")
        self._guard.disarm()
        self._started = False
        return self._env

    def remove(self) -> None:
        """Remove everything the run made now, kept or not; never raises (failures are logged)."""
        self._guard.disarm()
        self._started = False
        try:
            self.teardown = remove_run(self.client, self.run_id)
        except (DockerException, requests.RequestException, DockerError) as exc:
            log.error("could not tear down run %s (%s); run `redcap-drill docker sweep`", self.run_id, exc)
            return
        for obj, reason in self.teardown.failed:
            log.error("could not remove %s %s (%s); run `redcap-drill docker sweep`", obj.kind, obj.name, reason)


def _read_text(container, path: str, image: str) -> str:
    """A text file out of a created (not necessarily started) container."""
    try:
        chunks, _ = container.get_archive(path)
        data = b"".join(chunks)
    except DockerException:
        raise InstallFailed(f"the image {image} has no {path}; it is not a complete REDCap web image, rebuild it "
                            "with `redcap-drill docker build --zip redcapX.Y.Z.zip`") from None
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = next((m for m in tar.getmembers() if m.isfile()), None)
        handle = tar.extractfile(member) if member is not None else None
        if handle is None:
            raise InstallFailed(f"{path} in {image} is not a regular file; rebuild the image")
        return handle.read().decode("utf-8", "replace")


def _run_sql(db, sql: str, site: siteconfig.SiteSecrets, *, what: str, database: str | None = None) -> str:
    """Run ``sql`` as the DB's root through a file copied into the DB container; returns its output."""
    name = f"redcap-drill-{secrets.token_hex(6)}.sql"
    db.put_archive(_SQL_DIR, tar_of({name: sql.encode("utf-8")}, mode=0o600))
    args = ["--batch", "--skip-column-names"] + ([database] if database else [])
    try:
        code, output = db.exec_run(["sh", "-c", _RUN_SQL_FILE, f"{_SQL_DIR}/{name}", *args],
                                   environment={"MYSQL_PWD": site.db_root_password.reveal()})
    except DockerException as exc:
        raise InstallFailed(f"could not {what}: {exc}") from None
    text = (output or b"").decode("utf-8", "replace")
    if code != 0:
        tail = readiness.scrub_log("\n".join(text.strip().splitlines()[-10:]), *site.all())
        raise InstallFailed(f"could not {what} (the database client exited with {code}): {tail}; check that "
                            "the DB image is MariaDB 10.3+ or MySQL 8 and that the REDCap zip is complete")
    return text


def _columns(db, table: str, site: siteconfig.SiteSecrets) -> set[str]:
    output = _run_sql(db, f"SHOW COLUMNS FROM `{table}`;\n", site, database=siteconfig.DB_NAME,
                      what=f"read the columns of {table}")
    return {line.split("\t", 1)[0] for line in output.splitlines() if line.strip()}


def _web_url(web, network: str, *, published: bool) -> str:
    web.reload()
    settings = web.attrs.get("NetworkSettings", {})
    if published:
        bindings = (settings.get("Ports") or {}).get("80/tcp") or []
        if not bindings:
            raise DockerError("the web container's port 80 was not published; is another process using the port?")
        return f"http://127.0.0.1:{bindings[0]['HostPort']}/"
    address = ((settings.get("Networks") or {}).get(network) or {}).get("IPAddress")
    if not address:
        raise DockerError("the web container has no address on its network; check `docker network inspect "
                          f"{network}`, or publish a port with --publish")
    return f"http://{address}/"
