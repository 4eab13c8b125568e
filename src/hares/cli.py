"""The `hares` command line: argparse subcommands, each a plain function (torchtune pattern).

Each command module exposes `register(subparsers)` and keeps its heavy imports inside the command
function, so `hares --help` stays fast. Bad input (options, files, folders, configs) ends a command with one
line on stderr, `hares COMMAND: error: ...`, and exit code 2; `HARES_TRACEBACK=1` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from hares import __version__

COMMAND_MODULES = (
    "hares.demo",  # demo
    "hares.data.cli",  # download
    "hares.evaluate.cli",  # eval, tasks
    "hares.evaluate.bench",  # bench
    "hares.evaluate.report_cli",  # report, references
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
    except (ValueError, KeyError, TypeError, OSError) as e:
        if os.environ.get("HARES_TRACEBACK"):
            raise
        print(f"hares {args.command}: error: {error_line(e)}", file=sys.stderr)
        return 2


def error_line(e: BaseException) -> str:
    """The message of a user-facing error; other exceptions keep their type name and point to the traceback."""
    from hares.schema import OptionError

    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    ours = isinstance(e, OptionError) or type(e).__module__.startswith("hares.")
    if not ours and not isinstance(e, (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError)):
        msg = f"{type(e).__name__}: {msg} (HARES_TRACEBACK=1 shows where)"
    return msg


if __name__ == "__main__":
    sys.exit(main())
