"""``redcap-drill sandbox serve``: run the embedded REDCap-compatible server.

Prints the API URL and the super token to stdout once, then serves in the
foreground until interrupted. Tokens never appear in the log.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys

from harness.errors import UsageError


def register(subparsers) -> None:
    parser = subparsers.add_parser("sandbox", help="run the embedded REDCap-compatible sandbox server")
    sub = parser.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    serve = sub.add_parser("serve", help="serve the REDCap API on loopback until interrupted")
    add_serve_arguments(serve)
    parser.set_defaults(func=run)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--db", metavar="FILE", help="SQLite file to keep (default: a temporary one)")
    parser.add_argument("--super-token", metavar="HEX64",
                        help="the 64-character super token (default: a random one)")


def run(args) -> int:
    if getattr(args, "sandbox_command", None) != "serve":
        raise UsageError("use 'redcap-drill sandbox serve' (see --help)")
    return serve(args)


def serve(args) -> int:
    from harness.sandbox.server import SandboxServer

    token = args.super_token
    if token is not None and not re.fullmatch(r"[0-9A-Fa-f]{64}", token):
        raise UsageError("--super-token must be 64 hexadecimal characters (REDCap's super token format)")
    try:
        server = SandboxServer(host=args.host, port=args.port, db=args.db, super_token=token).bind()
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port") from None
    print(f"url={server.url}", flush=True)
    print(f"super_token={server.super_token}", flush=True)
    logging.getLogger("harness.sandbox").info("sandbox: serving REDCap %s API at %s (Ctrl-C to stop)",
                                              server.version, server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m harness.sandbox`` (same options as ``sandbox serve``)."""
    parser = argparse.ArgumentParser(prog="python -m harness.sandbox", description=__doc__)
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    args.sandbox_command = "serve"
    logging.basicConfig(level=logging.INFO, format="redcap-drill: %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except UsageError as exc:
        print(f"redcap-drill: {exc}", file=sys.stderr)
        return exc.exit_code
