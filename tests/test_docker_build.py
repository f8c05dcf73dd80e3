"""Building the REDCap web image: the site's install zip is inspected before anything is unpacked,
and the Dockerfile and build context made from it hold exactly REDCap's web root and our settings.
No Docker daemon needed: these are the pure parts of `harness.dockerenv`."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.dockerenv import labels, recipes, standin
from harness.dockerenv.errors import NotARedcapZip
from harness.dockerenv.redcap_zip import inspect_zip

# A REDCap-shaped zip: the layout of the real install zip, with our own placeholder text.
INSTALL = {
    "redcap/index.php": b"<?php // placeholder",
    "redcap/api/index.php": b"<?php // placeholder",
    "redcap/edocs/index.html": b"",
    "redcap/redcap_v15.2.0/Resources/sql/install.sql": b"CREATE TABLE redcap_config (field_name varchar(191));",
    "redcap/redcap_v15.2.0/Resources/sql/install_data.sql": b"INSERT INTO redcap_config VALUES ('redcap_version');",
    "redcap/redcap_v15.2.0/index.php": b"<?php // placeholder",
}


def make_zip(path: Path, members: dict[str, bytes], *, dirs: tuple[str, ...] = (),
             links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in dirs:
            zf.writestr(zipfile.ZipInfo(name), b"")
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_finds_the_version_folder_and_hashes_the_zip(tmp_path):
    facts = inspect_zip(make_zip(tmp_path / "redcap15.2.0.zip", INSTALL, dirs=("redcap/", "redcap/redcap_v15.2.0/")))
    assert facts.version == "15.2.0"
    assert facts.version_dir == "redcap_v15.2.0"
    assert facts.root == "redcap/"
    assert facts.members == len(INSTALL) + 2
    assert len(facts.sha256) == 64


def test_uses_the_newest_of_several_version_folders(tmp_path):
    members = dict(INSTALL)
    for version in ("9.10.1", "15.10.0"):
        for name, data in INSTALL.items():
            members[name.replace("redcap_v15.2.0", f"redcap_v{version}")] = data
    assert inspect_zip(make_zip(tmp_path / "r.zip", members)).version == "15.10.0"


def test_a_zip_without_a_version_folder_is_refused_saying_what_to_download(tmp_path):
    path = make_zip(tmp_path / "site-backup.zip", {"redcap/index.php": b"", "redcap/api/index.php": b""})
    with pytest.raises(NotARedcapZip, match=r"no redcap/redcap_vX\.Y\.Z/ folder.*download the full install zip"):
        inspect_zip(path)


def test_an_upgrade_zip_is_refused_because_a_fresh_site_needs_the_api_folder(tmp_path):
    upgrade = {name: data for name, data in INSTALL.items() if "redcap_v" in name}
    with pytest.raises(NotARedcapZip, match=r"lacks redcap/api/index\.php.*upgrade zip"):
        inspect_zip(make_zip(tmp_path / "upgrade.zip", upgrade))


def test_a_version_folder_without_the_install_sql_is_refused(tmp_path):
    partial = {n: d for n, d in INSTALL.items() if not n.endswith("install_data.sql")}
    with pytest.raises(NotARedcapZip, match=r"lacks redcap/redcap_v15\.2\.0/Resources/sql/install_data\.sql"):
        inspect_zip(make_zip(tmp_path / "partial.zip", partial))


@pytest.mark.parametrize("name", [
    "../evil.php",
    "redcap/../../etc/cron.d/evil",
    "/etc/passwd",
    "redcap\\..\\evil.php",
    "C:/Windows/evil.dll",
], ids=["parent", "nested-parent", "absolute", "backslash", "drive-letter"])
def test_members_that_would_unpack_outside_the_folder_are_refused(tmp_path, name):
    path = make_zip(tmp_path / "slip.zip", {**INSTALL, name: b"x"})
    with pytest.raises(NotARedcapZip, match="zip-slip"):
        inspect_zip(path)


def test_symbolic_links_are_refused(tmp_path):
    path = make_zip(tmp_path / "link.zip", INSTALL, links={"redcap/temp": "/etc"})
    with pytest.raises(NotARedcapZip, match="symbolic link 'redcap/temp'"):
        inspect_zip(path)


def test_a_zip_that_unpacks_beyond_the_limit_is_refused(tmp_path):
    path = make_zip(tmp_path / "big.zip", {**INSTALL, "redcap/big.bin": b"\0" * 100_000})
    with pytest.raises(NotARedcapZip, match="zip bomb"):
        inspect_zip(path, max_unpacked=50_000)


@pytest.mark.parametrize("content, why", [(None, "does not exist"), (b"not a zip", "not a readable zip file")])
def test_a_missing_or_non_zip_file_is_refused(tmp_path, content, why):
    path = tmp_path / "redcap.zip"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NotARedcapZip, match=why):
        inspect_zip(path)


# --- the web image recipe ----------------------------------------------------------------------


def test_the_dockerfile_adds_redcaps_php_extensions_limits_and_web_root():
    text = recipes.web_dockerfile(base_image="php:8.3-apache", version="15.2.0")
    assert text.splitlines()[1] == "FROM php:8.3-apache"
    assert 'docker-php-ext-install -j"$(nproc)" mysqli gd zip' in text
    assert "COPY redcap-drill-php.ini /usr/local/etc/php/conf.d/zz-redcap-drill.ini" in text
    assert "COPY --chown=www-data:www-data redcap/ /var/www/html/" in text
    assert f'{labels.REDCAP_VERSION}="15.2.0"' in text


def test_php_limits_let_a_large_project_xml_through_in_one_request():
    ini = recipes.PhpLimits().ini()
    for line in ("upload_max_filesize = 1024M", "post_max_size = 1024M", "memory_limit = 4096M",
                 "max_input_vars = 100000", "max_execution_time = 3600", "date.timezone = UTC"):
        assert line in ini.splitlines()
    assert "post_max_size = 64M" in recipes.PhpLimits(post_max_size="64M").ini()


def test_the_build_context_holds_the_dockerfile_settings_and_only_the_web_root(tmp_path):
    members = {**INSTALL, "__MACOSX/redcap/._index.php": b"junk", "README.txt": b"outside the web root"}
    facts = inspect_zip(make_zip(tmp_path / "redcap15.2.0.zip", members, dirs=("redcap/",)))
    buffer = io.BytesIO()
    recipes.write_web_context(facts, buffer, base_image="php:8.2-apache")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        names = tar.getnames()
        assert names[:2] == ["Dockerfile", "redcap-drill-php.ini"]
        assert set(names[2:]) == {"redcap", *INSTALL}
        assert tar.extractfile("redcap/api/index.php").read() == INSTALL["redcap/api/index.php"]
        assert tar.getmember("redcap").isdir()
        assert b"FROM php:8.2-apache" in tar.extractfile("Dockerfile").read()


def test_the_image_tag_names_the_version_and_the_zip_it_came_from(tmp_path):
    facts = inspect_zip(make_zip(tmp_path / "redcap15.2.0.zip", INSTALL))
    assert recipes.web_image_tag(facts) == f"redcap-drill/redcap:15.2.0-{facts.sha256[:12]}"


def test_config_files_go_in_with_owner_and_mode_set():
    with tarfile.open(fileobj=io.BytesIO(recipes.tar_of({"database.php": b"<?php"}, mode=0o640, gid=33))) as tar:
        member = tar.getmember("database.php")
        assert (member.mode, member.uid, member.gid, member.size) == (0o640, 0, 33, 5)


# --- the stand-in recipe (what the Docker tests run instead of REDCap) ------------------------------


def test_the_standin_web_context_ships_the_install_contract_and_the_harness_source():
    buffer = io.BytesIO()
    standin.write_web_context(buffer, base_image="standin-base")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        names = set(tar.getnames())
        sql = f"rootfs/var/www/html/redcap_v{standin.STANDIN_VERSION}/Resources/sql"
        assert {f"{sql}/install.sql", f"{sql}/install_data.sql", "rootfs/usr/local/bin/standin-web"} <= names
        assert "rootfs/opt/redcap-drill/harness/dockerenv/standin.py" in names
        assert not any("__pycache__" in name for name in names)
        assert tar.getmember("rootfs/usr/local/bin/standin-web").mode == 0o755
        dockerfile = tar.extractfile("Dockerfile").read().decode()
    assert dockerfile.startswith("FROM standin-base\n")
    assert f'{labels.REDCAP_VERSION}="{standin.STANDIN_VERSION}"' in dockerfile


def test_the_standin_schema_uses_redcaps_table_and_column_names():
    for table in ("redcap_config", "redcap_history_version", "redcap_user_information", "redcap_auth"):
        assert f"CREATE TABLE {table} (" in standin.SCHEMA
    assert "api_token varchar(64)" in standin.SCHEMA
    compile(standin.WEB_ENTRYPOINT, "standin-web", "exec")  # the generated script is valid Python
