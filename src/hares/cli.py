"""The `hares` command line: argparse subcommands, each a plain function (torchtune pattern).

Each command module exposes `register(subparsers)` and keeps its heavy imports inside the command
function, so `hares --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from hares import __version__

COMMAND_MODULES = (
    "hares.demo",  # demo
    "hares.evaluate.cli",  # eval, tasks
    "hares.evaluate.bench",  # bench
    "hares.models.cli",  # encoders, convert-haiku
    "hares.train.cli",  # pretrain, shards
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hares", description="Learn and evaluate universal audio representations (HARES, Slowfast NFNet)."
    )
    parser.add_argument("--version", action="version", version=f"hares {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `hares tasks | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
