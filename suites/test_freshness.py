"""Freshness: the newest backup is younger than the recovery point objective (--max-age).

Skipped (does not apply) when no --max-age is given; the age is still in the report.
"""

import pytest

from harness.pytest_plugin import check_stage

pytestmark = pytest.mark.freshness


def test_freshness(drill_result):
    check_stage(drill_result, "freshness")
