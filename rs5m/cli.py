"""The ``rs5m`` command line. Each sub-command lives in ``rs5m/commands/<name>.py`` with ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = [
    "sample",
    "build",
    "funnel",
    "why",
    "versions",
    "loader-check",
    "rate",
    "evaluate",
    "train",
    "finetune-captioner",
]


class CliError(Exception):
    """An error to show the user as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="rs5m", description="Rebuild RS5M and train/evaluate GeoRSCLIP.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"rs5m.commands.{name.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch to the command's ``run(args)``, print errors as one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, ValueError, FileNotFoundError) as exc:
        print(f"rs5m {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
