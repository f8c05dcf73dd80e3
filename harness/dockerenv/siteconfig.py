"""Configuration of a fresh REDCap site: ``database.php`` and the SQL that installs and sets it up.

All text is generated here and nothing is executed: the lifecycle copies it into
the containers. The install follows REDCap's own installer (``install.php``):
``install.sql`` (schema) + ``install_data.sql`` (initial rows), then the version
rows, then site settings. On top of that the drill needs the API switched on, a
base URL, and one site administrator holding a 64-hex super API token.

Every value is generated per run and travels as a `Secret`; it is only revealed
into the files and SQL made here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Set
from dataclasses import dataclass, field

from harness.dockerenv.errors import InstallFailed
from harness.targets.secret import Secret

DB_NAME = "redcap"
DB_USER = "redcap"
DB_HOST = "db"
ADMIN_USER = "drill_admin"
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class SiteSecrets:
    """The credentials of one disposable site; never printed, never logged."""

    db_root_password: Secret = field(repr=False)
    db_password: Secret = field(repr=False)
    salt: Secret = field(repr=False)
    super_token: Secret = field(repr=False)
    admin_password: Secret = field(repr=False)

    @classmethod
    def generate(cls) -> SiteSecrets:
        return cls(
            db_root_password=Secret(secrets.token_hex(24)),
            db_password=Secret(secrets.token_hex(24)),
            salt=Secret(secrets.token_hex(16)),
            # REDCap's own super tokens are strtoupper(sha256(...)): 64 upper-case hex characters.
            super_token=Secret(secrets.token_hex(32).upper()),
            admin_password=Secret(secrets.token_urlsafe(18)),
        )

    def all(self) -> tuple[Secret, ...]:
        return (self.db_root_password, self.db_password, self.salt, self.super_token, self.admin_password)


def php_string(value: str) -> str:
    """A PHP single-quoted literal: only ``\\`` and ``'`` are special there."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_string(value: str) -> str:
    """A MariaDB string literal (default sql_mode, so backslash escapes apply)."""
    escaped = value.replace("\\", "\\\\").replace("'", "''").replace("\x00", "\\0")
    return f"'{escaped}'"


def database_php(*, password: Secret, salt: Secret, host: str = DB_HOST, db: str = DB_NAME,
                 user: str = DB_USER) -> str:
    """REDCap's ``database.php``: where the database is and the site's salt."""
    return (
        "<?php\n"
        "// Written by redcap-drill for a disposable REDCap; removed with its containers.\n"
        "global $log_all_errors;\n"
        "$log_all_errors = FALSE;\n"
        f"$hostname = {php_string(host)};\n"
        f"$db = {php_string(db)};\n"
        f"$username = {php_string(user)};\n"
        f"$password = {php_string(password.reveal())};\n"
        "$db_ssl_key = '';\n$db_ssl_cert = '';\n$db_ssl_ca = '';\n$db_ssl_capath = NULL;\n$db_ssl_cipher = NULL;\n"
        "$db_ssl_verify_server_cert = false;\n"
        f"$salt = {php_string(salt.reveal())};\n"
    )


def database_sql(*, password: Secret, db: str = DB_NAME, user: str = DB_USER) -> str:
    """Run as the DB's root: REDCap's database and the account ``database.php`` names."""
    return (
        f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        f"CREATE USER IF NOT EXISTS {sql_string(user)}@'%' IDENTIFIED BY {sql_string(password.reveal())};\n"
        # The grant REDCap's installer asks for; the schema itself is installed as root.
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO {sql_string(user)}@'%';\n"
        "FLUSH PRIVILEGES;\n"
    )


def install_sql(*, schema: str, initial_rows: str, version: str) -> str:
    """REDCap's install script as ``install.php`` prints it, minus the demo projects.

    ``schema`` and ``initial_rows`` are the version's ``install.sql`` and
    ``install_data.sql``; the version rows make REDCap serve ``redcap_v<version>``.
    """
    check_version(version)
    return (
        "-- REDCap install.sql --\n" + schema.rstrip() + "\n"
        "-- REDCap install_data.sql --\n" + initial_rows.rstrip() + "\n"
        "-- redcap-drill: version rows and site settings --\n"
        + config_sql({
            "redcap_version": version,
            "api_enabled": "1",
            # A disposable instance must not phone home or announce itself.
            "auto_report_stats": "0",
            "auth_meth_global": "table",
        })
        + f"REPLACE INTO redcap_history_version (`date`, redcap_version) VALUES (CURDATE(), {sql_string(version)});\n"
    )


def config_sql(settings: dict[str, str]) -> str:
    return "".join(f"UPDATE redcap_config SET value = {sql_string(value)} WHERE field_name = {sql_string(name)};\n"
                   for name, value in settings.items())


def base_url_sql(url: str) -> str:
    """Where REDCap thinks it lives; it builds links and redirects from this."""
    if not url.endswith("/"):
        url += "/"
    return config_sql({"redcap_base_url": url})


def admin_sql(site: SiteSecrets, *, user_columns: Set[str], auth_columns: Set[str],
              username: str = ADMIN_USER) -> str:
    """A site administrator with the run's super API token (and a table-auth password).

    The columns of ``redcap_user_information`` grew over REDCap's versions (the
    granular admin rights came in 10.x), so only columns the installed schema
    has are set: pass what ``SHOW COLUMNS`` reports.
    """
    if "api_token" not in user_columns or "username" not in user_columns:
        raise InstallFailed("this REDCap's redcap_user_information table has no api_token column, so it has no "
                            "super API tokens; use REDCap 7.0 or later")
    wanted = {
        "username": sql_string(username),
        "user_email": sql_string(f"{username}@example.invalid"),
        "user_firstname": "'redcap-drill'",
        "user_lastname": "'administrator'",
        "super_user": "1",
        "account_manager": "1",
        "access_system_config": "1",
        "access_system_upgrade": "1",
        "access_external_module_install": "1",
        "admin_rights": "1",
        "access_admin_dashboards": "1",
        "allow_create_db": "1",
        "user_creation": "NOW()",
        "user_firstvisit": "NOW()",
        "api_token": sql_string(site.super_token.reveal()),
    }
    columns = [name for name in wanted if name in user_columns]
    statements = [
        f"DELETE FROM redcap_user_information WHERE username = {sql_string(username)};\n",
        f"INSERT INTO redcap_user_information ({', '.join(columns)}) "
        f"VALUES ({', '.join(wanted[name] for name in columns)});\n",
    ]
    if {"username", "password"} <= set(auth_columns):
        auth = {"username": sql_string(username), "password": f"MD5({sql_string(site.admin_password.reveal())})",
                # legacy_hash=1 tells REDCap the password is a bare MD5; it rehashes it on first login.
                "legacy_hash": "1", "temp_pwd": "0"}
        auth_cols = [name for name in auth if name in auth_columns]
        statements.append(f"DELETE FROM redcap_auth WHERE username = {sql_string(username)};\n")
        statements.append(f"INSERT INTO redcap_auth ({', '.join(auth_cols)}) "
                          f"VALUES ({', '.join(auth[name] for name in auth_cols)});\n")
    return "".join(statements)


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise InstallFailed(f"{version!r} is not a REDCap version (X.Y.Z); pass the version explicitly "
                            "or rebuild the image with `redcap-drill docker build --zip …`")
    return version
