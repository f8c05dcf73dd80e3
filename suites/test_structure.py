"""Structure round trip: the restored project's design (forms, fields, events, settings) matches the backup.

Differences REDCap itself introduces on every round trip are excused by name
(see the report's "known REDCap differences"); anything else fails.
"""

import pytest

from harness.pytest_plugin import check_stage

pytestmark = pytest.mark.structure


def test_structure(drill_result):
    check_stage(drill_result, "structure")
