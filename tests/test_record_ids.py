"""Record IDs can be PHI (an MRN, a name-derived code): reports show them as pseudonyms when asked.

``--record-ids auto`` (the default) masks them when the project's record ID
field is marked identifier, ``mask`` always, ``show`` never; ``--show-values``
does not show them. A masked ID is a pseudonym such as ``R-3f9a1c``: the same
for one record everywhere in one report (validation findings, differences,
record lists, restore errors), different in the next report.

The archive here is generated: three records keyed ``MRN-887766``,
``MRN-554433``, ``MRN-221100`` (strings no other number in a report can
contain), with a stale calc value, an invalid ZIP code and an unknown
``redcap:`` attribute, all in record ``MRN-887766``. Drills restore it into
the embedded sandbox over real HTTP.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from html import unescape
from pathlib import Path

import pytest

from fixtures.generate import GeneratorConfig, build
from harness import targets
from harness.cli import main
from harness.compare.mask import RecordIdMasker
from harness.drill import DrillOptions, DrillResult, drill
from harness.odm.writer import write_project
from harness.reports import RunInfo, build as build_report, write_run

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema


pytest_plugins = ["pytester"]

SUITES = Path(__file__).resolve().parents[1] / "suites"
IDS = ("MRN-887766", "MRN-554433", "MRN-221100")
FIRST = IDS[0]
PSEUDONYM = re.compile(r"^R-[0-9a-f]{6,}$")


def mrn_archive(path: Path, *, identifier: bool = True, edit=lambda text: text) -> Path:
    """Three records keyed by MRN; the record ID field is marked identifier unless told otherwise."""
    project = build(GeneratorConfig(records=3, seed=7, title="MRN Keyed Study"))
    meta = project.meta
    meta = replace(meta, fields=tuple(replace(f, identifier=identifier) if f.name == meta.record_id_field else f
                                      for f in meta.fields))
    records = [replace(r, record_id=rid) for r, rid in zip(project.records(), IDS)]
    out = io.BytesIO()
    write_project(out, meta, records, options=project.options, now=project.config.now,
                  version=project.config.version)
    path.write_text(edit(out.getvalue().decode("utf-8")), encoding="utf-8")
    return path


def with_findings(text: str) -> str:
    """Record MRN-887766 gets a stale BMI (a record difference), a bad ZIP code (a semantic
    finding) and an unknown redcap: attribute on its SubjectData (a finding with an XML path)."""
    edits = (
        (r'<ItemData ItemOID="bmi" Value="[^"]*"/>', '<ItemData ItemOID="bmi" Value="99.9"/>'),
        (r'<ItemData ItemOID="zipcode" Value="[^"]*"/>', '<ItemData ItemOID="zipcode" Value="8800"/>'),
        (f'<SubjectData SubjectKey="{FIRST}" ', f'<SubjectData SubjectKey="{FIRST}" redcap:Shoe="brogue" '),
    )
    for pattern, new in edits:
        text, n = re.subn(pattern, new, text, count=1)
        assert n == 1, pattern
    return text


@pytest.fixture(scope="module")
def target():
    with targets.get("sandbox") as t:
        yield t


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mrn")
    return {"identifier": mrn_archive(folder / "identifier.xml", edit=with_findings),
            "plain": mrn_archive(folder / "plain.xml", identifier=False, edit=with_findings)}


@pytest.fixture(scope="module")
def masked(target, archives) -> DrillResult:
    return drill(archives["identifier"], target)


def about(result: DrillResult, code: str):
    found = [f for f in result.findings if f.code == code]
    assert found, [f.to_dict() for f in result.findings]
    return found[0]


def bmi_difference(result: DrillResult):
    found = [d for d in result.differences if d.stage == "records" and d.location.endswith("field bmi")]
    assert found, [d.to_dict() for d in result.differences]
    return found[0]


def report_files(result: DrillResult, folder: Path, **run) -> tuple[str, str]:
    """report.html (entities decoded, so a quote is a quote) and summary.json, as written."""
    info = RunInfo(run_id="ids", started=result.started, finished=result.finished, host="h", user="u", **run)
    written = write_run(build_report([result], info), folder)
    return unescape(written.html.read_text(encoding="utf-8")), written.summary.read_text(encoding="utf-8")


def run_fact(html: str, label: str) -> str:
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>([^<]*)</dd>", html)
    assert found, f"no run fact {label!r}"
    return found[1]


# -- auto, with the record ID field marked identifier ------------------------------------------
def test_an_identifier_record_id_appears_nowhere_in_the_report(masked, tmp_path):
    html, summary = report_files(masked, tmp_path)

    for rid in IDS:
        assert rid not in html and rid not in summary
        assert rid not in json.dumps(masked.to_dict())
    assert run_fact(html, "Record IDs") == "masked (the record ID field 'record_id' is marked identifier)"
    assert json.loads(summary)["projects"][0]["record_ids"].startswith("masked")


def test_one_record_has_one_pseudonym_across_findings_and_differences(masked):
    difference = bmi_difference(masked)
    semantic = about(masked, "SEM-VALIDATION-TYPE")  # located by record, event and field
    xml = about(masked, "REDCAP-UNKNOWN-ATTRIBUTE")  # located by its XML path

    pseudonym = difference.record
    assert PSEUDONYM.match(pseudonym)
    assert semantic.record == xml.record == pseudonym
    assert difference.location == f"record {pseudonym} › field bmi"
    assert semantic.path.startswith(f"record {pseudonym}, ")
    assert f'SubjectData[@SubjectKey="{pseudonym}"]' in xml.path


def test_the_drill_still_judges_by_the_real_records(masked):
    # Masking happens on the way out: the comparison itself paired the real IDs.
    assert masked.passed, masked.failed_stage
    assert masked.fidelity.records_compared > 0
    assert masked.stage("records").reason.startswith(f"{masked.fidelity.records_compared:,} values in 3 records")


def test_pseudonyms_cannot_be_correlated_across_reports(target, archives, masked):
    again = drill(archives["identifier"], target)
    assert bmi_difference(again).record != bmi_difference(masked).record


def test_show_values_does_not_show_record_ids(target, archives):
    result = drill(archives["identifier"], target, DrillOptions(show_values=True))
    assert bmi_difference(result).expected == "99.9"  # values shown…
    assert FIRST not in json.dumps(result.to_dict())  # …the record ID still not


def test_a_refused_restore_names_the_record_by_its_pseudonym(target, tmp_path):
    # REDCap refuses an impossible date with "record","field","value","message": both record and value masked.
    archive = mrn_archive(tmp_path / "bad-date.xml", edit=lambda text: re.sub(
        r'<ItemData ItemOID="dob" Value="[^"]*"/>', '<ItemData ItemOID="dob" Value="1986-13-45"/>', text, count=1))
    result = drill(archive, target)

    restore = result.stage("restore")
    assert restore.status == "failed"
    pseudonym = about(result, "SEM-VALIDATION-TYPE").record
    assert f'"{pseudonym}","dob","•••","Invalid date format.' in restore.reason
    assert FIRST not in restore.reason and "1986-13-45" not in restore.reason


# -- show, and auto without the identifier flag ---------------------------------------------------
def test_show_shows_record_ids_and_says_so(target, archives, tmp_path):
    result = drill(archives["identifier"], target, DrillOptions(record_ids="show"))
    html, _ = report_files(result, tmp_path, record_ids="show")

    assert bmi_difference(result).location == f"record {FIRST} › field bmi"
    assert about(result, "SEM-VALIDATION-TYPE").record == FIRST
    assert f'SubjectData[@SubjectKey="{FIRST}"]' in about(result, "REDCAP-UNKNOWN-ATTRIBUTE").path
    assert FIRST in html and run_fact(html, "Record IDs") == "shown (--record-ids show)"


def test_auto_shows_record_ids_when_the_field_is_not_marked_identifier(target, archives):
    result = drill(archives["plain"], target)
    assert bmi_difference(result).record == FIRST
    assert result.record_ids.startswith("shown (the record ID field 'record_id' is not marked identifier")


def test_mask_masks_record_ids_the_field_does_not_flag(target, archives):
    result = drill(archives["plain"], target, DrillOptions(record_ids="mask"))
    assert PSEUDONYM.match(bmi_difference(result).record)
    assert result.record_ids == "masked (--record-ids mask)"
    assert FIRST not in json.dumps(result.to_dict())


# -- the pytest plugin ------------------------------------------------------------------------------
def test_the_suites_take_record_ids_and_mask_every_file_they_write(pytester, archives, tmp_path):
    result = pytester.runpytest_subprocess(str(SUITES), "-p", "no:cacheprovider", "--archives",
                                           str(archives["plain"]), "--record-ids", "mask",
                                           "--report-dir", str(tmp_path))

    result.assert_outcomes(passed=7, skipped=2)  # no --max-age, no --max-rto
    data = json.loads((tmp_path / "latest" / "summary.json").read_text())
    assert data["run"]["record_ids"] == "mask"
    assert data["projects"][0]["record_ids"] == "masked (--record-ids mask)"
    for path in (tmp_path / "latest").iterdir():
        assert not any(rid in path.read_text(encoding="utf-8") for rid in IDS), path.name


# -- redcap-drill diff ----------------------------------------------------------------------------
def test_diff_masks_the_record_lists_and_locations_of_a_lost_record(tmp_path, capsys):
    from fixtures.mutations import iter_mutations

    a = mrn_archive(tmp_path / "a.xml")
    dropped = next(iter_mutations(a, ["record_dropped"]))
    b = dropped.save(tmp_path / "b.xml")
    lost = dropped.expected[0].location.removeprefix("record ")

    assert main(["diff", str(a), str(b), "--json"]) == 1
    text = capsys.readouterr().out
    data = json.loads(text)
    assert lost in IDS and not any(rid in text for rid in IDS)
    [pseudonym] = data["records"]["missing"]
    assert PSEUDONYM.match(pseudonym)
    assert data["records"]["differences"][0]["location"] == f"record {pseudonym}"
    assert data["record_ids"].startswith("masked (the record ID field")

    assert main(["diff", str(a), str(b), "--record-ids", "show"]) == 1
    assert f"record_missing   record {lost}" in capsys.readouterr().out


# -- the masker ------------------------------------------------------------------------------------
def test_a_pseudonym_is_stable_within_one_masker_and_grows_rather_than_collide():
    ids = RecordIdMasker(True, salt=b"fixed")
    first = {str(n): ids.id(str(n)) for n in range(20_000)}  # more IDs than six hex digits keep apart
    assert all(ids.id(rid) == name for rid, name in first.items())
    assert len(set(first.values())) == len(first)
    assert any(len(name) > len("R-123456") for name in first.values())
    assert RecordIdMasker(False).id("MRN-1") == "MRN-1"


def test_an_unknown_policy_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="auto, mask, show"):
        RecordIdMasker.for_policy("hide", None)
    with pytest.raises(ValueError, match="auto, mask, show"):
        DrillOptions(record_ids="hide")


def test_a_per_archive_compare_option_sets_the_policy_for_the_whole_drill(target, archives):
    # What the pytest_redcap_drill_compare_options hook hands the drill for one project.
    result = drill(archives["plain"], target, DrillOptions(compare_options=(("record_ids", "mask"),)))
    assert PSEUDONYM.match(bmi_difference(result).record)
    assert about(result, "SEM-VALIDATION-TYPE").record == bmi_difference(result).record
