"""Build locks (rs5m.core.locks): exclusive across processes, named holder, waiting, none stale after
SIGKILL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rs5m.core import locks
from rs5m.core.locks import Holder, VersionLocked, is_locked, lock_path, read_holder, version_lock

REPO = Path(__file__).resolve().parents[2]

# Takes the lock, says so on stdout, then holds it until stdin closes (or it is killed).
HOLD = """
import sys
from rs5m.core.locks import version_lock
with version_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""

# Tries the lock once (no wait) and prints what happened.
TRY = """
import sys
from rs5m.core.locks import VersionLocked, version_lock
try:
    with version_lock(sys.argv[1], sys.argv[2]):
        print("acquired")
except VersionLocked as exc:
    print("refused", exc)
"""


def _child(code: str, root: Path, version: str = "v1") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, str(root), version],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock of version v1 under ``tmp_path`` (released when stdin closes)."""
    proc = _child(HOLD, tmp_path)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)


def _try_in_child(root: Path, version: str = "v1") -> str:
    proc = _child(TRY, root, version)
    out, _ = proc.communicate("", timeout=120)
    return out.strip()


def test_holder_is_recorded_and_cleared(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "v1")
    with version_lock(tmp_path, "v1") as held:
        assert held == path == tmp_path / ".locks" / "v1.lock"
        rec = read_holder(path)
        assert rec is not None
        assert (rec.pid, rec.host) == (os.getpid(), socket.gethostname())
        started = dt.datetime.fromisoformat(rec.started)
        assert abs((dt.datetime.now(dt.UTC) - started).total_seconds()) < 3600
        assert is_locked(path)
    assert not is_locked(path)
    assert read_holder(path) is None and path.read_text() == ""


def test_second_process_is_refused_with_one_line_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(VersionLocked) as info:
        with version_lock(tmp_path, "v1"):
            pytest.fail("took a lock another process holds")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("version v1 is being built by ")
    assert f"pid {holder.pid} on host {socket.gethostname()} since " in msg
    assert msg.endswith("wait for it or use --wait-lock SECONDS")
    assert info.value.holder is not None and info.value.holder.pid == holder.pid
    assert isinstance(info.value, ValueError)  # the CLI prints ValueErrors as one line
    assert _try_in_child(tmp_path).startswith(f"refused version v1 is being built by pid {holder.pid} ")


def test_other_versions_and_roots_are_independent(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with version_lock(tmp_path, "v2"), version_lock(tmp_path / "other", "v1"):
        assert is_locked(lock_path(tmp_path, "v2"))
    assert is_locked(lock_path(tmp_path, "v1"))


def test_sigkill_leaves_no_stale_lock(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    assert is_locked(lock_path(tmp_path, "v1"))
    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=60) == -signal.SIGKILL
    assert read_holder(lock_path(tmp_path, "v1")).pid == holder.pid  # its record is left behind ...
    assert not is_locked(lock_path(tmp_path, "v1"))  # ... but the lock went with it
    with version_lock(tmp_path, "v1"):  # at once, no wait
        assert read_holder(lock_path(tmp_path, "v1")).pid == os.getpid()


def test_wait_takes_the_lock_when_the_holder_lets_go(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    told: list[Holder | None] = []
    asked = threading.Event()

    def on_wait(h: Holder | None) -> None:
        told.append(h)
        asked.set()

    def release_when_asked() -> None:
        assert asked.wait(timeout=120)
        assert holder.stdin is not None
        holder.stdin.close()  # the holder leaves its with-block

    t = threading.Thread(target=release_when_asked)
    t.start()
    with version_lock(tmp_path, "v1", wait_s=600, on_wait=on_wait):
        assert holder.wait(timeout=60) == 0
        assert read_holder(lock_path(tmp_path, "v1")).pid == os.getpid()
    t.join()
    assert [h.pid if h else None for h in told] == [holder.pid]  # told once, naming the holder


def test_wait_gives_up_after_the_limit(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(VersionLocked, match=rf"pid {holder.pid} .* after waiting 0\.3 s; wait for it"):
        with version_lock(tmp_path, "v1", wait_s=0.3):
            pytest.fail("took a lock another process holds")
    assert holder.poll() is None


def test_reentrant_within_a_process(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "v1")
    with version_lock(tmp_path, "v1"):
        with version_lock(tmp_path, "v1"):
            assert _try_in_child(tmp_path).startswith(
                f"refused version v1 is being built by pid {os.getpid()}"
            )
        assert is_locked(path)  # the outer hold remains
        assert _try_in_child(tmp_path).startswith("refused")
    assert not is_locked(path)
    assert _try_in_child(tmp_path) == "acquired"


def test_release_without_acquire_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not held by this process"):
        locks.release(lock_path(tmp_path, "v1"))


def test_lock_file_is_not_inherited_by_spawned_programs(tmp_path: Path) -> None:
    with version_lock(tmp_path, "v1"):
        # close_fds=False: only close-on-exec keeps the lock's descriptor from the child
        sleeper = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, close_fds=False
        )
    try:
        assert _try_in_child(tmp_path) == "acquired"  # the child still runs, the lock is free
    finally:
        assert sleeper.stdin is not None
        sleeper.stdin.close()
        sleeper.wait(timeout=60)


def test_describe_shows_the_date_when_not_today() -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = Holder(12, "h", now.isoformat(), "rs5m build --version v1").describe()
    assert (
        today == f"pid 12 on host h since {now.astimezone().strftime('%H:%M:%S')} (rs5m build --version v1)"
    )
    old = now - dt.timedelta(days=3)
    assert old.astimezone().strftime("%Y-%m-%d %H:%M:%S") in Holder(12, "h", old.isoformat(), "x").describe()
    assert Holder(1, "h", "garbage", "c" * 500).describe().endswith("c...)")
    assert "\n" not in Holder(1, "h", "garbage", "python -c 'a\nb'").describe()


def test_unreadable_record_is_unknown_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "v1")
    path.parent.mkdir(parents=True)
    for text in ("", "{", '{"pid": 1}', "[]"):
        path.write_text(text)
        assert read_holder(path) is None
    assert str(VersionLocked("v1", None, 0)).startswith("version v1 is being built by another process")
