"""The embedded REDCap-compatible sandbox: "moto for REDCap".

A real threaded HTTP server on loopback with SQLite storage that answers
REDCap's API (15.7.6) closely enough that PyCap and the drills cannot tell it
from a fresh development instance. Three ways in:

* ``with SandboxServer() as sb: ...`` (``sb.url``, ``sb.super_token``);
* the ``redcap_sandbox`` pytest fixture (``harness.sandbox.fixtures``);
* ``redcap-drill sandbox serve`` or ``python -m harness.sandbox``.

Layout (moto's): ``models.py`` is the backend (one method per API call, no
HTTP), ``exceptions.py`` REDCap's errors and their one formatter,
``responses.py`` + ``urls.py`` the HTTP handlers and their routing table,
``server.py`` the server.
"""

from harness.sandbox.exceptions import ApiError
from harness.sandbox.models import SandboxBackend
from harness.sandbox.server import SandboxServer

__all__ = ["ApiError", "SandboxBackend", "SandboxServer"]
