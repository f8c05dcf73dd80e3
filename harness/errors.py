"""Typed errors. Each message says what went wrong *and* what to do about it.

Exit codes follow one rule for every command: 2 means "could not run"
(bad input, usage, configuration, unreachable target); 1 is reserved for
"ran, and a check failed", which is a result, not an exception.
"""

from __future__ import annotations


class DrillError(Exception):
    """Base of every expected failure; anything else is a bug."""

    exit_code = 2


class UsageError(DrillError):
    """Bad command-line arguments or configuration."""


class ArchiveError(DrillError):
    """An archive file cannot be opened safely (bomb, zip-slip, truncation, not XML)."""


class SourceError(DrillError):
    """A backup store cannot be listed or read."""


class OdmError(DrillError):
    """The document is not readable as REDCap project XML (hostile or malformed XML)."""


class SchemaError(DrillError):
    """The ODM schema cannot be found, installed or compiled."""


class TargetError(DrillError):
    """A restore target refused a request, died, or cannot be reached."""


class DockerError(TargetError):
    """The disposable Docker REDCap cannot be built, started, reached or removed."""


class CompareError(DrillError):
    """Two archives cannot be compared (for example one has no metadata)."""


class ReportError(DrillError):
    """A report cannot be written or merged."""
