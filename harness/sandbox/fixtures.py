"""The ``redcap_sandbox`` pytest fixture: one sandbox server per test session.

Registered through the harness's pytest plugin; a test module can also
import it directly (``from harness.sandbox.fixtures import redcap_sandbox``).
The server is started once per session and stopped at its end; its state is
shared, so tests create their own projects (and may delete them with
``POST /_sandbox/delete_project``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.sandbox.server import SandboxServer


@pytest.fixture(scope="session")
def redcap_sandbox() -> Iterator[SandboxServer]:
    """A running sandbox: ``.url`` (ends with ``/api/``) and ``.super_token``."""
    with SandboxServer() as server:
        yield server
