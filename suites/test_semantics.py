"""Semantics: the backup is a consistent REDCap project and holds no known restore blocker.

Known blockers (for example dynamic SQL fields in REDCap 14.7+ exports) are
found here, before anything is restored.
"""

import pytest

from harness.pytest_plugin import check_stage

pytestmark = pytest.mark.semantics


def test_semantics(drill_result):
    check_stage(drill_result, "semantics")
