"""Waiting until the disposable REDCap can take a drill: DB healthy, then web answers, then the API does.

Each wait polls with a deadline and gives up early when the container has
exited. On a timeout the error carries the tail of the container's log, with
every token scrubbed first: REDCap and MariaDB logs can echo requests and
credentials, and error messages end up in CI logs and reports.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from docker.errors import DockerException, NotFound

from harness.dockerenv.errors import ReadinessTimeout
from harness.errors import TargetError
from harness.targets.api import RedcapApi
from harness.targets.secret import MASK, Secret, scrub

T = TypeVar("T")
LOG_LINES = 30
#: Project tokens (32 hex), super tokens (64 hex) and anything hex-ish at least as long.
_HEXISH = re.compile(r"\b[0-9A-Fa-f]{32,}\b")
_KEYVALUE = re.compile(r"(?i)\b(token|password|passwd|pwd|salt|secret)(\s*[=:]\s*)(\S+)")


def scrub_log(text: str, *secrets: Secret | None) -> str:
    """``text`` safe to show: our secrets, long hex runs and ``password=…`` values masked."""
    text = scrub(text, *secrets)
    text = _HEXISH.sub(MASK, text)
    return _KEYVALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def log_tail(container, *, lines: int = LOG_LINES, secrets: tuple[Secret | None, ...] = ()) -> str:
    """The last ``lines`` lines of a container's output, scrubbed; never raises."""
    try:
        raw = container.logs(tail=lines, stdout=True, stderr=True)
    except (DockerException, requests.RequestException) as exc:
        return f"(no log: {type(exc).__name__})"
    text = raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else str(raw)
    return scrub_log(text, *secrets) or "(empty log)"


def poll(check: Callable[[], T | None], *, timeout: float, interval: float = 0.5,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T | None:
    """Call ``check`` until it returns something other than None, or ``timeout`` seconds pass."""
    deadline = clock() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if clock() >= deadline:
            return None
        sleep(min(interval, max(0.0, deadline - clock())))


def wait_healthy(container, *, timeout: float, what: str, secrets: tuple[Secret | None, ...] = ()) -> None:
    """Wait for the container's HEALTHCHECK to say healthy."""

    def check() -> bool | None:
        state = _state(container, what, secrets)
        health = (state.get("Health") or {}).get("Status")
        return True if health == "healthy" else None

    if poll(check, timeout=timeout) is None:
        raise _timeout(container, what, timeout, "did not report healthy", secrets)


def wait_http(url: str, container, *, timeout: float, what: str, secrets: tuple[Secret | None, ...] = ()) -> None:
    """Wait until ``url`` answers HTTP at all (any status): the web server is up."""
    session = requests.Session()

    def check() -> bool | None:
        _state(container, what, secrets)
        try:
            session.get(url, timeout=5, allow_redirects=False)
        except requests.RequestException:
            return None
        return True

    try:
        if poll(check, timeout=timeout) is None:
            raise _timeout(container, what, timeout, f"did not answer HTTP at {url}", secrets)
    finally:
        session.close()


def wait_api(api: RedcapApi, container, *, timeout: float, what: str,
             secrets: tuple[Secret | None, ...] = ()) -> str:
    """Wait until Export Version answers with the super token; returns the version."""
    last = ""

    def check() -> str | None:
        nonlocal last
        _state(container, what, secrets)
        try:
            version = api.version()
        except TargetError as exc:
            last = scrub_log(str(exc), *secrets)
            return None
        return version or None

    version = poll(check, timeout=timeout, interval=1.0)
    if version is None:
        reason = "did not answer Export Version with the super token" + (f" (last answer: {last})" if last else "")
        raise _timeout(container, what, timeout, reason, secrets)
    return version


def _state(container, what: str, secrets: tuple[Secret | None, ...]) -> dict:
    """The container's current state; raises at once when it has stopped (no point waiting)."""
    try:
        container.reload()
    except NotFound:
        raise ReadinessTimeout(f"the {what} container disappeared while starting; another process may have "
                               "removed it (`redcap-drill docker sweep --all`?)") from None
    state = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead"):
        raise ReadinessTimeout(
            f"the {what} container stopped while starting (exit code {state.get('ExitCode')}); "
            f"last lines of its log:\n{log_tail(container, secrets=secrets)}")
    return state


def _timeout(container, what: str, timeout: float, reason: str,
             secrets: tuple[Secret | None, ...]) -> ReadinessTimeout:
    return ReadinessTimeout(
        f"the {what} container {reason} within {timeout:g} s; raise the timeout for a slow machine, or look "
        f"at the last lines of its log:\n{log_tail(container, secrets=secrets)}")
