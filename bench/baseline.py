"""The yardstick every benchmark here states its figures against.

``xmllint --stream --noout FILE`` reads the same file with libxml2's streaming
reader and nothing else: no Python, no model, no schema. A ratio against it
says how much our work costs over merely reading the bytes as XML, on this
machine, today — so figures from different machines stay comparable.
xmllint comes from Debian's ``libxml2-utils`` (``apt-get install libxml2-utils``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


def xmllint_stream_seconds(path: Path, *, repeat: int = 2) -> float | None:
    """Best-of-``repeat`` wall time of ``xmllint --stream --noout`` on ``path``; None without xmllint."""
    if shutil.which("xmllint") is None:
        return None
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(["xmllint", "--stream", "--noout", "--huge", str(path)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def ratio_lines(path: Path, timings: dict[str, float]) -> list[str]:
    """``label  N.NN s = R.R× xmllint --stream`` for each timing, after the baseline itself."""
    base = xmllint_stream_seconds(path)
    if base is None:
        return ["xmllint   not found: install Debian's libxml2-utils for the ratio against xmllint --stream"]
    lines = [f"xmllint   --stream --noout on the same file: {base:.2f} s (the yardstick)"]
    lines += [f"  {label:22} {seconds:7.2f} s = {seconds / base:5.1f}× xmllint --stream"
              for label, seconds in timings.items()]
    return lines
