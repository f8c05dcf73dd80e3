"""Compare two REDCap project XML documents: metadata first, then records.

Both documents are read in one streaming pass each (plus a partial re-read of
records that differ), so a pair of 1 GB archives compares in bounded memory.
"""

from __future__ import annotations

import io
import os
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Union

from harness.archive import open_xml
from harness.compare.known import RULES
from harness.compare.mask import Masker, RecordIdMasker
from harness.compare.model import CompareOptions, Comparison
from harness.compare.records import compare_records
from harness.compare.structure import compare_structure
from harness.errors import CompareError
from harness.odm.reader import OdmDocument

Opener = Callable[[], AbstractContextManager[BinaryIO]]
Source = Union[bytes, str, os.PathLike, Opener]


def open_path(path: str | os.PathLike) -> AbstractContextManager[BinaryIO]:
    """A stream of the XML in ``path``: .xml, .xml.gz or REDCap's .zip."""
    return open_xml(path)


def _opener(source: Source) -> tuple[Opener, str]:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)

        @contextmanager
        def from_bytes():
            yield io.BytesIO(data)

        return from_bytes, "document"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return (lambda: open_path(path)), path.name
    if callable(source):
        return source, getattr(source, "__name__", "document")
    raise TypeError(f"cannot compare a {type(source).__name__}: pass bytes, a path, or a "
                    "zero-argument callable returning a context manager of a binary stream")


def _require_metadata(doc: OdmDocument, name: str) -> None:
    if not doc.has_metadata:
        raise CompareError(
            f"{name} holds no project metadata (no <Study> with <MetaDataVersion redcap:RecordIdField>); "
            "compare REDCap project XML exports (API content=project_xml or 'REDCap project (XML)' "
            "in Data Exports), not a records-only ODM export"
        )


def compare_documents(a: Source, b: Source, *, options: CompareOptions | None = None,
                      names: tuple[str, str] | None = None, ids: RecordIdMasker | None = None) -> Comparison:
    """Compare project XML A (the backup) with B (its restored re-export).

    ``a`` and ``b`` are bytes, paths, or zero-argument callables returning a
    context manager that yields a binary stream (called again if records
    need re-reading). Raises CompareError, OdmError or ArchiveError (exit
    code 2) when the documents cannot be compared at all.

    Record IDs in the result follow ``options.record_ids``, judged by A's
    metadata; ``ids`` overrides that with a masker shared with other output
    (a drill's validation findings), so one record has one pseudonym.
    """
    options = options or CompareOptions()
    a_open, a_name = _opener(a)
    b_open, b_name = _opener(b)
    if names is not None:
        a_name, b_name = names
    if a_name == b_name:
        a_name, b_name = f"A ({a_name})", f"B ({b_name})"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with a_open() as fa, b_open() as fb:
        doc_a = OdmDocument(fa, name=a_name)
        doc_b = OdmDocument(fb, name=b_name)
        _require_metadata(doc_a, a_name)
        _require_metadata(doc_b, b_name)
        timings["read_metadata"] = time.perf_counter() - started
        t = time.perf_counter()
        structure = compare_structure(doc_a.metadata, doc_b.metadata)
        timings["structure"] = time.perf_counter() - t
        t = time.perf_counter()
        records, record_rules = compare_records(
            doc_a.metadata, doc_b.metadata, doc_a.records(), doc_b.records(), a_open, b_open,
            options, Masker(options.show_values), (a_name, b_name),
        )
        timings["records"] = time.perf_counter() - t
        if ids is None:
            ids = RecordIdMasker.for_policy(options.record_ids, doc_a.metadata)
    fired = Counter(structure.known_fired) + record_rules
    known_fired = {name: fired[name] for name in RULES if fired[name]}
    failures = sum(d.severity == "failure" for d in structure.differences) + records.failures
    warnings = sum(d.severity == "warning" for d in structure.differences) + records.warnings
    # The comparison ran on the real IDs (their order, their re-reads); only its result is masked.
    return ids.comparison(Comparison(
        structure=structure.differences, records=records, known_fired=known_fired,
        passed=failures == 0, warnings=warnings, failures=failures,
        a_name=a_name, b_name=b_name, metadata_items=structure.items, options=options,
        timings=timings,
    ))


def compare_paths(a: str | os.PathLike, b: str | os.PathLike, *, options: CompareOptions | None = None,
                  a_options: CompareOptions | None = None, ids: RecordIdMasker | None = None) -> Comparison:
    """Compare two archive files (.xml, .xml.gz or .zip).

    ``a_options`` is the spelling of the original design and means the same
    as ``options``; give one of them. ``ids`` as for `compare_documents`.
    """
    if options is not None and a_options is not None:
        raise TypeError("compare_paths() takes options= or a_options=, not both")
    return compare_documents(Path(a), Path(b), options=options or a_options, ids=ids)
