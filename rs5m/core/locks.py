"""Exclusive build locks: two builds of one version under one data root never interleave their writes.

A build holds ``<root>/.locks/<version>.lock`` with ``fcntl.flock(LOCK_EX)`` for its whole run. The
kernel drops the lock when the holder's file descriptor closes (normal exit, exception, crash, even
SIGKILL), so a lock is never stale and there is nothing to clean up. The file itself stays: deleting a
flock'ed file is racy (a waiter could lock the unlinked inode while a newcomer creates a fresh one).
While the lock is held the file records the holder (pid, host, start time, command), used only to name
it in the refusal message; a descriptor is opened close-on-exec, so spawned programs never inherit the
lock, but a ``fork``-ed child that outlives the holder keeps it until it exits (it may still be writing).

The lock is re-entrant within one process: the process that holds it may take it again (``rs5m build``
takes it before starting Prefect, the flow ``build-rs5m`` takes it again inside), and it is released
when the outermost holder lets go. Two builds of one version inside one process are therefore not kept
apart; builds are separate processes.

NFS caveat: ``flock`` is advisory and only as good as the file system's lock support. On Linux NFS
clients it is emulated with byte-range locks through the server's lock manager (NFSv4 or NLM); with
``nolock``/``local_lock`` mounts it is local to one client, so two hosts sharing a data root over such
a mount could both take the lock. Build a version from one host, or keep the root on a file system with
working locks.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from rs5m.core.layout import DataRoot

# path -> [fd, depth]; shared by the threads of this process (the holder is the process, not a thread)
_held: dict[str, list[int]] = {}
_held_guard = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: process id, host, start time (ISO 8601, UTC) and command line."""

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        """``pid 1234 on host h since 22:10:03 (rs5m build ...)``; the date is shown when not today."""
        try:
            when = dt.datetime.fromisoformat(self.started).astimezone()
            fmt = "%H:%M:%S" if when.date() == dt.datetime.now().astimezone().date() else "%Y-%m-%d %H:%M:%S"
            since = when.strftime(fmt)
        except ValueError:
            since = self.started
        command = " ".join(self.command.split())  # one line, whatever the command held
        command = command if len(command) <= 160 else command[:157] + "..."
        return f"pid {self.pid} on host {self.host} since {since} ({command})"


class VersionLocked(ValueError):
    """Another process is building this version. A ``ValueError``, so the CLI shows it as one line."""

    def __init__(self, version: str, holder: Holder | None, waited_s: float) -> None:
        who = holder.describe() if holder else "another process (it has not recorded itself yet)"
        waited = f" after waiting {waited_s:g} s" if waited_s > 0 else ""
        super().__init__(
            f"version {version} is being built by {who}{waited}; wait for it or use --wait-lock SECONDS"
        )
        self.version = version
        self.holder = holder


def waiting_message(version: str, holder: Holder | None, wait_s: float) -> str:
    """The one line a build prints while it waits for another build of ``version`` to let go."""
    who = holder.describe() if holder else "another process"
    return f"version {version} is being built by {who}; waiting up to {wait_s:g} s"


def lock_path(root: str | Path, version: str) -> Path:
    """The lock file of ``version`` under the data root ``root``."""
    return DataRoot.of(root).lock_file(version)


def read_holder(path: str | Path) -> Holder | None:
    """The holder recorded in a lock file; ``None`` when the file is missing, empty or unreadable.

    Only meaningful while the lock is held: a released lock's file is emptied first, but a holder killed
    by a signal leaves its record behind for the next holder to overwrite.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_locked(path: str | Path) -> bool:
    """Whether some process (this one included) holds the lock at ``path`` right now."""
    path = Path(path)
    if os.path.realpath(path) in _held:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _this_command() -> str:
    argv = list(sys.argv) or ["python"]
    if argv[0] in ("-c", "-m", ""):
        argv.insert(0, "python")
    elif Path(argv[0]).name in ("cli.py", "__main__.py") and "rs5m" in argv[0]:
        argv[0] = "rs5m"  # python -m cli.main
    else:
        argv[0] = Path(argv[0]).name
    return shlex.join(argv)


def _holder_of(path: Path, settle_s: float = 2.0) -> Holder | None:
    # The holder writes its record just after taking the lock: give it a moment before calling it unknown.
    deadline = time.monotonic() + settle_s
    while True:
        holder = read_holder(path)
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.05)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _reenter(key: str) -> bool:
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            return True
    return False


def acquire(
    path: str | Path,
    version: str,
    wait_s: float = 0.0,
    on_wait: Callable[[Holder | None], None] | None = None,
    command: str | None = None,
) -> None:
    """Take the lock at ``path`` (creating its folder), or raise ``VersionLocked`` naming the holder.

    ``wait_s``: 0 refuses at once when another process holds it; otherwise poll (with backoff, at most
    1 s apart) for up to ``wait_s`` seconds. ``on_wait(holder)`` is called once when the first attempt
    finds the lock taken and ``wait_s > 0``. ``command``: what to record as the holder's command (default:
    this process's command line). Every ``acquire`` must be paired with one ``release``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    if _reenter(key):
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    start, delay, told = time.monotonic(), 0.05, False
    try:
        while not _try_lock(fd):
            if _reenter(key):  # another thread of this process took it meanwhile
                os.close(fd)
                return
            waited = time.monotonic() - start
            if waited >= wait_s:
                raise VersionLocked(version, _holder_of(path), wait_s)
            if on_wait is not None and not told:
                on_wait(_holder_of(path))
                told = True
            time.sleep(min(delay, wait_s - waited))
            delay = min(delay * 2, 1.0)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        record = Holder(os.getpid(), socket.gethostname(), started, command or _this_command())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(record)).encode(), 0)
    except BaseException:
        os.close(fd)  # closing drops the flock too, if it was taken
        raise
    with _held_guard:
        _held[key] = [fd, 1]


def release(path: str | Path) -> None:
    """Let go of one ``acquire`` of the lock at ``path``; the last one empties the record and unlocks."""
    key = os.path.realpath(path)
    with _held_guard:
        entry = _held.get(key)
        if entry is None:
            raise RuntimeError(f"lock {path} is not held by this process")
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[key]
    fd = entry[0]
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # drops the flock


@contextmanager
def version_lock(
    root: str | Path,
    version: str,
    wait_s: float = 0.0,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[Path]:
    """Hold the build lock of ``version`` under ``root`` for the ``with`` block; yields the lock file.

    Raises ``VersionLocked`` (one line naming the holder) when another process holds it after
    ``wait_s`` seconds (0 = refuse at once). Released on leaving the block, whatever the outcome.
    """
    path = lock_path(root, version)
    acquire(path, version, wait_s=wait_s, on_wait=on_wait)
    try:
        yield path
    finally:
        release(path)
