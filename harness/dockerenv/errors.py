"""What can go wrong with the disposable Docker REDCap, one class per thing to do about it.

All are `harness.errors.DockerError` (a `TargetError`, exit code 2: the drill
could not run). Messages say what to do; container logs quoted in them have
had every token scrubbed first.
"""

from __future__ import annotations

from harness.errors import DockerError


class DaemonUnavailable(DockerError):
    """No Docker daemon answers (not installed, not started, or no permission)."""


class ImageMissing(DockerError):
    """An image the environment needs is not on this machine and could not be pulled."""


class NotARedcapZip(DockerError):
    """The zip given to build from is not REDCap's install zip, or is unsafe to unpack."""


class BuildFailed(DockerError):
    """``docker build`` of the REDCap web image failed."""


class InstallFailed(DockerError):
    """REDCap's database could not be installed or configured in the DB container."""


class ReadinessTimeout(DockerError):
    """A container did not become ready in time, or died while we waited."""
