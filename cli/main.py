"""The ``rs5m`` command line. Each sub-command lives in ``cli/commands/<name>.py`` with ``register``.

Every error ends the command with one line on stderr, ``rs5m <command>: error: <cause>``, printed last:
status 2 for bad input, 1 for a bug (see ``cli.errors``). The traceback goes to the data root's log
file when the command has one (``DataRoot.log_file``), and to the terminal with ``--debug``. A Ctrl-C
ends it with one line and status 130 (``cli.interrupt``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import traceback
from typing import NoReturn

from cli import logs
from cli.errors import CliError, describe, disk_full_message, exit_status
from cli.interrupt import Interrupts, kill_children

__all__ = ["COMMANDS", "CliError", "build_parser", "disk_full_message", "main"]

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


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message> (see <prog> --help)`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every sub-command registered (each also takes ``--debug``)."""
    parser = Parser(prog="rs5m", description="Rebuild RS5M and train/evaluate GeoRSCLIP.")
    debug_help = "print tracebacks (and Prefect's own log output) instead of one-line errors"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cli.commands.{name.replace('-', '_')}").register(sub)
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return parser


def _on_hard_exit() -> None:
    # nothing this process started may outlive it: the local API server (own session), Dask workers
    local_api = sys.modules.get("flows.local_api")
    if local_api is not None:
        local_api.kill_servers()
    kill_children()


def _report(exc: BaseException, command: str, debug: bool) -> int:
    """Print ``exc`` as the command's last line (its traceback first with ``debug``); the exit status."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    where = None if debug else logs.append_exception(exc, command)
    line = describe(exc)
    status = exit_status(exc)
    if status == 1:
        line = f"internal error: {line} (traceback: {where})" if where else f"internal error: {line}"
        if not debug and where is None:
            line += " (rerun with --debug for the traceback)"
    print(f"rs5m {command}: error: {line}", file=sys.stderr, flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch to the command's ``run(args)``, print errors as one line.

    Called without ``argv`` (the installed ``rs5m`` script, ``python -m cli.main``), an interrupted
    command exits the process right after its line: threads a stopped run left behind are not waited for.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logs.start(debug)
    interrupts = Interrupts(f"rs5m {args.command}: interrupted", on_hard_exit=_on_hard_exit)
    args.interrupts = interrupts  # a command may name what was left (e.g. the version to resume)
    if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
        return _run(args, argv, debug, interrupts)
    with interrupts:
        return _run(args, argv, debug, interrupts)


def _run(args: argparse.Namespace, argv: list[str] | None, debug: bool, interrupts: Interrupts) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(interrupts.message, file=sys.stderr, flush=True)
        if argv is None:
            sys.stdout.flush()
            os._exit(130)
        return 130
    except Exception as exc:
        return _report(exc, args.command, debug)


if __name__ == "__main__":
    sys.exit(main())
