"""Find and remove the Docker objects of redcap-drill runs, by label.

Teardown of a run and ``redcap-drill docker down`` remove one run's objects;
``redcap-drill docker sweep`` removes the runs nobody will tear down any more
(the owning process was killed). Deciding what to remove (`plan`) is separate
from removing it (`remove`), so the decision is testable without a daemon.
Containers go first (with their anonymous volumes), then volumes, then networks:
Docker refuses to remove a volume or network that a container still uses.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import requests
from docker.errors import APIError, DockerException, NotFound

from harness.dockerenv import labels
from harness.dockerenv.labels import Owner

log = logging.getLogger(__name__)
Kind = Literal["container", "volume", "network"]
_ORDER: dict[str, int] = {"container": 0, "volume": 1, "network": 2}


@dataclass(frozen=True)
class Labelled:
    """One Docker object that carries a run label."""

    kind: Kind
    id: str
    name: str
    owner: Owner

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "run": self.owner.run_id}


@dataclass(frozen=True)
class SweepResult:
    removed: tuple[Labelled, ...] = ()
    #: Left alone on purpose, with the reason.
    skipped: tuple[tuple[Labelled, str], ...] = ()
    #: Could not be removed, with the daemon's reason.
    failed: tuple[tuple[Labelled, str], ...] = field(default=())

    @property
    def runs(self) -> tuple[str, ...]:
        return tuple(sorted({obj.owner.run_id for obj in self.removed}))


def find(client, run_id: str | None = None) -> list[Labelled]:
    """Every labelled container, volume and network (of one run, or of all runs)."""
    filters = labels.run_filter(run_id)
    found: list[Labelled] = []
    for container in client.containers.list(all=True, filters=filters):
        _add(found, "container", container.id, container.name, container.labels)
    for volume in client.volumes.list(filters=filters):
        _add(found, "volume", volume.id, volume.name, (volume.attrs or {}).get("Labels"))
    for network in client.networks.list(filters=filters):
        _add(found, "network", network.id, network.name, (network.attrs or {}).get("Labels"))
    return found


def plan(objects: Iterable[Labelled], *, this_host: str, alive: Callable[[str], bool] = labels.owner_alive,
         include_kept: bool = False, include_live: bool = False) -> tuple[list[Labelled], list[tuple[Labelled, str]]]:
    """Split ``objects`` into (to remove, to leave with a reason), whole runs at a time."""
    remove: list[Labelled] = []
    leave: list[tuple[Labelled, str]] = []
    decided: dict[str, str | None] = {}
    for obj in sorted(objects, key=lambda o: (o.owner.run_id, _ORDER[o.kind], o.name)):
        run = obj.owner.run_id
        if run not in decided:
            decided[run] = _why_keep(obj.owner, this_host=this_host, alive=alive, include_kept=include_kept,
                                     include_live=include_live)
        reason = decided[run]
        if reason is None:
            remove.append(obj)
        else:
            leave.append((obj, reason))
    remove.sort(key=lambda o: (_ORDER[o.kind], o.owner.run_id, o.name))
    return remove, leave


def remove(client, objects: Iterable[Labelled]) -> SweepResult:
    """Remove ``objects`` (containers, then volumes, then networks); never raises."""
    removed: list[Labelled] = []
    failed: list[tuple[Labelled, str]] = []
    for obj in sorted(objects, key=lambda o: (_ORDER[o.kind], o.name)):
        error = _remove_one(client, obj)
        if error is None:
            removed.append(obj)
        else:
            failed.append((obj, error))
            log.warning("could not remove %s %s: %s", obj.kind, obj.name, error)
    return SweepResult(removed=tuple(removed), failed=tuple(failed))


def remove_run(client, run_id: str) -> SweepResult:
    """Everything run ``run_id`` created; what teardown and ``docker down`` call."""
    return remove(client, find(client, run_id))


def sweep(client, *, include_kept: bool = False, include_live: bool = False, dry_run: bool = False,
          this_host: str | None = None, alive: Callable[[str], bool] = labels.owner_alive) -> SweepResult:
    """Remove the objects of abandoned runs (and kept/live ones only when asked)."""
    to_remove, to_leave = plan(find(client), this_host=this_host or socket.gethostname(), alive=alive,
                               include_kept=include_kept, include_live=include_live)
    if dry_run:
        return SweepResult(removed=(), skipped=tuple(to_leave) + tuple((o, "dry run") for o in to_remove))
    result = remove(client, to_remove)
    return SweepResult(removed=result.removed, skipped=tuple(to_leave), failed=result.failed)


def _why_keep(owner: Owner, *, this_host: str, alive: Callable[[str], bool], include_kept: bool,
              include_live: bool) -> str | None:
    if owner.keep and not include_kept:
        return f"kept on purpose; remove with `redcap-drill docker down {owner.run_id}` (or sweep --all)"
    if owner.keep:
        return None
    if owner.host != this_host and not include_live:
        return f"made on host {owner.host or '?'}, cannot tell if its run is still going (sweep --all removes it)"
    if owner.host == this_host and alive(owner.owner) and not include_live:
        return f"its run is still going (process {owner.owner.split('@')[0]}); sweep --all removes it anyway"
    return None


def _add(found: list[Labelled], kind: Kind, obj_id: str, name: str, object_labels) -> None:
    owner = Owner.from_labels(object_labels)
    if owner is not None:
        found.append(Labelled(kind, obj_id, name, owner))


def _remove_one(client, obj: Labelled, *, attempts: int = 5) -> str | None:
    for attempt in range(attempts):
        try:
            if obj.kind == "container":
                client.api.remove_container(obj.id, force=True, v=True)
            elif obj.kind == "volume":
                client.api.remove_volume(obj.name, force=True)
            else:
                client.api.remove_network(obj.id)
            return None
        except NotFound:
            return None  # already gone: that is the goal
        except APIError as exc:
            # "in use"/"removal in progress" clear up once the container is fully gone.
            if exc.status_code in (409, 500) and attempt < attempts - 1:
                time.sleep(0.5 * (attempt + 1))
                continue
            return " ".join(str(exc.explanation or exc).split())[:300]
        except (DockerException, requests.RequestException) as exc:
            return " ".join(str(exc).split())[:300]
    return "gave up"
