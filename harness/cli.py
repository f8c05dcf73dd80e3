"""``redcap-drill`` command line: a thin layer over the library.

Each subcommand lives in ``harness/commands/<name>.py`` with ``register(sub)``
and ``run(args) -> int``. Exit codes are the same for every subcommand:
0 nothing failed (warnings allowed), 1 a check failed, 2 could not run,
130 interrupted. Results go to stdout; progress and errors to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from harness import __version__
from harness.errors import DrillError

#: subcommand -> module under harness.commands
COMMANDS = {
    "run": "run",
    "validate": "validate",
    "diff": "diff",
    "sandbox": "sandbox",
    "fixtures": "fixtures",
    "schema": "schema",
    "report": "report",
    "docker": "docker",
}


def _load(name: str):
    try:
        return importlib.import_module(f"harness.commands.{COMMANDS[name]}")
    except ModuleNotFoundError as exc:
        if exc.name == f"harness.commands.{COMMANDS[name]}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redcap-drill",
        description="Prove REDCap project-XML backups can be restored.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 could not run, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"redcap-drill {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for expected errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is not None:
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.INFO,
        format="redcap-drill: %(message)s",
        stream=sys.stderr,
    )
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except DrillError as exc:
        if args.debug:
            raise
        print(f"redcap-drill: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("redcap-drill: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `redcap-drill diff … | head`: the reader left, so the output is incomplete.
        # No traceback, and no claim that all was well either: "could not run".
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
