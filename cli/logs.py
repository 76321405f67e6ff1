"""What a run prints on the terminal, and the full log (tracebacks included) in a file under the data root.

Prefect logs a failed task's or flow's traceback to the console at every level it passes through (the
task, the pipeline subflow, the build flow): ~200 lines before the real message. ``rs5m`` swaps Prefect's
console handler for ``cli.console.ConsoleHandler`` (``PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS``, which every
process of the run inherits, Dask worker processes included): it prints each record as its message
only and appends the whole record, traceback included, to the log file named by ``RS5M_LOG_FILE``
(``DataRoot.log_file``). ``--debug`` keeps Prefect's own handler (tracebacks on the console).

After a Ctrl-C (``silence``) the console gets nothing more: the CLI's one line is the last word; the
records still reach the log file.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
import traceback
from pathlib import Path

LOG_FILE_ENV = "RS5M_LOG_FILE"
HANDLER_ENV = "PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS"
HANDLER_CLASS = "cli.console.ConsoleHandler"  # a module of its own: this one must not import Prefect

_silenced = threading.Event()
_debug = False
_file_lock = threading.Lock()


def silence(on: bool = True) -> None:
    """Print no more log records on this process's console (the log file gets them); ``False`` undoes it.

    Dask's own loggers (their own handlers: cluster teardown noise) are quiet meanwhile.
    """
    if on:
        _silenced.set()
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    elif _silenced.is_set():
        _silenced.clear()
        logging.getLogger("distributed").setLevel(logging.NOTSET)


def silenced() -> bool:
    """Whether ``silence`` was called in this process."""
    return _silenced.is_set()


def log_file() -> Path | None:
    """The log file of this run (``RS5M_LOG_FILE``), ``None`` when none is set."""
    path = os.environ.get(LOG_FILE_ENV)
    return Path(path) if path else None


def append(text: str) -> Path | None:
    """Append ``text`` (a line or a traceback) to the log file; returns it (``None``: not written)."""
    path = log_file()
    if path is None:
        return None
    try:
        with _file_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
    except OSError:  # a log that cannot be written must not become the error
        return None
    return path


def append_exception(exc: BaseException, command: str) -> Path | None:
    """Append ``exc``'s traceback to the log file, stamped with the time and the command."""
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    text = "".join(traceback.format_exception(exc))
    return append(f"{stamp} rs5m {command}: the error below ended the command\n{text}")


def start(debug: bool) -> None:
    """Begin a command: no log file yet (``configure`` names one), tracebacks on the console iff ``debug``."""
    global _debug
    _debug = debug
    os.environ.pop(LOG_FILE_ENV, None)


def debug() -> bool:
    """Whether the command runs with ``--debug``."""
    return _debug


def configure(log_path: Path | None) -> None:
    """Route this process's and its children's Prefect console logging (call before Prefect is imported).

    Without ``--debug``: ``cli.console.ConsoleHandler`` on the console, the full log in ``log_path``;
    with it, Prefect's own handler. A user's own ``PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS`` wins. When
    Prefect set up its logging earlier in this process (``main`` called from Python), its console
    handlers are swapped for ours now.
    """
    if log_path is not None:
        os.environ[LOG_FILE_ENV] = str(log_path)
    if not _debug:
        os.environ.setdefault(HANDLER_ENV, HANDLER_CLASS)
        if os.environ[HANDLER_ENV] == HANDLER_CLASS and "prefect.logging" in sys.modules:
            from cli.console import adopt_prefect_handlers  # Prefect is loaded already: no import cost

            adopt_prefect_handlers()
    elif os.environ.get(HANDLER_ENV) == HANDLER_CLASS:
        del os.environ[HANDLER_ENV]
