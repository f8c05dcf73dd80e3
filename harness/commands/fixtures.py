"""``redcap-drill fixtures generate``: write a synthetic REDCap project XML.

The generator lives in the repository's ``fixtures`` package (beside
``harness``), which is not part of the installed wheel; this command finds it
in the source checkout the harness was installed from.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from pathlib import Path

from harness.errors import UsageError

log = logging.getLogger(__name__)


def _generator():
    try:
        return importlib.import_module("fixtures.generate")
    except ModuleNotFoundError as exc:
        if exc.name not in ("fixtures", "fixtures.generate"):
            raise
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "fixtures" / "generate.py").is_file():
        raise UsageError(
            "the fixture generator is not installed: run this command from a redcap-drill source "
            "checkout (pip install -e .) — fixtures/generate.py was not found next to harness/"
        )
    sys.path.insert(0, str(checkout))
    return importlib.import_module("fixtures.generate")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fixtures", help="synthetic REDCap projects for testing the drill")
    actions = parser.add_subparsers(dest="fixtures_command", metavar="ACTION", required=True)
    gen = actions.add_parser(
        "generate", help="write a synthetic project XML (deterministic by seed)",
        description="Write a synthetic REDCap 15.7 project XML with every field type. "
                    "The same options and seed always give the same bytes.",
    )
    gen.add_argument("--out", required=True, type=Path, metavar="FILE",
                     help="output file; .gz or .zip in the name picks the compression")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--records", type=int, default=10)
    gen.add_argument("--forms", type=int, default=3, help="instruments in total (at least 2)")
    gen.add_argument("--fields-per-form", type=int, default=0,
                     help="pad every instrument with filler fields up to this many")
    gen.add_argument("--longitudinal", action="store_true")
    gen.add_argument("--arms", type=int, default=1)
    gen.add_argument("--events", type=int, default=3, help="events per arm (longitudinal)")
    gen.add_argument("--repeating-forms", action="store_true")
    gen.add_argument("--repeating-events", action="store_true")
    gen.add_argument("--dags", type=int, default=0, help="number of Data Access Groups")
    gen.add_argument("--surveys", action="store_true", help="survey-enabled forms and survey fields")
    gen.add_argument("--missing-codes", action="store_true", help="missing-data codes, some values using them")
    gen.add_argument("--files", action="store_true", help="embed file-upload and signature contents")
    gen.add_argument("--metadata-only", action="store_true", help="no ClinicalData")
    gen.add_argument("--title", default=None, help="project title")
    gen.add_argument("--now", default=None, metavar="'YYYY-MM-DD HH:MM:SS'",
                     help="export time written into the file (default: a fixed time, for stable bytes)")
    squeeze = gen.add_mutually_exclusive_group()
    squeeze.add_argument("--gzip", action="store_const", const="gzip", dest="compression")
    squeeze.add_argument("--zip", action="store_const", const="zip", dest="compression",
                         help="a REDCap-style zip holding one XML")
    gen.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    gen = _generator()
    extra = {k: v for k, v in (("title", args.title), ("now", args.now)) if v is not None}
    config = gen.GeneratorConfig(
        seed=args.seed, records=args.records, forms=args.forms, fields_per_form=args.fields_per_form,
        longitudinal=args.longitudinal, arms=args.arms, events=args.events,
        repeating_forms=args.repeating_forms, repeating_events=args.repeating_events, dags=args.dags,
        surveys=args.surveys, missing_codes=args.missing_codes, files=args.files,
        metadata_only=args.metadata_only, **extra,
    )
    if not args.out.parent.is_dir():
        raise UsageError(f"cannot write {args.out}: the folder {args.out.parent} does not exist")
    started = time.perf_counter()
    try:
        gen.generate_file(args.out, config, args.compression)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    seconds = time.perf_counter() - started
    size = args.out.stat().st_size
    log.info("wrote %s (%d bytes, %d records) in %.1f s", args.out, size, 0 if args.metadata_only else args.records,
             seconds)
    print(args.out)
    return 0
