"""Ctrl-C during a run: the first stops it within seconds, a second exits at once; one line either way.

A Ctrl-C at the terminal sends SIGINT to every process of the foreground process group: the CLI, and
the Dask worker processes of a LocalCluster (the local Prefect API server runs in a session of its own,
``flows.local_api``, so it stays up while the run records its end). In the CLI:

- the first SIGINT silences the console (``cli.logs.silence``) and raises ``KeyboardInterrupt`` in the
  main thread: Prefect marks the runs crashed, the build counts what finished, the cluster closes, and
  the command prints its one line (``main``);
- a later SIGINT, or ``grace_s`` seconds after the first with the run still not stopped, kills the
  local API server and exits the process at once (status 130), printing the same one line.

Finished partitions are never lost: each one's stats file is its done marker, so the next run of the
same command redoes only what was cut off (the build lock is a ``flock``, released by the kernel).

A later SIGINT is seen by a watcher thread through ``signal.set_wakeup_fd`` (written by the C-level
handler), so it works even while the main thread is stuck in C code and cannot run a Python handler.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType

from cli import logs

GRACE_S = 15.0  # after a first Ctrl-C, how long the run may take to stop before it is cut off
# multiprocessing's resource tracker outlives a process cut off with os._exit, cleans up after it and
# warns about it on the shared stderr; the cleanup is all we want from it
_TRACKER_WARNING = "ignore::UserWarning:multiprocessing.resource_tracker"


def quiet_resource_tracker() -> None:
    """Spare the terminal the resource tracker's warning after a cut-off run (before it starts)."""
    current = os.environ.get("PYTHONWARNINGS", "")
    if _TRACKER_WARNING not in current.split(","):
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [current, _TRACKER_WARNING]))


def kill_children() -> None:
    """SIGKILL this process's descendants (Dask worker processes...), except the resource tracker.

    The tracker stays: it removes the named semaphores the killed processes leave behind.
    """
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                child.kill()
        except psutil.Error:
            pass


class Interrupts:
    """SIGINT handling of one command (a context manager; use it in the main thread).

    ``message`` is the one line printed when the process is cut off; ``on_hard_exit`` runs first
    (e.g. ``flows.local_api.kill_servers``). ``interrupted`` tells whether a SIGINT arrived.
    """

    def __init__(
        self, message: str, on_hard_exit: Callable[[], None] | None = None, grace_s: float = GRACE_S
    ) -> None:
        self.message, self.on_hard_exit, self.grace_s = message, on_hard_exit, grace_s
        self.interrupted = False
        self._raised = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._exit_lock = threading.Lock()

    def __enter__(self) -> Interrupts:
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._old_handler = signal.signal(signal.SIGINT, self._handler)
        self._watcher = threading.Thread(target=self._watch, name="rs5m-interrupts", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old_handler)
        if self.interrupted:
            logs.silence(False)  # this process may go on (a test calling main)
        signal.set_wakeup_fd(self._old_fd)
        if self._timer is not None:
            self._timer.cancel()
        self._write.close()  # the watcher sees end-of-file and returns
        self._watcher.join(timeout=5)
        self._read.close()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread when it can; the watcher sees the same signals (and acts on later ones).
        self._mark()
        if not self._raised:
            self._raised = True
            raise KeyboardInterrupt

    def _mark(self) -> None:
        """Record the first SIGINT: silence the console, start the grace period (idempotent)."""
        with self._lock:
            if self.interrupted:
                return
            self.interrupted = True
        logs.silence()
        self._timer = threading.Timer(self.grace_s, self.hard_exit)
        self._timer.daemon = True
        self._timer.start()

    def _watch(self) -> None:
        seen = 0
        while True:
            try:
                data = self._read.recv(64)
            except OSError:
                return
            if not data:
                return
            seen += data.count(signal.SIGINT)
            if seen >= 2:
                self.hard_exit()
            elif seen == 1:
                self._mark()

    def hard_exit(self) -> None:
        """Kill what must not outlive the process, print the one line and exit with status 130 at once."""
        if not self._exit_lock.acquire(blocking=False):
            return
        try:
            if self.on_hard_exit is not None:
                self.on_hard_exit()
        finally:
            print(self.message, file=sys.stderr, flush=True)
            os._exit(130)
