"""Schema: the backup is valid CDISC ODM 1.3.1, checked against the official XSD."""

import pytest

from harness.pytest_plugin import check_stage

pytestmark = pytest.mark.schema


def test_schema(drill_result):
    check_stage(drill_result, "schema")
