"""Repository-level pytest configuration for our own tests.

Points the harness at the shared copy of the ODM XSD when it sits beside the
checkout, so tests and CI never download it and never find it in the repo.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent / "shared"

if "REDCAP_DRILL_ODM_SCHEMA" not in os.environ and (SHARED / "schemas" / "odm_schema").is_dir():
    os.environ["REDCAP_DRILL_ODM_SCHEMA"] = str(SHARED / "schemas" / "odm_schema")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``odm_schema`` need CDISC's XSD: without it they skip and say how to get it."""
    marked = [item for item in items if item.get_closest_marker("odm_schema")]
    if not marked:
        return
    import pytest

    from harness.errors import SchemaError
    from harness.schema.locate import locate_schema

    try:
        locate_schema()
    except SchemaError:
        skip = pytest.mark.skip(
            reason=f"CDISC's ODM 1.3.1 XSD is not available: put the shared folder beside the checkout "
            f"({SHARED / 'schemas' / 'odm_schema'}) or run `redcap-drill schema install`"
        )
        for item in marked:
            item.add_marker(skip)
