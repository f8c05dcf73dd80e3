"""Record values as they may appear in a finding: masked unless asked for.

Record values are participant data (PHI). A masked value still tells a
reviewer what they need: its length, and a fingerprint that is equal for
equal values within one comparison. The fingerprint is salted per comparison,
so a short value such as a date of birth cannot be recovered by hashing
candidates, and fingerprints from different reports cannot be correlated.
"""

from __future__ import annotations

import hashlib
import os

from harness.odm.model import FileValue


class Masker:
    """Turns record values into display strings for one comparison."""

    def __init__(self, show_values: bool = False, salt: bytes | None = None):
        self.show_values = show_values
        self._salt = os.urandom(16) if salt is None else salt

    def _fingerprint(self, data: bytes) -> str:
        return hashlib.sha256(self._salt + data).hexdigest()[:8]

    def value(self, value: str | FileValue | None) -> str | None:
        if value is None:
            return None
        if isinstance(value, FileValue):
            return self.file(value)
        if self.show_values:
            return value
        if value == "":
            return "«empty»"
        return f"«{len(value)} chars, sha256:{self._fingerprint(value.encode())}…»"

    def file(self, value: FileValue) -> str:
        size = len(value.content)
        if self.show_values:
            digest = hashlib.sha256(value.content).hexdigest()[:12]
            return f"{value.doc_name} ({value.mime_type or 'no MIME type'}, {size} bytes, sha256:{digest}…)"
        # File names are often patient names or MRNs: they are masked like values.
        return f"«file, {size} bytes, sha256:{self._fingerprint(value.content)}…»"
