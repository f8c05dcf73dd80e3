"""Where backups come from, and which one is each project's latest.

    source = DirectorySource("/backups/redcap", max_age=parse_duration("36h"))
    for entry in source.latest():       # Archive, or BrokenArchive with .error
        ...
"""

from harness.sources.base import Source, newest_per_project
from harness.sources.directory import DirectorySource
from harness.sources.duration import parse_duration
from harness.sources.header import Header, key_from_filename, project_key, read_header
from harness.sources.inspect import inspect_archive

__all__ = [
    "DirectorySource",
    "Header",
    "Source",
    "inspect_archive",
    "key_from_filename",
    "newest_per_project",
    "parse_duration",
    "project_key",
    "read_header",
]
