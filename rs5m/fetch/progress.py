"""Progress of a fetch: a rich bar with bytes/s and ETA on a terminal, log lines otherwise.

Downloaders only call ``start``/``advance``/``finish``; which display is used is the caller's choice
(``make_progress``), so the library stays quiet inside Prefect tasks and tests.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What a downloader reports: a file starts (with its total), bytes arrive, the file ends."""

    def start(self, name: str, total: int | None, done: int = 0) -> None: ...
    def advance(self, name: str, n: int) -> None: ...
    def finish(self, name: str, message: str) -> None: ...
    def close(self) -> None: ...


class LogProgress:
    """No bar: one log line per finished file (non-TTY runs, Prefect tasks)."""

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        """Nothing to show until the file ends."""

    def advance(self, name: str, n: int) -> None:
        """Nothing to show until the file ends."""

    def finish(self, name: str, message: str) -> None:
        """Log ``name: message``."""
        log.info("%s: %s", name, message)

    def close(self) -> None:
        """Nothing to close."""


class RichProgress:
    """One overall bar (bytes, bytes/s, ETA) plus one line per file in flight."""

    def __init__(self, total_bytes: int | None, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console if console is not None else Console(stderr=True),
            transient=False,
        )
        self._lock = threading.Lock()
        self._tasks: dict[str, Any] = {}
        self._overall = self._bar.add_task("all files", total=total_bytes or None)
        self._bar.start()

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        """Add a line for ``name``; bytes already on disk count as done."""
        with self._lock:
            if name not in self._tasks:
                self._tasks[name] = self._bar.add_task(name[-50:], total=total, completed=done)
            self._bar.update(self._overall, advance=done)

    def advance(self, name: str, n: int) -> None:
        """Count ``n`` more bytes of ``name`` (negative when a server restarts a transfer)."""
        with self._lock:
            task = self._tasks.get(name)
            if task is not None:
                self._bar.update(task, advance=n)
            self._bar.update(self._overall, advance=n)

    def finish(self, name: str, message: str) -> None:
        """Drop ``name``'s line and print what happened to it above the bars."""
        with self._lock:
            task = self._tasks.pop(name, None)
            if task is not None:
                self._bar.remove_task(task)
            self._bar.console.print(f"{name}: {message}", highlight=False)

    def close(self) -> None:
        """Stop the live display."""
        self._bar.stop()


def make_progress(total_bytes: int | None, stream: Any = None) -> Progress:
    """A ``RichProgress`` when ``stream`` (default stderr) is a terminal, else a ``LogProgress``."""
    stream = stream if stream is not None else sys.stderr
    if hasattr(stream, "isatty") and stream.isatty():
        return RichProgress(total_bytes)
    return LogProgress()


def tqdm_adapter(progress: Progress, name: str) -> type:
    """A tqdm-like class for ``huggingface_hub``'s ``tqdm_class`` that feeds ``progress`` for ``name``."""

    class _Bar:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any) -> None:
            progress.start(name, int(total) if total else None, int(initial or 0))

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def update(self, n: float | None = 1) -> None:
            progress.advance(name, int(n or 0))

        def __getattr__(self, attr: str) -> Any:  # set_postfix_str, close, refresh ...: nothing to do
            return lambda *args, **kwargs: None

    return _Bar
