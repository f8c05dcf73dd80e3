"""Compare a backup (A) with its restored re-export (B): normalize -> hash -> diff.

    from harness.compare import compare_paths, CompareOptions
    result = compare_paths("backup.xml.gz", "reexport.xml", options=CompareOptions(b_files=False))
    result.passed, result.findings, result.known_fired, result.to_dict()

Modules: ``known`` (every difference REDCap introduces, as named rules),
``structure`` (metadata), ``records`` (ClinicalData), ``model`` (results).
``known`` and ``model`` import nothing heavy; the comparison itself (deepdiff,
lxml) is imported on first use so the sandbox can share ``known`` cheaply.
"""

from harness.compare.model import KINDS, CompareOptions, Comparison, Difference, RecordsComparison

__all__ = ["KINDS", "CompareOptions", "Comparison", "Difference", "RecordsComparison",
           "compare_documents", "compare_paths"]


def __getattr__(name: str):
    if name in ("compare_documents", "compare_paths"):
        from harness.compare import documents

        return getattr(documents, name)
    raise AttributeError(f"module 'harness.compare' has no attribute {name!r}")
