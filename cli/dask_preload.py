"""Preload of the Dask worker processes of an ``rs5m`` run (``distributed.worker.preload``).

A Ctrl-C at the terminal reaches every process of the foreground group, the LocalCluster's worker
processes included. A worker process that died of it would print a ``KeyboardInterrupt`` traceback and
lose its finished results to a restart; here it only stops printing log records (``cli.logs.silence``)
and keeps going until the CLI closes the cluster (``cli.interrupt``). Workers that run inside the CLI's
own process (``processes: false``) are left alone: the CLI handles the signal itself.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from types import FrameType
from typing import Any

from cli import logs

PRELOAD = __name__


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    logs.silence()


def install() -> bool:
    """In a worker process's main thread: take SIGINT over (see the module docstring); True if installed."""
    if multiprocessing.parent_process() is None or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, _on_sigint)
    return True


def dask_setup(worker: Any) -> None:
    """Dask's preload hook (the work is done on import, before the worker starts)."""


install()
