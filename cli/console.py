"""Prefect's console handler as ``rs5m`` runs use it (``cli.logs``): no tracebacks, silent after Ctrl-C."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from prefect.logging.handlers import PrefectConsoleHandler

from cli import logs

_FULL = logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")


class ConsoleHandler(PrefectConsoleHandler):
    """Prefect's console handler without tracebacks; every record in full in the log file.

    Given no stream or ``sys.stderr`` (Prefect's logging.yml passes ``ext://sys.stderr``), it writes to
    whatever ``sys.stderr`` is when a record comes, not the one at setup: a caller that swaps stderr
    (``contextlib.redirect_stderr``, pytest's capture) gets the lines, and a stream closed since is never
    written to.
    """

    def __init__(self, stream: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(stream=stream, **kwargs)
        self._follow_stderr = stream is None or stream is sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``record`` without its traceback (nothing once silenced); log it in full to the file."""
        if logs.log_file() is not None:
            try:
                logs.append(_FULL.format(record))
            except Exception:  # a record that cannot be formatted is still printed below
                pass
        if logs.silenced():
            return
        if self._follow_stderr and self.stream is not sys.stderr:
            self.stream = self.console.file = sys.stderr
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            super().emit(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def adopt_prefect_handlers() -> None:
    """Replace every ``PrefectConsoleHandler`` already on a logger of this process by a ``ConsoleHandler``
    with the same level, formatter and filters (Prefect configures its logging once per process)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        if not isinstance(logger, logging.Logger):
            continue
        for old in list(logger.handlers):
            if type(old) is PrefectConsoleHandler:
                new = ConsoleHandler(level=old.level)
                new.setFormatter(old.formatter)
                new.filters = list(old.filters)
                logger.removeHandler(old)
                logger.addHandler(new)
