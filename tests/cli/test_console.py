"""The CLI's console handler: no tracebacks, the stderr of the moment, and Prefect's handlers swapped when
Prefect set up its logging before the command ran (``main`` called from Python)."""

from __future__ import annotations

import contextlib
import io
import logging
import sys

from prefect.logging.handlers import PrefectConsoleHandler

from cli import logs
from cli.console import ConsoleHandler, adopt_prefect_handlers


def _record(msg: str) -> logging.LogRecord:
    try:
        raise ValueError("inner")
    except ValueError:
        return logging.LogRecord("rs5m.test", logging.ERROR, __file__, 1, msg, None, sys.exc_info())


def test_writes_to_the_stderr_of_the_moment_without_the_traceback() -> None:
    handler = ConsoleHandler(stream=sys.stderr)  # as Prefect's logging.yml builds it
    first, second = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(first):
        handler.emit(_record("one"))
    first.close()  # a closed capture stream is never written again
    with contextlib.redirect_stderr(second):
        handler.emit(_record("two"))
    assert "two" in second.getvalue() and "Traceback" not in second.getvalue()


def test_a_given_stream_is_kept() -> None:
    out = io.StringIO()
    ConsoleHandler(stream=out).emit(_record("kept"))
    assert "kept" in out.getvalue()


def test_prefect_handlers_set_up_earlier_are_swapped() -> None:
    logger = logging.getLogger("rs5m.test.adopt")
    old = PrefectConsoleHandler(stream=sys.stderr, level=logging.INFO)
    logger.addHandler(old)
    try:
        adopt_prefect_handlers()
        (new,) = logger.handlers
        assert type(new) is ConsoleHandler and new.level == logging.INFO
        assert logs.HANDLER_CLASS == f"{ConsoleHandler.__module__}.{ConsoleHandler.__name__}"
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)
