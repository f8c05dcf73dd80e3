"""Validation of REDCap project XML: the official ODM 1.3.1 XSD, REDCap's dialect, semantic rules.

    from harness.schema import validate
    result = validate("backup.xml.gz", profile="redcap")   # or "strict"
    if not result.valid:
        for finding in result.findings: ...

Modules, one job each: ``locate`` (find and hash-check CDISC's XSD), ``install``
(fetch it once into the user cache), ``dialect`` (the two profiles, compiled
once), ``deviations`` (REDCap's known departures and unknown ``redcap:`` names),
``messages`` (libxml2 errors as findings), ``semantic`` (rules over the model),
``validate`` (one streaming pass over all of it), ``findings`` (the result data).
"""

from harness.schema.dialect import DEFAULT_PROFILE, DEVIATIONS, PROFILES, load_schema
from harness.schema.findings import ArchiveFacts, Finding, Findings, ValidationResult
from harness.schema.locate import ENV_VAR, SchemaLocation, cache_dir, locate_schema
from harness.schema.validate import Validation, validate

__all__ = [
    "DEFAULT_PROFILE",
    "DEVIATIONS",
    "ENV_VAR",
    "PROFILES",
    "ArchiveFacts",
    "Finding",
    "Findings",
    "SchemaLocation",
    "Validation",
    "ValidationResult",
    "cache_dir",
    "load_schema",
    "locate_schema",
    "validate",
]
