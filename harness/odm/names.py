"""Names REDCap derives rather than stores: unique event/DAG names, study OIDs.

Both the sandbox (which must derive them as REDCap does on import) and the
comparator (which must predict them) use these, so they live in one place.
"""

from __future__ import annotations

import hashlib
import html
import re
import string
from collections.abc import Iterable

_NOT_NAME = re.compile(r"[^0-9a-zA-Z_ ]")
_NOT_TITLE = re.compile(r"[^a-zA-Z0-9 ]")


def _suffix(n: int) -> str:
    """1 -> "", 2 -> "b", 3 -> "c", … 27 -> "ba": REDCap's duplicate suffixes."""
    if n <= 1:
        return ""
    letters = string.ascii_lowercase
    n -= 1  # 1-based "b" == index 1
    out = ""
    while True:
        out = letters[n % 26] + out
        n //= 26
        if n == 0:
            return out


def _base_name(label: str) -> str:
    text = _NOT_NAME.sub("", html.unescape(label))
    text = text.replace(" ", "_")[:18].lower().strip("_")
    return text or hashlib.md5(label.encode()).hexdigest()[:10]


def unique_event_names(events: Iterable[tuple[str, int]]) -> list[str]:
    """``Project::getUniqueEventNames`` for (event name, arm number) in event order."""
    counts: dict[str, int] = {}
    out = []
    for name, arm in events:
        base = _base_name(name)
        counts[(base, arm)] = counts.get((base, arm), 0) + 1  # type: ignore[index]
        out.append(f"{base}{_suffix(counts[(base, arm)])}_arm_{arm}")  # type: ignore[index]
    return out


def unique_dag_names(labels: Iterable[str]) -> list[str]:
    """Unique DAG names: as events, no arm suffix, only one trailing ``_`` removed."""
    counts: dict[str, int] = {}
    out = []
    for label in labels:
        text = _NOT_NAME.sub("", html.unescape(label)).replace(" ", "_")[:18].lower()
        text = text.removesuffix("_") or hashlib.md5(label.encode()).hexdigest()[:10]
        counts[text] = counts.get(text, 0) + 1
        out.append(text + _suffix(counts[text]))
    return out


def study_oid(title: str) -> str:
    """``ODM::getStudyOID``: "Project." + CamelCased alphanumerics, 30 chars."""
    words = _NOT_TITLE.sub("", html.unescape(title)).split(" ")
    camel = "".join(w[:1].upper() + w[1:] for w in words)
    return "Project." + camel[:30]


def metadata_version_oid(title: str, now: str) -> str:
    """``ODM::getMetadataVersionOID``; ``now`` is ``YYYY-MM-DD HH:MM:SS``."""
    stamp = now.replace(":", "").replace(" ", "_")[:-2]
    return "Metadata." + study_oid(title).removeprefix("Project.") + "_" + stamp
