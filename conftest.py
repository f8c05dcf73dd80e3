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
