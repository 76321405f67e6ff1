"""The ``rs5m`` command line. Each sub-command lives in ``cli/commands/<name>.py`` with ``register``."""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

COMMANDS = [
    "sample",
    "build",
    "plan",
    "funnel",
    "why",
    "versions",
    "loader-check",
    "rate",
    "evaluate",
    "train",
    "finetune-captioner",
    "fetch-metadata",
    "inputs",
]


# errno -> what the user is told; every one means "make room (or raise the limit), then rerun"
DISK_FULL = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "no space left on device (disk quota exceeded)",
    errno.EFBIG: "no space left on device (file too large for the file system or the ulimit -f limit)",
}


class CliError(Exception):
    """An error to show the user as one line, without a traceback."""


def disk_full_message(exc: BaseException) -> str | None:
    """One line for a disk-full ``OSError`` (``ENOSPC``, ``EDQUOT``, ``EFBIG``) in ``exc`` or its causes.

    Names the file being written and what to do; ``None`` when no such error is in the chain.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in DISK_FULL:
            where = f"writing {cur.filename}" if cur.filename else "(the file was not reported)"
            return (
                f"{DISK_FULL[cur.errno]} {where}: free space there and rerun the same command "
                "(finished stages are not redone)"
            )
        cur = cur.__cause__ or cur.__context__
    return None


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="rs5m", description="Rebuild RS5M and train/evaluate GeoRSCLIP.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cli.commands.{name.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch to the command's ``run(args)``, print errors as one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, ValueError, FileNotFoundError) as exc:
        print(f"rs5m {args.command}: error: {disk_full_message(exc) or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a disk-full error anywhere in the chain, else the full traceback
        message = disk_full_message(exc)
        if message is None:
            raise
        print(f"rs5m {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
