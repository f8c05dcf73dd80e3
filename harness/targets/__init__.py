"""Restore targets: where a drill restores archives. Pick one by name.

    with targets.get("sandbox") as target:      # embedded server (default)
        ...
    targets.get("url", url="https://redcap-dev.example.org/api/")   # token from REDCAP_DRILL_SUPER_TOKEN

A new kind (the planned ``docker`` target) registers a factory under its name
with `register`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import UsageError
from harness.targets.base import Cleanup, ExportOptions, Restored, Target, TargetInfo
from harness.targets.secret import Secret, scrub, super_token_from

_FACTORIES: dict[str, Callable[..., Target]] = {}


def register(kind: str, factory: Callable[..., Target]) -> None:
    """Make ``get(kind, **options)`` build targets with ``factory(**options)``."""
    _FACTORIES[kind] = factory


def _sandbox(**options: Any) -> Target:
    from harness.targets.sandbox import SandboxTarget

    return SandboxTarget(**options)


def _url(**options: Any) -> Target:
    from harness.targets.url import UrlTarget

    return UrlTarget(**options)


def _docker(**options: Any) -> Target:
    from harness.targets.docker import DockerTarget  # lazy: the Docker SDK is only needed here

    return DockerTarget(**options)


register("sandbox", _sandbox)
register("url", _url)
register("docker", _docker)

KINDS = ("sandbox", "url", "docker")


def kinds() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def get(kind: str, **options: Any) -> Target:
    """A new, not yet started target of ``kind``; use it as a context manager."""
    try:
        factory = _FACTORIES[kind]
    except KeyError:
        raise UsageError(f"unknown target {kind!r}; choose one of: {', '.join(_FACTORIES)}") from None
    try:
        return factory(**options)
    except TypeError as exc:
        # Name the bad option instead of failing later in a confusing way (deepdiff's rule).
        raise UsageError(f"bad option for the {kind} target: {exc}") from None


__all__ = ["Cleanup", "ExportOptions", "KINDS", "Restored", "Secret", "Target", "TargetInfo", "get", "kinds",
           "register", "scrub", "super_token_from"]
