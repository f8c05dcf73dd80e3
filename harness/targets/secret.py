"""A token that cannot leak by accident: masked in repr, str, format and pickles.

API tokens open every record of a project (a super token can create projects),
so they must never reach a log line, an exception, a report or a test id. The
only way to the real value is `Secret.reveal`, called where the value goes on
the wire and nowhere else; that keeps every leak greppable.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UsageError

MASK = "********"


class Secret:
    """Wraps a token; deliberately not a ``str`` subclass, so ``%s`` and f-strings cannot reveal it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):
        # Pickling (xdist, multiprocessing) would copy the value into another process's
        # memory and possibly to disk; tokens are re-read from the environment instead.
        raise TypeError("a Secret cannot be pickled; pass the environment variable name instead")


def scrub(text: str, *secrets: Secret | None) -> str:
    """``text`` with every occurrence of the given secrets replaced by the mask.

    Belt and braces for text that came from elsewhere (a server's error body, a
    library's exception): our own messages never contain a token to begin with.
    """
    for secret in secrets:
        if secret is not None and len(secret.reveal()) >= 8:
            text = text.replace(secret.reveal(), MASK)
    return text


def super_token_from(env: str = "REDCAP_DRILL_SUPER_TOKEN", file: str | os.PathLike[str] | None = None) -> Secret:
    """The super API token from a file (first line) or the environment, never from argv.

    A token on the command line is visible to every user of the machine (``ps``)
    and lands in shell history and CI logs, so there is deliberately no flag.
    ``<env>_FILE`` names a token file too (the convention of Docker secrets).
    """
    if file is None and os.environ.get(f"{env}_FILE", "").strip():
        file = os.environ[f"{env}_FILE"].strip()
    if file is not None:
        path = Path(file)
        try:
            value = path.read_text(encoding="utf-8").strip().splitlines()[0].strip() if path.stat().st_size else ""
        except OSError as exc:
            raise UsageError(f"cannot read the super token file {path}: {exc.strerror or exc}; check the path and its permissions") from None
        if not value:
            raise UsageError(f"the super token file {path} is empty; put the 64-character super API token on its first line")
        return Secret(value)
    value = os.environ.get(env, "").strip()
    if not value:
        raise UsageError(
            f"no super API token: set {env} (or {env}_FILE to a file holding it); a REDCap administrator "
            "issues 64-character super tokens under Control Center > API Tokens"
        )
    return Secret(value)
