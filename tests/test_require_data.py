"""``--require-data``: a backup with no records fails the drill instead of passing with a warning.

REDCap's most common silent backup failure is a job that exports the design
only. Without the flag such a backup passes, the records stage does not apply
and the report warns (DRILL-METADATA-ONLY); with it, the records stage fails
and says what to do. Drills restore into the embedded sandbox over real HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness import targets
from harness.drill import DrillOptions, drill
from tests.samples import ROOT, newest_sample

# The XSD is CDISC's and not in this repository: without ../shared or the user cache these skip.
pytestmark = pytest.mark.odm_schema




@pytest.fixture(scope="module")
def target():
    with targets.get("sandbox") as t:
        yield t


def test_without_it_a_metadata_only_backup_passes_with_a_warning(target):
    result = drill(newest_sample("DrillMetadataOnly"), target)

    assert result.passed and result.stage("records").status == "not_applicable"
    [finding] = [f for f in result.findings if f.code == "DRILL-METADATA-ONLY"]
    assert finding.severity == "warning" and "--require-data" in finding.message


def test_with_it_a_metadata_only_backup_fails_at_records_and_says_what_to_do(target):
    result = drill(newest_sample("DrillMetadataOnly"), target, DrillOptions(require_data=True))

    assert not result.passed and result.failed_stage.name == "records"
    reason = result.stage("records").reason
    assert "no records (no SubjectData)" in reason
    assert "switch it to a full project XML export" in reason and "drop --require-data" in reason
    # The design still restored and came back: only the missing data fails.
    assert result.stage("restore").status == result.stage("structure").status == "passed"
    assert [f.severity for f in result.findings if f.code == "DRILL-METADATA-ONLY"] == ["error"]


def test_with_it_a_backup_with_records_still_passes(target):
    result = drill(newest_sample("DrillClassicAllTypes"), target, DrillOptions(require_data=True))
    assert result.passed and result.stage("records").status == "passed"


def test_run_require_data_fails_the_run_and_the_records_test(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--report-dir", str(tmp_path), "--project", "Drill Metadata Only",
         "--require-data", "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ), timeout=300)

    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "records FAILED: the archive holds no records (no SubjectData)" in done.stdout
    data = json.loads((tmp_path / "latest" / "summary.json").read_text())
    assert data["run"]["require_data"] is True
    assert data["projects"][0]["failed_stage"] == "records"
