"""``--max-age`` values: a whole number and a unit."""

from __future__ import annotations

import re
from datetime import timedelta

from harness.errors import UsageError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """``"36h"``, ``"7d"``, ``"90m"``, ``"2w"`` (and ``"30s"``) -> timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(
            f"invalid duration {text!r}: use a whole number and one unit, s, m, h, d or w (e.g. 36h, 7d, 90m, 2w)"
        )
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit.lower()]: int(amount)})
