"""The fixture generator, the committed sample backup store and the canary.

A generated project is a specification of what the drill must handle: every
REDCap field type, every common validation, values that fit them, and a
model that equals what reading the generated file gives back.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest

from fixtures import make_samples
from fixtures.generate import PNG_1X1, GeneratorConfig, build, generate, generate_file
from harness.cli import main
from harness.errors import UsageError
from harness.odm.model import FIELD_TYPES, ProjectMetadata, Record
from harness.odm.reader import OdmDocument
from harness.odm.writer import natural_key

FIXTURES = Path(make_samples.__file__).resolve().parent

FULL = GeneratorConfig(seed=5, records=12, forms=5, fields_per_form=12, longitudinal=True, arms=2, events=3,
                       repeating_forms=True, repeating_events=True, dags=3, surveys=True, missing_codes=True,
                       files=True)
CONFIGS = {
    "classic": GeneratorConfig(),
    "full-longitudinal": FULL,
    "classic-repeating-dags-surveys-files": GeneratorConfig(seed=2, records=15, repeating_forms=True, dags=2,
                                                            surveys=True, files=True, missing_codes=True),
    "metadata-only": GeneratorConfig(metadata_only=True),
}


def written(config: GeneratorConfig) -> bytes:
    buf = io.BytesIO()
    generate(buf, config)
    return buf.getvalue()


def read(xml: bytes) -> tuple[ProjectMetadata, list[Record], OdmDocument]:
    doc = OdmDocument(io.BytesIO(xml))
    meta = doc.metadata
    return meta, list(doc.records()), doc


# -- the generator ----------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_same_seed_gives_the_same_bytes(name):
    assert written(CONFIGS[name]) == written(CONFIGS[name])


def test_another_seed_gives_other_data_but_the_same_project():
    a, b = build(GeneratorConfig(seed=1)), build(GeneratorConfig(seed=2))
    assert (a.meta.fields, a.meta.forms, a.meta.events) == (b.meta.fields, b.meta.forms, b.meta.events)
    assert a.meta.settings["ProjectNotes"].endswith("(seed 1)")
    assert list(a.records()) != list(b.records())


@pytest.mark.parametrize("name", CONFIGS)
def test_the_model_equals_what_reading_the_file_gives_back(name):
    project = build(CONFIGS[name])
    meta, records, doc = read(written(CONFIGS[name]))
    assert meta == project.meta
    assert records == list(project.records())
    assert doc.has_clinical_data is not CONFIGS[name].metadata_only


def test_record_n_does_not_depend_on_how_many_are_made():
    few, many = build(GeneratorConfig(seed=3, records=4)), build(GeneratorConfig(seed=3, records=9))
    assert list(few.records()) == list(many.records())[:4]


def test_records_come_lazily_in_natural_order():
    records = build(GeneratorConfig(records=12)).records()
    assert iter(records) is records  # a generator, not a list
    ids = [r.record_id for r in records]
    assert ids == sorted(ids, key=natural_key) and len(ids) == 12


def test_every_field_type_and_common_validation_is_present():
    meta = build(GeneratorConfig()).meta
    types = {f.field_type for f in meta.fields}
    assert types == set(FIELD_TYPES) - {"sql"}  # sql fields cannot be restored from a 15.x export
    validations = {f.validation for f in meta.fields}
    assert {"date_ymd", "date_mdy", "date_dmy", "datetime_ymd", "datetime_mdy", "datetime_dmy",
            "datetime_seconds_ymd", "time", "time_hh_mm_ss", "time_mm_ss", "int", "float", "number_1dp",
            "number_2dp", "number_comma_decimal", "email", "phone", "zipcode", "alpha_only",
            "postalcode_canada", "signature", "number"} <= validations
    by_name = meta.field_map
    assert by_name["symptoms"].field_type == "checkbox" and "A-1" in {c.code for c in by_name["symptoms"].choices}
    assert by_name["pain"].slider_labels == "None | Moderate | Worst"
    assert by_name["logo"].attachment.content_b64 and by_name["logo"].inline_image == "1"
    assert by_name["bmi"].calculation and by_name["score_total"].calculation == "[score_a]+[score_b]"
    assert by_name["sleep"].matrix_group == by_name["mood"].matrix_group == "wellbeing"
    assert by_name["consent_note"].branching_logic and by_name["consent"].required
    assert by_name["dob"].identifier and by_name["dob"].range_min and by_name["dob"].field_note
    assert "@HIDDEN" in by_name["hidden_code"].field_annotation
    assert sum(bool(f.section_header) for f in meta.fields) > len(meta.forms)
    assert {f.name for f in meta.fields if f.is_form_status} == {f"{form.name}_complete" for form in meta.forms}


def test_longitudinal_layout_arms_events_and_repeating_setup():
    meta = build(FULL).meta
    assert len(meta.arms) == 2 and len(meta.events) == 6
    assert meta.events[0].name == "Baseline (Arm 1: Control)"
    assert meta.repeating_events == ("visit_2_arm_1", "visit_2_arm_2")
    assert {(r.event, r.form, r.custom_label) for r in meta.repeating_forms} == {
        ("baseline_arm_1", "visit_log", "[log_date]"), ("visit_1_arm_1", "visit_log", "[log_date]"),
        ("baseline_arm_2", "visit_log", "[log_date]"), ("visit_1_arm_2", "visit_log", "[log_date]")}
    assert [label for label, _ in meta.dags] == ["Site A", "Site B", "Site C"]
    assert meta.surveys == ("measurements", "visit_log")
    assert meta.settings["SurveysEnabled"] == "1" and meta.missing_data_codes
    assert len(meta.fields_of("form_4")) == 12


def test_fields_per_form_pads_every_instrument():
    meta = build(GeneratorConfig(forms=4, fields_per_form=25)).meta
    assert [len(meta.fields_of(f.name)) for f in meta.forms] == [25, 29, 25, 25]


_VALID = {
    "date_ymd": r"\d{4}-\d\d-\d\d", "date_mdy": r"\d{4}-\d\d-\d\d", "date_dmy": r"\d{4}-\d\d-\d\d",
    "datetime_ymd": r"\d{4}-\d\d-\d\dT\d\d:\d\d", "datetime_mdy": r"\d{4}-\d\d-\d\dT\d\d:\d\d",
    "datetime_dmy": r"\d{4}-\d\d-\d\dT\d\d:\d\d", "datetime_seconds_ymd": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d",
    "time": r"([01]\d|2[0-3]):[0-5]\d", "time_hh_mm_ss": r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d",
    "time_mm_ss": r"[0-5]\d:[0-5]\d", "int": r"-?\d+", "float": r"-?\d+(\.\d+)?",
    "number_1dp": r"-?\d+\.\d", "number_2dp": r"-?\d+\.\d\d", "number_comma_decimal": r"-?\d+(,\d+)?",
    "number_1dp_comma_decimal": r"-?\d+,\d", "email": r"[^@\s]+@example\.invalid",
    "phone": r"\(\d{3}\) \d{3}-\d{4}", "zipcode": r"\d{5}(-\d{4})?", "alpha_only": r"[A-Za-z]+",
    "postalcode_canada": r"[A-Z]\d[A-Z] \d[A-Z]\d",
}


def test_values_fit_their_validation_code_lists_and_calcs():
    project = build(FULL)
    meta = project.meta
    missing = {c.code for c in meta.missing_data_codes}
    checked = 0
    for record in project.records():
        for row in record.rows:
            values = row.values
            for item, value in values.items():
                f = meta.item_oids.get(item)
                if f is None:
                    assert item.endswith("_timestamp")
                    assert value == "[not completed]" or datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
                    continue
                checked += 1
                if value in missing and f.field_type == "text":
                    continue
                if f.field_type in ("radio", "select"):
                    assert value in {c.code for c in f.choices}, item
                elif f.field_type in ("checkbox", "yesno", "truefalse"):
                    assert value in ("0", "1"), item
                elif f.field_type == "slider":
                    assert 0 <= int(value) <= 100
                elif f.validation in _VALID:
                    assert re.fullmatch(_VALID[f.validation], value), (item, value)
                    if f.validation.startswith("date_"):
                        date.fromisoformat(value)
                    if f.validation == "int" and f.range_max:
                        assert int(f.range_min) <= int(value) <= int(f.range_max)
            if "bmi" in values:
                h, w = float(values["height"]), float(values["weight"])
                assert float(values["bmi"]) == round(w / (h * h), 1)
            if "score_total" in values:
                assert int(values["score_total"]) == int(values["score_a"]) + int(values["score_b"])
            if values.get("consent") == "0":
                assert "consent_note" not in values  # hidden by branching logic, so never filled
            for item, file in row.files.items():
                assert file.content and file.doc_name and file.mime_type
                if meta.field_map[item].validation == "signature":
                    assert file.content == PNG_1X1
    assert checked > 500


def test_nothing_looks_like_real_people():
    xml = written(FULL).decode()
    emails = set(re.findall(r"[\w.+-]+@[\w.-]+", xml))
    assert emails and all(e.endswith("@example.invalid") for e in emails)
    from fixtures.generate import FIRST_NAMES, LAST_NAMES

    for record in build(FULL).records():
        values = {k: v for row in record.rows for k, v in row.values.items()}
        assert values["first_name"] in FIRST_NAMES and values["last_name"] in LAST_NAMES


def test_generated_archives_validate_with_no_errors_or_warnings():
    from harness.errors import SchemaError
    from harness.schema.validate import validate

    for name, config in CONFIGS.items():
        try:
            result = validate(io.BytesIO(written(config)), name=name)
        except SchemaError as exc:
            pytest.skip(f"the ODM XSD is not available: {exc}")
        assert result.counts.get("error", 0) == 0 and result.counts.get("warning", 0) == 0, \
            [f.to_dict() for f in result.findings if f.severity in ("error", "warning")]


def test_bad_options_are_usage_errors_that_say_what_to_do():
    with pytest.raises(UsageError, match="--repeating-events needs --longitudinal"):
        build(GeneratorConfig(repeating_events=True))
    with pytest.raises(UsageError, match="--forms must be at least 2"):
        build(GeneratorConfig(forms=1))
    with pytest.raises(UsageError, match="--now must look like"):
        build(GeneratorConfig(now="yesterday"))


# -- files and the command line -------------------------------------------------------
def test_gzip_and_zip_outputs_are_stable_and_hold_the_same_xml(tmp_path):
    config = GeneratorConfig(records=3)
    xml = written(config)
    generate_file(tmp_path / "a.xml.gz", config)
    generate_file(tmp_path / "b.xml.gz", config)
    generate_file(tmp_path / "a.zip", config)
    assert (tmp_path / "a.xml.gz").read_bytes() == (tmp_path / "b.xml.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.xml.gz").read_bytes()) == xml
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.namelist() == ["a.xml"] and zf.read("a.xml") == xml


def test_cli_generates_a_file(tmp_path, capsys):
    out = tmp_path / "p.xml.gz"
    code = main(["fixtures", "generate", "--out", str(out), "--seed", "5", "--records", "12", "--forms", "5",
                 "--fields-per-form", "12", "--longitudinal", "--arms", "2", "--events", "3",
                 "--repeating-forms", "--repeating-events", "--dags", "3", "--surveys", "--missing-codes",
                 "--files"])
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    assert gzip.decompress(out.read_bytes()) == written(FULL)


def test_cli_refuses_bad_options_with_exit_code_2(tmp_path, capsys):
    assert main(["fixtures", "generate", "--out", str(tmp_path / "x.xml"), "--arms", "2"]) == 2
    assert "--arms needs --longitudinal" in capsys.readouterr().err
    assert main(["fixtures", "generate", "--out", str(tmp_path / "missing" / "x.xml")]) == 2


# -- the sample backup store ----------------------------------------------------------------
def committed_files() -> list[Path]:
    return sorted(p for folder in ("samples", "canary") for p in (FIXTURES / folder).rglob("*") if p.is_file())


def test_committed_samples_equal_a_fresh_run(tmp_path):
    fresh = make_samples.make_samples(tmp_path)
    rel = sorted(str(p.relative_to(tmp_path)) for p in fresh)
    assert rel == [str(p.relative_to(FIXTURES)) for p in committed_files()]
    for path in fresh:
        committed = FIXTURES / path.relative_to(tmp_path)
        if path.name.endswith(".sha256"):
            # The hash covers compressed bytes; it must vouch for the committed file.
            digest, name = committed.read_text().split()
            assert name == committed.name.removesuffix(".sha256")
            assert hashlib.sha256(committed.with_name(name).read_bytes()).hexdigest() == digest
        elif path.suffix in (".gz", ".zip"):
            assert make_samples.xml_of(path) == make_samples.xml_of(committed), committed
        else:
            assert path.read_bytes() == committed.read_bytes(), committed


def test_samples_stay_small():
    assert sum(p.stat().st_size for p in committed_files()) < 1_500_000


def _samples_by_project() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for p in sorted((FIXTURES / "samples").rglob("*_*_*.REDCap.*")):
        if not p.name.endswith(".sha256"):
            out.setdefault(p.name.split("_")[0], []).append(p)
    return out


def test_the_store_looks_like_a_nightly_backup_folder():
    projects = _samples_by_project()
    assert set(projects) == {"DrillClassicAllTypes", "DrillLongitudinalRep", "DrillDAGsSurveysFile",
                             "DrillMetadataOnly"}
    formats = set()
    for name, paths in projects.items():
        assert 2 <= len(paths) <= 3
        for p in paths:
            assert re.fullmatch(rf"{name}_\d{{4}}-\d\d-\d\d_\d{{4}}\.REDCap\.(xml|xml\.gz|zip)", p.name)
            assert p.parent.name == p.name.split("_")[1]  # dated sub-folders
            formats.add(p.name.split(".REDCap.")[1])
        # Older backups are older exports with less in them.
        metas = []
        for p in paths:
            meta, records, _ = read(make_samples.xml_of(p))
            metas.append((meta.header.creation_datetime, len(records), len(meta.fields)))
        assert [m[0] for m in metas] == sorted({m[0] for m in metas})
        assert metas[0][1:] < metas[-1][1:]
    assert formats == {"xml", "xml.gz", "zip"}
    assert len(list((FIXTURES / "samples").rglob("*.sha256"))) >= 3


def test_directory_source_picks_the_newest_backup_of_each_project():
    from harness.sources.directory import DirectorySource

    latest = sorted(a.path.name for a in DirectorySource(FIXTURES / "samples", now=datetime(2025, 5, 3, 12)).latest())
    assert latest == sorted(max(paths).name for paths in _samples_by_project().values())


def test_the_canary_references_a_field_the_metadata_does_not_define():
    (archive,) = (FIXTURES / "canary").glob("*.REDCap.xml")
    readme = (FIXTURES / "canary" / "README.md").read_text()
    assert make_samples.CANARY_FIELD in readme and archive.name in readme
    meta, records, _ = read(archive.read_bytes())
    items = {item for r in records for row in r.rows for item in row.values}
    assert items - set(meta.item_oids) == {make_samples.CANARY_FIELD}
