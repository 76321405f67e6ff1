"""Prefect's console handler as ``rs5m`` runs use it (``cli.logs``): no tracebacks, silent after Ctrl-C."""

from __future__ import annotations

import logging

from prefect.logging.handlers import PrefectConsoleHandler

from cli import logs

_FULL = logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")


class ConsoleHandler(PrefectConsoleHandler):
    """Prefect's console handler without tracebacks; every record in full in the log file."""

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``record`` without its traceback (nothing once silenced); log it in full to the file."""
        if logs.log_file() is not None:
            try:
                logs.append(_FULL.format(record))
            except Exception:  # a record that cannot be formatted is still printed below
                pass
        if logs.silenced():
            return
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            super().emit(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
