"""Records round trip: every record value in the backup comes back from the restored project.

Skipped (does not apply) for a metadata-only backup; the report flags that it holds no data.
"""

import pytest

from harness.pytest_plugin import check_stage

pytestmark = pytest.mark.records


def test_records(drill_result):
    check_stage(drill_result, "records")
