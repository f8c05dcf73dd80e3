"""DirectorySource lists every backup under a folder, keeps broken ones visible,
and picks each project's newest backup by its export time."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from archive_factory import gz, odm, write, zipped
from harness.archive import Archive, BrokenArchive
from harness.errors import SourceError, UsageError
from harness.sources import DirectorySource, Source, newest_per_project, parse_duration

NOW = datetime(2024, 6, 1, 12, 0, 0)


def day(d: int, hour: int = 9) -> datetime:
    return datetime(2024, 5, d, hour, 30)


@pytest.fixture
def backups(tmp_path):
    """3 projects x 3 versions in mixed formats and folders, plus header-less, broken and ignored files.

    The file times deliberately disagree with the export times, so only
    CreationDateTime can give the right answer.
    """
    root = tmp_path / "backups"
    alpha = lambda created: odm("Project.Alpha", "Alpha", created=created)  # noqa: E731
    write(root / "alpha/Alpha_2024-05-01_0930.REDCap.xml", alpha("2024-05-01T09:30:00"), mtime=day(31))
    write(root / "alpha/Alpha_2024-05-20_0930.REDCap.xml.gz", gz(alpha("2024-05-20T09:30:00")), mtime=day(30))
    write(
        root / "alpha/Alpha_2024-05-31_0930.REDCap.zip",
        zipped({"Alpha_2024-05-31_0930.REDCap.xml": alpha("2024-05-31T09:30:00")}),
        mtime=day(1),
    )
    beta = lambda created: odm("Project.Beta", "Beta", created=created, records=0)  # noqa: E731
    write(root / "beta/one.zip", zipped({"b.xml": beta("2024-04-01T08:00:00")}), mtime=day(5))
    # Two exports in the same second: the later file time decides.
    write(root / "beta/two.gz", gz(beta("2024-04-15T08:00:00")), mtime=day(6))
    write(root / "beta/three.xml", beta("2024-04-15T08:00:00"), mtime=day(7))
    gamma = lambda created: odm("Project.Gamma", "Gamma", created=created)  # noqa: E731
    write(root / "gamma_2024-05-10.xml", gamma("2024-05-10T10:00:00"), mtime=day(10))
    write(root / "gamma_2024-05-11.xml.gz", gz(gamma("2024-05-11T10:00:00")), mtime=day(11))
    write(root / "gamma_2024-05-12.xml", gamma("2024-05-12T10:00:00")[:-40], mtime=day(12))  # cut short
    # No header facts: keyed by file name, ordered by file time.
    bare = b"<ODM><Study><GlobalVariables/></Study><ClinicalData><SubjectData/></ClinicalData></ODM>"
    write(root / "delta_2024-05-01_0930.xml", bare, mtime=day(1))
    write(root / "delta_2024-05-02_0930.xml.gz", gz(bare), mtime=day(2))
    write(root / "photo.xml", b"\x89PNG\r\n\x1a\n" + bytes(64), mtime=day(3))
    # Never listed.
    write(root / ".hidden.xml", alpha("2024-05-31T09:30:00"))
    write(root / ".snapshots/old.xml", alpha("2024-05-31T09:30:00"))
    write(root / "notes.txt", b"not a backup")
    write(root / "alpha/Alpha_2024-05-01_0930.REDCap.xml.sha256", b"0" * 64)  # a stale sidecar, on purpose
    return root


def test_every_backup_is_listed_and_nothing_is_dropped(backups):
    entries = list(DirectorySource(backups, now=NOW).archives())
    names = [e.path.relative_to(backups).as_posix() for e in entries]
    assert names == sorted(names)
    assert len(names) == 12
    assert not any(n.startswith(".") or "/." in n or n.endswith((".txt", ".sha256")) for n in names)
    broken = {e.path.name: e for e in entries if not e.ok}
    assert set(broken) == {"Alpha_2024-05-01_0930.REDCap.xml", "gamma_2024-05-12.xml", "photo.xml"}
    assert "sidecar is stale" in broken["Alpha_2024-05-01_0930.REDCap.xml"].error
    assert broken["gamma_2024-05-12.xml"].error.startswith("truncated XML")
    assert "not XML" in broken["photo.xml"].error


def test_the_newest_backup_per_project_wins_by_export_time(backups):
    latest = {e.project_key: e for e in DirectorySource(backups, now=NOW).latest()}
    assert {key: e.path.name for key, e in latest.items()} == {
        "Project.Alpha": "Alpha_2024-05-31_0930.REDCap.zip",
        "Project.Beta": "three.xml",
        "Project.Gamma": "gamma_2024-05-12.xml",
        "delta": "delta_2024-05-02_0930.xml.gz",
        "photo": "photo.xml",
    }
    alpha = latest["Project.Alpha"]
    assert isinstance(alpha, Archive)
    assert (alpha.format, alpha.created, alpha.study_name, alpha.subject_count) == ("zip", day(31), "Alpha", 2)
    assert latest["Project.Beta"].metadata_only
    assert latest["delta"].created is None and latest["delta"].taken == day(2)


def test_a_broken_newest_backup_is_reported_not_hidden_by_an_older_good_one(backups):
    gamma = {e.project_key: e for e in DirectorySource(backups, now=NOW).latest()}["Project.Gamma"]
    assert isinstance(gamma, BrokenArchive)
    # The header was still readable, so the report can name the project and when it was taken.
    assert gamma.study_oid == "Project.Gamma" and gamma.created == datetime(2024, 5, 12, 10, 0)
    assert gamma.sha256 == hashlib.sha256(gamma.path.read_bytes()).hexdigest()


def test_age_and_staleness_are_measured_from_the_export_time(backups):
    latest = {e.project_key: e for e in DirectorySource(backups, now=NOW, max_age=parse_duration("36h")).latest()}
    assert latest["Project.Alpha"].age == timedelta(hours=26, minutes=30)
    assert not latest["Project.Alpha"].stale
    assert latest["Project.Beta"].stale
    assert latest["Project.Gamma"].stale  # broken entries carry age and staleness too


def test_nothing_is_stale_without_a_max_age(backups):
    assert not any(e.stale for e in DirectorySource(backups, now=NOW).archives())


def test_an_aware_now_is_taken_as_local_time(backups):
    aware = NOW.astimezone(timezone.utc)
    source = DirectorySource(backups, now=aware)
    assert source.now == NOW


def test_a_verified_sidecar_is_reported(tmp_path):
    path = write(tmp_path / "a.xml.gz", gz(odm()))
    (tmp_path / "a.xml.gz.sha256").write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  a.xml.gz\n")
    (entry,) = DirectorySource(tmp_path, now=NOW).archives()
    assert entry.ok and entry.sidecar == "verified"


def test_a_doctype_file_is_listed_as_broken(tmp_path):
    write(tmp_path / "x.xml", b'<?xml version="1.0"?><!DOCTYPE ODM [<!ENTITY e "x">]><ODM/>')
    (entry,) = DirectorySource(tmp_path, now=NOW).archives()
    assert not entry.ok and "DOCTYPE declarations are not allowed" in entry.error


def test_an_empty_file_is_listed_as_broken(tmp_path):
    write(tmp_path / "x.xml", b"")
    (entry,) = DirectorySource(tmp_path, now=NOW).archives()
    assert not entry.ok and "is empty" in entry.error and entry.project_key == "x"


def test_a_single_file_can_be_the_root(tmp_path):
    path = write(tmp_path / "a.xml", odm())
    assert [e.path for e in DirectorySource(path, now=NOW).archives()] == [path]


def test_a_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist; check the path"):
        list(DirectorySource(tmp_path / "nope").archives())


def test_a_folder_without_backups_is_a_source_error(tmp_path):
    write(tmp_path / "readme.txt", b"hi")
    with pytest.raises(SourceError, match="no REDCap backups .* found under .*backup job"):
        DirectorySource(tmp_path).latest()


def test_a_new_kind_of_store_only_has_to_list_its_archives(backups):
    entries = list(DirectorySource(backups, now=NOW).archives())

    class ListSource(Source):
        def archives(self):
            return iter(entries)

    assert ListSource().latest() == newest_per_project(reversed(entries)) == DirectorySource(backups, now=NOW).latest()


# --- --max-age -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("36h", timedelta(hours=36)),
        ("7d", timedelta(days=7)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations_are_a_number_and_a_unit(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "1.5d", "-1d", "7 days", "1y"])
def test_other_durations_are_a_usage_error(text):
    with pytest.raises(UsageError, match="use a whole number and one unit.*36h, 7d, 90m, 2w"):
        parse_duration(text)
