"""Where the committed sample backup store and canary live, and how tests pick from them."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "fixtures" / "samples"
CANARY = next((ROOT / "fixtures" / "canary").glob("*.xml"), None)


def newest_sample(name: str) -> Path:
    """The newest archive of sample project ``name`` (file prefix), as a nightly store would offer it."""
    found = sorted(p for p in SAMPLES.rglob(f"{name}_*") if not p.name.endswith(".sha256"))
    if not found:
        pytest.skip(f"sample {name} not found under {SAMPLES}")
    return found[-1]
