"""Recipe for a stand-in "REDCap" pair of images, to exercise the Docker lifecycle where REDCap is unavailable.

REDCap is licensed per site, so CI and these tests cannot build the real web
image. The stand-in keeps every contract the lifecycle relies on, so start-up,
install, readiness, drills and teardown run unchanged against it:

* **web image** — has ``/var/www/html/redcap_v15.7.6/Resources/sql/install.sql``
  and ``install_data.sql`` (a tiny schema with REDCap's table and column names),
  reads ``database.php`` like REDCap, waits until the install has set the
  version row, switched the API on, set a base URL and created an administrator
  with a super token, then serves our embedded REDCap-compatible sandbox on port
  80 with *that* token. A wrong install therefore fails the readiness check.
* **DB image** — real MariaDB (Debian's ``mariadb-server``) behind an
  entrypoint with the official image's contract: ``MARIADB_ROOT_PASSWORD`` and
  server options as arguments.

Both derive from a plain Debian base with python3, lxml, pymysql and
mariadb-server (``scripts/docker-e2e`` makes one with debootstrap); the
harness package is copied into the web image from this installation.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import harness
from harness.dockerenv import labels
from harness.dockerenv.recipes import WEB_ROOT, add_bytes, build_image

#: The REDCap version the sandbox emulates, so the folder, the version row and the API all agree.
STANDIN_VERSION = "15.7.6"
PACKAGE_HOME = "/opt/redcap-drill"
WEB_TAG = "redcap-drill/standin-web:latest"
DB_TAG = "redcap-drill/standin-db:latest"
#: Debian packages the base image needs (scripts/docker-e2e installs exactly these).
BASE_PACKAGES = ("python3", "python3-lxml", "python3-pymysql", "mariadb-server", "mariadb-client")

SCHEMA = """\
-- Stand-in schema: REDCap's names for the tables and columns the install touches, nothing else.
CREATE TABLE redcap_config (
  field_name varchar(191) NOT NULL PRIMARY KEY,
  value mediumtext
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE redcap_history_version (
  `date` date NOT NULL,
  redcap_version varchar(30) NOT NULL,
  PRIMARY KEY (`date`, redcap_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE redcap_user_information (
  ui_id int(10) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username varchar(191) DEFAULT NULL UNIQUE,
  user_email varchar(255) DEFAULT NULL,
  user_firstname varchar(255) DEFAULT NULL,
  user_lastname varchar(255) DEFAULT NULL,
  super_user tinyint(1) NOT NULL DEFAULT 0,
  allow_create_db tinyint(1) NOT NULL DEFAULT 1,
  user_creation datetime DEFAULT NULL,
  user_firstvisit datetime DEFAULT NULL,
  api_token varchar(64) DEFAULT NULL UNIQUE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE redcap_auth (
  username varchar(191) NOT NULL PRIMARY KEY,
  password varchar(255) DEFAULT NULL,
  legacy_hash tinyint(1) NOT NULL DEFAULT 0,
  temp_pwd tinyint(1) NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
"""

INITIAL_ROWS = """\
INSERT INTO redcap_config (field_name, value) VALUES
  ('redcap_version', '0.0.0'), ('redcap_base_url', ''), ('api_enabled', '0'),
  ('auto_report_stats', '1'), ('auth_meth_global', 'none');
"""

DB_ENTRYPOINT = """\
#!/bin/sh
# Stand-in for the official MariaDB image's entrypoint: MARIADB_ROOT_PASSWORD, server options as arguments.
set -eu
: "${MARIADB_ROOT_PASSWORD:?set MARIADB_ROOT_PASSWORD}"
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld /var/lib/mysql
if [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \\
    --auth-root-authentication-method=normal >/dev/null
fi
umask 077
quoted=$(printf '%s' "$MARIADB_ROOT_PASSWORD" | sed "s/'/''/g")
printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\\nFLUSH PRIVILEGES;\\n" "$quoted" > /run/mysqld/init.sql
chown mysql /run/mysqld/init.sql
exec mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=0.0.0.0 \\
  --init-file=/run/mysqld/init.sql "$@"
"""

WEB_ENTRYPOINT = f"""\
#!/usr/bin/env python3
\"\"\"Stand-in REDCap web server: checks the install the way REDCap would see it, then serves the sandbox.\"\"\"
import os, re, sys, time
import pymysql

sys.path.insert(0, {PACKAGE_HOME!r})

VERSION = {STANDIN_VERSION!r}
text = open({WEB_ROOT + "/database.php"!r}, encoding="utf-8").read()


def php(name):
    match = re.search(r"\\$" + name + r"\\s*=\\s*'((?:[^'\\\\]|\\\\.)*)'\\s*;", text)
    if not match:
        sys.exit(f"stand-in: database.php does not set ${{name}}")
    return re.sub(r"\\\\(.)", r"\\1", match.group(1))


params = dict(host=php("hostname"), database=php("db"), user=php("username"), password=php("password"))
php("salt")
deadline = time.monotonic() + float(os.environ.get("STANDIN_TIMEOUT", "600"))
token = None
while token is None:
    try:
        with pymysql.connect(connect_timeout=5, **params) as conn, conn.cursor() as cur:
            cur.execute("SELECT field_name, value FROM redcap_config")
            config = dict(cur.fetchall())
            cur.execute("SELECT api_token FROM redcap_user_information "
                        "WHERE super_user = 1 AND api_token IS NOT NULL")
            row = cur.fetchone()
        if row and config.get("redcap_base_url"):
            if config.get("redcap_version") != VERSION:
                sys.exit(f"stand-in: redcap_version is {{config.get('redcap_version')!r}}, not {{VERSION}}")
            if config.get("api_enabled") != "1":
                sys.exit("stand-in: the REDCap API is not enabled (api_enabled)")
            if not re.fullmatch(r"[0-9A-F]{{64}}", row[0]):
                sys.exit("stand-in: the administrator's super token is not 64 upper-case hex characters")
            token = row[0]
            break
    except pymysql.MySQLError as exc:
        print(f"stand-in: waiting for the database ({{exc.args[0] if exc.args else exc}})", flush=True)
    if time.monotonic() > deadline:
        sys.exit("stand-in: the install never completed")
    time.sleep(0.5)

from harness.sandbox.server import SandboxServer  # noqa: E402

# Through the API, not `sandbox serve`: that prints the token, and container logs must never hold one.
server = SandboxServer(host="0.0.0.0", port=80, super_token=token, version=VERSION).bind()
print(f"stand-in: install complete; serving the sandbox as REDCap {{VERSION}} on port 80", flush=True)
server.serve_forever()
"""


# Few instructions on purpose: with the vfs storage driver every build step copies the whole image.
def web_dockerfile(base_image: str) -> str:
    return f"""\
FROM {base_image}
COPY rootfs/ /
LABEL {labels.REDCAP_VERSION}="{STANDIN_VERSION}" {labels.ROLE}="standin-web-image"
ENTRYPOINT ["python3", "-u", "-B", "/usr/local/bin/standin-web"]
"""


def db_dockerfile(base_image: str) -> str:
    return f"""\
FROM {base_image}
COPY rootfs/ /
ENTRYPOINT ["/usr/local/bin/standin-db"]
"""


def write_web_context(dest, *, base_image: str, package: Path | None = None) -> None:
    """The web image's build context: Dockerfile, entrypoint, install SQL and the harness package source."""
    package = package or Path(harness.__file__).resolve().parent
    sql = f"rootfs{WEB_ROOT}/redcap_v{STANDIN_VERSION}/Resources/sql"
    with tarfile.open(fileobj=dest, mode="w|") as tar:
        add_bytes(tar, "Dockerfile", web_dockerfile(base_image).encode())
        add_bytes(tar, "rootfs/usr/local/bin/standin-web", WEB_ENTRYPOINT.encode(), mode=0o755)
        add_bytes(tar, f"{sql}/install.sql", SCHEMA.encode())
        add_bytes(tar, f"{sql}/install_data.sql", INITIAL_ROWS.encode())
        for path in sorted(package.rglob("*")):
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo") or not path.is_file():
                continue
            tar.add(path, arcname=f"rootfs{PACKAGE_HOME}/harness/{path.relative_to(package).as_posix()}",
                    recursive=False)


def write_db_context(dest, *, base_image: str) -> None:
    with tarfile.open(fileobj=dest, mode="w|") as tar:
        add_bytes(tar, "Dockerfile", db_dockerfile(base_image).encode())
        add_bytes(tar, "rootfs/usr/local/bin/standin-db", DB_ENTRYPOINT.encode(), mode=0o755)


def build_standin_images(client, *, base_image: str, web_tag: str = WEB_TAG, db_tag: str = DB_TAG) -> tuple[str, str]:
    """Build both stand-in images from ``base_image``; returns (web tag, db tag)."""
    hint = f"the base image {base_image} must hold {', '.join(BASE_PACKAGES)} (scripts/docker-e2e builds one)"
    for writer, tag in ((write_web_context, web_tag), (write_db_context, db_tag)):
        context = io.BytesIO()
        writer(context, base_image=base_image)
        context.seek(0)
        build_image(client, context, tag=tag, hint=hint)
    return web_tag, db_tag
