"""The configuration of a fresh disposable REDCap: ``database.php`` and the SQL that installs REDCap,
switches the API on and creates an administrator with a 64-hex super token. Generated text only;
the Docker tests run it against a real MariaDB."""

from __future__ import annotations

import re

import pytest

from harness.dockerenv import siteconfig
from harness.dockerenv.errors import InstallFailed
from harness.dockerenv.siteconfig import SiteSecrets
from harness.targets.secret import Secret

SITE = SiteSecrets(db_root_password=Secret("root-pw"), db_password=Secret("o'brien\\pw"), salt=Secret("s4lt"),
                   super_token=Secret("AB" * 32), admin_password=Secret("admin-pw"))
USER_COLUMNS = {"ui_id", "username", "user_email", "user_firstname", "user_lastname", "super_user", "account_manager",
                "admin_rights", "allow_create_db", "user_creation", "user_firstvisit", "api_token"}


def test_generated_secrets_have_redcaps_formats_and_differ_each_time():
    first, second = SiteSecrets.generate(), SiteSecrets.generate()
    assert re.fullmatch(r"[0-9A-F]{64}", first.super_token.reveal())
    assert first.super_token != second.super_token and first.db_password != second.db_password
    assert "AB" * 32 not in repr(SITE) and "root-pw" not in repr(SITE)


def test_database_php_names_the_db_container_and_escapes_php_quotes():
    php = siteconfig.database_php(password=SITE.db_password, salt=SITE.salt, host="redcap-drill-run-db")
    assert php.startswith("<?php\n")
    assert "$hostname = 'redcap-drill-run-db';" in php
    assert "$db = 'redcap';" in php and "$username = 'redcap';" in php
    assert "$password = 'o\\'brien\\\\pw';" in php  # PHP reads back o'brien\pw
    assert "$salt = 's4lt';" in php


def test_the_database_account_gets_the_grant_redcaps_installer_asks_for():
    sql = siteconfig.database_sql(password=SITE.db_password)
    assert "CREATE DATABASE IF NOT EXISTS `redcap` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;" in sql
    assert "IDENTIFIED BY 'o''brien\\\\pw';" in sql
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON `redcap`.* TO 'redcap'@'%';" in sql


def test_install_runs_schema_then_initial_rows_then_version_rows_and_settings():
    sql = siteconfig.install_sql(schema="CREATE TABLE a (x int);", initial_rows="INSERT INTO a VALUES (1);",
                                 version="15.2.0")
    order = [sql.index(part) for part in (
        "CREATE TABLE a", "INSERT INTO a",
        "UPDATE redcap_config SET value = '15.2.0' WHERE field_name = 'redcap_version';",
        "UPDATE redcap_config SET value = '1' WHERE field_name = 'api_enabled';",
        "REPLACE INTO redcap_history_version (`date`, redcap_version) VALUES (CURDATE(), '15.2.0');")]
    assert order == sorted(order)
    assert "UPDATE redcap_config SET value = '0' WHERE field_name = 'auto_report_stats';" in sql


def test_a_version_that_is_not_x_y_z_is_refused_before_any_sql_runs():
    with pytest.raises(InstallFailed, match="not a REDCap version"):
        siteconfig.install_sql(schema="", initial_rows="", version="15.2.0'; DROP TABLE x; --")


def test_the_base_url_always_ends_with_a_slash():
    assert siteconfig.base_url_sql("http://10.0.0.5") == \
        "UPDATE redcap_config SET value = 'http://10.0.0.5/' WHERE field_name = 'redcap_base_url';\n"


def test_the_administrator_gets_the_super_token_and_only_columns_the_schema_has():
    sql = siteconfig.admin_sql(SITE, user_columns=USER_COLUMNS, auth_columns={"username", "password", "legacy_hash"})
    insert = next(line for line in sql.splitlines() if line.startswith("INSERT INTO redcap_user_information"))
    columns = insert[insert.index("(") + 1:insert.index(")")].split(", ")
    assert columns[0] == "username" and "api_token" in columns and "super_user" in columns
    assert "access_system_config" not in columns  # not in this (older) schema
    assert f"'{'AB' * 32}'" in insert
    assert "INSERT INTO redcap_auth (username, password, legacy_hash) VALUES ('drill_admin', MD5('admin-pw'), 1);" in sql


def test_a_schema_without_super_tokens_is_refused_with_the_minimum_version():
    with pytest.raises(InstallFailed, match="no api_token column.*REDCap 7.0 or later"):
        siteconfig.admin_sql(SITE, user_columns={"username", "super_user"}, auth_columns=set())


def test_sql_strings_are_escaped_for_mariadb():
    assert siteconfig.sql_string("it's a \\ path\x00") == "'it''s a \\\\ path\\0'"
