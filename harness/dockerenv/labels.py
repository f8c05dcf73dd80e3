"""Labels that tie every Docker object to the run that made it, and who may remove it.

Every network, volume and container a run creates carries ``redcap-drill.run=<id>``
plus its owner (host and process). Teardown removes a run by that label, so
objects created half-way through a failed start are found too; ``sweep`` uses
the owner to tell a killed run's leftovers from a run that is still going.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

PREFIX = "redcap-drill"
RUN = f"{PREFIX}.run"
ROLE = f"{PREFIX}.role"
HOST = f"{PREFIX}.host"
OWNER = f"{PREFIX}.owner"
KEEP = f"{PREFIX}.keep"
#: On images: the REDCap version inside (``redcap_vX.Y.Z``).
REDCAP_VERSION = f"{PREFIX}.redcap-version"


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique enough to name containers: ``20250101T120000-1a2b3c``."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def object_name(run_id: str, role: str) -> str:
    return f"{PREFIX}-{run_id}-{role}"


def process_owner(pid: int | None = None) -> str:
    """``pid`` or ``pid@start-time``: the start time stops a recycled pid looking alive."""
    pid = os.getpid() if pid is None else pid
    started = _start_time(pid)
    return f"{pid}@{started}" if started else str(pid)


def run_labels(run_id: str, role: str, *, keep: bool = False, owner: str | None = None,
               host: str | None = None) -> dict[str, str]:
    return {
        RUN: run_id,
        ROLE: role,
        HOST: host if host is not None else socket.gethostname(),
        OWNER: owner if owner is not None else process_owner(),
        KEEP: "1" if keep else "0",
    }


def run_filter(run_id: str | None = None) -> dict[str, list[str]]:
    """A Docker ``filters=`` value: one run's objects, or every run's."""
    return {"label": [f"{RUN}={run_id}" if run_id else RUN]}


@dataclass(frozen=True)
class Owner:
    """Who made a run's objects, read back from their labels."""

    run_id: str
    host: str
    owner: str
    keep: bool

    @classmethod
    def from_labels(cls, labels: Mapping[str, str] | None) -> Owner | None:
        labels = labels or {}
        if not labels.get(RUN):
            return None
        return cls(labels[RUN], labels.get(HOST, ""), labels.get(OWNER, ""), labels.get(KEEP) == "1")


def is_abandoned(owner: Owner, *, this_host: str, alive: Callable[[str], bool]) -> bool:
    """True when nobody will ever tear this run down: its owning process is gone.

    Kept runs (``--keep``, ``docker up``) are never abandoned: somebody asked for
    them and removes them with ``docker down``. A run made on another host (a
    shared daemon) cannot be judged from here, so it is left alone too.
    """
    if owner.keep or owner.host != this_host:
        return False
    return not alive(owner.owner)


def owner_alive(owner: str) -> bool:
    """Is the process named by a `process_owner` string still running (and the same process)?"""
    pid_text, _, started = owner.partition("@")
    if not pid_text.isdigit():
        return False  # unreadable label: nobody can still be using the run
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    except OSError:
        return False
    return not started or _start_time(pid) in (started, "")


def _start_time(pid: int) -> str:
    # Field 22 of /proc/<pid>/stat (clock ticks since boot); the name in field 2 may hold spaces.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
