"""Integrity: the backup file opens, is complete (ends with </ODM>) and matches its .sha256 sidecar."""

import pytest

from harness.pytest_plugin import check_stage

pytestmark = pytest.mark.integrity


def test_integrity(drill_result):
    check_stage(drill_result, "integrity")
