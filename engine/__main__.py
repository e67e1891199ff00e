"""``python -m engine``: the engine's local admin command line, like ``ctr``."""

from __future__ import annotations

import argparse
import json
import socket
import sys

from engine.errors import EngineError
from engine.host import facts


def cmd_info(args: argparse.Namespace) -> int:
    f = facts(args.host_name or socket.gethostname())
    if args.format == "json":
        print(json.dumps(f.to_dict(), indent=2))
    else:
        for key, value in f.to_dict().items():
            print(f"{key.replace('_', ' ').capitalize()}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Berth engine admin")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="show facts about this host")
    info.add_argument("--format", choices=["text", "json"], default="text")
    info.add_argument("--host-name", default=None)
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EngineError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
