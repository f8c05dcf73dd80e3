"""Restore: REDCap creates a project from the backup, exports it again, within the recovery time objective."""

import pytest

from harness.pytest_plugin import check_stage

pytestmark = pytest.mark.restore


def test_restore(drill_result):
    check_stage(drill_result, "restore")


@pytest.mark.export
def test_export(drill_result):
    check_stage(drill_result, "export")


@pytest.mark.rto
def test_rto(drill_result):
    """Skipped (does not apply) without --max-rto; the measured RTO is always in the report."""
    check_stage(drill_result, "rto")
