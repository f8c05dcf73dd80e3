"""``redcap-drill diff A B``: compare a backup with its restored re-export.

Exit 0 when nothing fails (warnings allowed), 1 when B differs from A in a
way REDCap does not explain, 2 when the two files cannot be compared.
Findings go to stdout (text, or JSON with ``--json``); errors to stderr.
Record values are masked unless ``--show-values`` is given; record IDs are
pseudonyms when A's record ID field is marked identifier (``--record-ids``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from harness.compare import CompareOptions, Comparison, compare_paths
from harness.compare.known import RULES
from harness.compare.model import RECORD_ID_POLICIES


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "diff", help="compare a backup (A) with its restored re-export (B)",
        description="Compare two REDCap project XML files (.xml, .xml.gz or .zip): metadata field by "
                    "field and records as REDCap's flat value set. Differences REDCap itself "
                    "introduces on a round trip are excused by named rules and listed.",
        epilog="Exit codes: 0 nothing failed (warnings allowed), 1 a difference was found, "
               "2 the files could not be compared.",
    )
    parser.add_argument("a", type=Path, metavar="A", help="the backup (original export)")
    parser.add_argument("b", type=Path, metavar="B", help="the re-export of the restored project")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--show-values", action="store_true",
                        help="show record values in findings (they are PHI; masked by default); "
                             "record IDs follow --record-ids, not this")
    parser.add_argument("--record-ids", choices=RECORD_ID_POLICIES, default="auto",
                        help="record IDs in findings: auto (default: a pseudonym such as R-3f9a1c, the same for "
                             "one record throughout, when A's record ID field is marked identifier), mask "
                             "(always), show (never)")
    parser.add_argument("--b-without-files", action="store_true",
                        help="B was exported without file contents: file fields are not compared")
    parser.add_argument("--b-without-survey-fields", action="store_true",
                        help="B was exported without survey fields (default: read from B)")
    parser.add_argument("--b-without-dags", action="store_true",
                        help="B was exported without DAGs: assignments are not compared (default: read from B)")
    parser.add_argument("--limit", type=int, default=200, metavar="N",
                        help="list at most N record ids and N findings of each severity (default 200)")
    parser.set_defaults(func=run)


def options_from(args: argparse.Namespace) -> CompareOptions:
    return CompareOptions(
        b_files=not args.b_without_files,
        b_survey_fields=False if args.b_without_survey_fields else None,
        b_dags=False if args.b_without_dags else None,
        show_values=args.show_values,
        record_ids=args.record_ids,
        max_listed=max(0, args.limit),
    )


def run(args: argparse.Namespace) -> int:
    result = compare_paths(args.a, args.b, options=options_from(args))
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_text(result, sys.stdout)
    return 0 if result.passed else 1


def print_text(result: Comparison, out: TextIO) -> None:
    """Findings, record counts and the rules that fired, one per line."""
    rec = result.records
    for d in result.findings:
        print(d, file=out)
    if rec.truncated:
        print(f"… {rec.differences_total - len(rec.differences)} more record findings not listed "
              "(raise --limit to see them)", file=out)
    print(f"records: A {rec.a_count}, B {rec.b_count}; missing {rec.missing_count}, extra {rec.extra_count}, "
          f"changed {rec.changed_count}; values compared {rec.values_compared}, differing {rec.values_differing}",
          file=out)
    if result.known_fired:
        print("known REDCap differences:", file=out)
        for name, count in result.known_fired.items():
            rule = RULES[name]
            print(f"  {name} ×{count} ({rule.severity}, {rule.section}): {rule.summary}", file=out)
    if result.record_ids.startswith("masked"):
        print(f"record IDs: {result.record_ids}", file=out)
    verdict = "PASSED" if result.passed else "FAILED"
    print(f"{verdict}: {result.failures} failures, {result.warnings} warnings "
          f"({result.a_name} vs {result.b_name})", file=out)
