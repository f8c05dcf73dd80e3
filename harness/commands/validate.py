"""``redcap-drill validate PATH…``: check project XML backups against ODM 1.3.1 and REDCap's rules.

Exit codes: 0 every file valid (warnings and notes allowed), 1 at least one
file invalid, 2 at least one file could not be validated (unreadable archive,
malformed or hostile XML, missing schema). Results go to stdout (``--json``
for machines); could-not-run errors also go to stderr as ``redcap-drill: …``.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.errors import DrillError
from harness.schema.dialect import DEFAULT_PROFILE, PROFILES
from harness.schema.findings import Finding, ValidationResult
from harness.schema.locate import ENV_VAR, locate_schema
from harness.schema.validate import DEFAULT_MAX_MESSAGES, validate


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="validate project XML backups (XSD + REDCap dialect + semantic checks)",
        description=(
            "Validate REDCap project XML (.xml, .xml.gz or REDCap's .zip) in one streaming pass: the official "
            "ODM 1.3.1 XSD (profile 'redcap' types REDCap's extensions and accepts its known habits as notes; "
            "'strict' is plain 1.3.1, which no REDCap export passes), then semantic checks (undefined OIDs, "
            "codes outside their lists, repeat keys, duplicate rows, restore blockers)."
        ),
        epilog="Exit codes: 0 all valid (warnings allowed), 1 a file is invalid, 2 a file could not be validated.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="backup files to validate")
    parser.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE,
                        help=f"schema profile (default: {DEFAULT_PROFILE})")
    parser.add_argument("--odm-schema", metavar="DIR",
                        help=f"folder with CDISC's ODM 1.3.1 XSD (default: ${ENV_VAR}, then the user cache; "
                             "see `redcap-drill schema install`)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--max-messages", type=_positive, default=DEFAULT_MAX_MESSAGES, metavar="N",
                        help=f"show at most N findings per file (default {DEFAULT_MAX_MESSAGES}); all are counted")
    parser.add_argument("--no-semantic", dest="semantic", action="store_false",
                        help="only the schema and dialect checks")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    location = locate_schema(args.odm_schema)  # a missing schema stops everything: exit 2 via the CLI
    entries: list[dict] = []
    worst = 0
    for path in args.paths:
        try:
            result = validate(path, profile=args.profile, odm_schema=location.root,
                              max_messages=args.max_messages, semantic=args.semantic)
        except DrillError as exc:
            worst = 2
            print(f"redcap-drill: {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            entries.append({"file": path, "valid": False,
                            "could_not_run": {"type": type(exc).__name__, "message": str(exc)}})
            if not args.json:
                print(f"{path}: COULD NOT VALIDATE ({type(exc).__name__}: {exc})\n")
            continue
        if not result.valid:
            worst = max(worst, 1)
        entries.append(result.to_dict() | {"file": path})
        if not args.json:
            print(render(result, path))
    if args.json:
        json.dump({"profile": args.profile, "schema": str(location.root), "exit_code": worst, "files": entries},
                  sys.stdout, indent=2, ensure_ascii=False)
        print()
    return worst


def render(result: ValidationResult, path: str) -> str:
    """One block of plain text per file."""
    facts, counts = result.facts, result.counts
    status = "OK" if result.valid else "INVALID"
    about = ", ".join(
        part for part in (
            f"REDCap {facts.redcap_version}" if facts.redcap_version else "",
            f"{facts.records} record{'s' if facts.records != 1 else ''}" if facts.has_clinical_data else "metadata only",
            "longitudinal" if facts.longitudinal else "",
        ) if part
    )
    lines = [
        f"{path}: {status} (profile {result.profile}) — {about}; "
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['note']} note(s) in {result.seconds:.2f} s"
    ]
    for finding in result.findings:
        lines.extend(_render_finding(finding))
    return "\n".join(lines) + "\n"


def _render_finding(f: Finding) -> list[str]:
    times = f" (×{f.count})" if f.count > 1 else ""
    where = f.where()
    out = [f"  {f.severity:<7} {f.code}{times}: {f.message}"]
    if where:
        out.append(f"          at {where}")
    if f.path:
        out.append(f"          {f.path}")
    if f.hint:
        out.append(f"          hint: {f.hint}")
    return out
