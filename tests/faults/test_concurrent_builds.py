"""Two builds of one version at once: the version lock lets one build, refuses or holds back the other.

Processes are synchronised on the lock file's holder record, on their own output and on SIGSTOP/SIGCONT
of a whole process group (a build and its Prefect server), never on sleeps. The lineage DB tests
(``test_lineage_*``) check that a second DuckDB writer or reader waits for the first and both land.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rs5m.core.layout import DataRoot
from rs5m.core.locks import VersionLocked, is_locked, lock_path, read_holder, version_lock
from rs5m.lineage import store as lineage
from rs5m.rating.store import RatingStore, StoreBusy

from ._builds import (
    REPO,
    VERSION,
    Outcome,
    World,
    assert_same,
    cli_build,
    cli_build_cmd,
    cli_env,
    outcome,
    run_build,
)

TIMEOUT = 600  # generous: the machine is shared; nothing below waits on a clock to make progress


def _start(argv: list[str], logs: Path, name: str) -> subprocess.Popen[bytes]:
    """A child in its own session (its process group also holds its Prefect server); output to files."""
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env=cli_env(),
        stdout=(logs / f"{name}.out").open("wb"),
        stderr=(logs / f"{name}.err").open("wb"),
        start_new_session=True,
    )


def _until(what: str, ready: Callable[[], bool], procs: list[subprocess.Popen[bytes]]) -> None:
    """Poll ``ready`` until true; fail when every one of ``procs`` has exited first."""
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        assert any(p.poll() is None for p in procs), f"every process exited before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _holder_pid(root: Path, procs: list[subprocess.Popen[bytes]]) -> int:
    """Wait until one of ``procs`` holds the version lock under ``root``; return its pid."""
    pids = {p.pid for p in procs}

    def held() -> bool:
        rec = read_holder(lock_path(root, VERSION))
        return rec is not None and rec.pid in pids and is_locked(lock_path(root, VERSION))

    _until("a build to take the lock", held, procs)
    return read_holder(lock_path(root, VERSION)).pid


@contextmanager
def _stopped(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """The child's whole process group frozen (SIGSTOP) for the block."""
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGCONT)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every file under ``root`` but Prefect's home and the lock files."""
    skip = (".prefect", ".locks")
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def _text(logs: Path, name: str) -> str:
    return (logs / name).read_text(encoding="utf-8", errors="replace")


def _assert_refused(rc: int, stderr: str, winner: int) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith(
        f"rs5m build: error: version {VERSION} is being built by pid {winner} on host "
    )
    assert lines[0].endswith("; wait for it or use --wait-lock SECONDS")


@pytest.mark.slow  # long form; short: test_flow_refuses_before_writing and tests/core/test_locks.py
def test_simultaneous_builds_one_builds_one_is_refused(
    faults_world: World, reference: Outcome, tmp_path: Path
) -> None:
    root, logs = tmp_path / "root", tmp_path
    root.mkdir()
    procs = [_start(cli_build_cmd(faults_world.config, root), logs, f"build-{i}") for i in range(2)]
    try:
        winner_pid = _holder_pid(root, procs)
        winner, loser = sorted(procs, key=lambda p: p.pid != winner_pid)
        with _stopped(winner):  # the winner can neither finish nor write while the loser runs
            before = _files(root)
            rc = loser.wait(timeout=TIMEOUT)
            assert _files(root) == before
            # A third build, started now, is refused too and changes nothing under the root.
            third = cli_build(faults_world.config, root, timeout=TIMEOUT)
            assert _files(root) == before
        _assert_refused(third.returncode, third.stderr, winner_pid)
        assert third.stdout == ""
        won, lost = ("build-0", "build-1") if winner is procs[0] else ("build-1", "build-0")
        _assert_refused(rc, _text(logs, f"{lost}.err"), winner_pid)
        assert _text(logs, f"{lost}.out") == ""
        assert winner.wait(timeout=TIMEOUT) == 0, _text(logs, f"{won}.err")[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert not is_locked(lock_path(root, VERSION))
    assert_same(outcome(root), reference)


@pytest.mark.slow  # long form; tests/core/test_locks.py covers waiting and a dead holder
def test_wait_lock_waits_then_is_a_no_op(faults_world: World, reference: Outcome, tmp_path: Path) -> None:
    root, logs = tmp_path / "root", tmp_path
    root.mkdir()
    first = _start(cli_build_cmd(faults_world.config, root), logs, "first")
    second: subprocess.Popen[bytes] | None = None
    try:
        assert _holder_pid(root, [first]) == first.pid
        with _stopped(first):  # the second surely finds the lock held
            second = _start(
                cli_build_cmd(faults_world.config, root, VERSION, "--wait-lock", "900"), logs, "second"
            )
            waiting = f"version {VERSION} is being built by pid {first.pid} on host "
            _until("the second build to wait", lambda: waiting in _text(logs, "second.err"), [second])
        assert "waiting up to 900 s" in _text(logs, "second.err")
        with _stopped(second):  # the first finishes; the second, frozen, cannot take the lock yet
            assert first.wait(timeout=TIMEOUT) == 0, _text(logs, "first.err")[-3000:]
            built = _files(root)
        assert second.wait(timeout=TIMEOUT) == 0, _text(logs, "second.err")[-3000:]
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert f"version {VERSION} built under" in _text(logs, "second.out")
    after = _files(root)
    changed = sorted(k for k in built if after.get(k) != built[k])
    # A no-op rebuild reloads the lineage DB, redraws the funnel figure and logs to the command log; no
    # partition, marker or shard changes
    assert set(after) == set(built)
    allowed = {"lineage.duckdb", f"versions/{VERSION}/reports/funnel.png", "logs/rs5m.log"}
    assert changed and set(changed) <= allowed, changed
    assert_same(outcome(root), reference)


@pytest.mark.slow  # long form; tests/core/test_locks.py covers waiting and a dead holder
def test_lock_is_released_when_the_holder_is_killed(
    faults_world: World, reference: Outcome, tmp_path: Path
) -> None:
    root, logs = tmp_path / "root", tmp_path
    root.mkdir()
    build = _start(cli_build_cmd(faults_world.config, root), logs, "killed")
    vdir = root / "versions" / VERSION
    try:
        assert _holder_pid(root, [build]) == build.pid
        _until("the first stats file", lambda: any(vdir.glob("*/_stats/**/*.json")), [build])
    finally:
        os.killpg(build.pid, signal.SIGKILL)  # the build and its Prefect server
    assert build.wait(timeout=TIMEOUT) == -signal.SIGKILL
    assert not (vdir / "COMPLETE").exists()
    assert read_holder(lock_path(root, VERSION)).pid == build.pid  # its record is left behind, ...
    assert not is_locked(lock_path(root, VERSION))  # ... its lock is not
    with version_lock(root, VERSION):  # taken at once (no wait)
        pass
    rerun = cli_build(faults_world.config, root, timeout=TIMEOUT)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_same(outcome(root), reference)


def test_flow_refuses_before_writing(faults_world: World, tmp_path: Path, prefect_harness: None) -> None:
    root = tmp_path / "root"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(root), VERSION],
        cwd=REPO,
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        with pytest.raises(VersionLocked, match=f"being built by pid {holder.pid} "):
            run_build(faults_world.config, root)
        assert sorted(p.name for p in root.iterdir()) == [".locks"]  # no version folder, no lineage DB
    finally:
        holder.kill()
        holder.wait()


HOLD_LOCK = """
import sys
from rs5m.core.locks import version_lock
with version_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""

# Opens the lineage DB (read-write, or read-only with argv[2] == "ro") and holds it until stdin has a
# line; the writer then adds version "w1".
HOLD_DB = """
import sys
from rs5m.lineage import store as lineage
con = lineage.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("held", flush=True)
sys.stdin.readline()
if sys.argv[2] == "rw":
    con.execute("INSERT INTO versions (version, status) VALUES ('w1', 'complete')")
con.close()
"""

# Writes version "w2" (or, with argv[2] == "ro", reads the versions), logging lineage's wait message.
USE_DB = """
import logging, sys
from rs5m.lineage import store as lineage
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
if sys.argv[2] == "rw":
    lineage.set_version_status(sys.argv[1], "w2", "complete", "h", "/r")
else:
    with lineage.connect(sys.argv[1], read_only=True) as con:
        print(sorted(r[0] for r in con.execute("SELECT version FROM versions").fetchall()))
"""


def _py(code: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=cli_env(), text=True, **kw)


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_lineage_second_writer_or_reader_waits_and_both_land(tmp_path: Path, mode: str) -> None:
    db = DataRoot.of(tmp_path).lineage_db
    lineage.set_version_status(db, "w0", "complete", "h", str(tmp_path))
    first = _py(HOLD_DB, str(db), "rw", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    second: subprocess.Popen[str] | None = None
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        second = _py(USE_DB, str(db), mode, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert second.stderr is not None
        line = second.stderr.readline()  # blocks until it has met the first's lock
        assert f"lineage database {db} is held by another process; waiting up to 120 s" in line
        assert second.poll() is None
        first.communicate("go\n", timeout=TIMEOUT)
        out, err = second.communicate(timeout=TIMEOUT)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert (first.returncode, second.returncode) == (0, 0), err
    with lineage.connect(db, read_only=True) as con:
        got = {r[0]: r[1] for r in con.execute("SELECT version, status FROM versions").fetchall()}
    assert got == {"w0": "complete", "w1": "complete", **({"w2": "complete"} if mode == "rw" else {})}
    if mode == "ro":
        assert out.strip() == "['w0', 'w1']"  # the reader saw the first's committed write


@pytest.mark.parametrize("holder_mode", ["rw", "ro"])
def test_lineage_gives_up_with_one_line_naming_the_file(
    tmp_path: Path, holder_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = DataRoot.of(tmp_path).lineage_db
    lineage.set_version_status(db, "w0", "complete", "h", str(tmp_path))
    holder = _py(HOLD_DB, str(db), holder_mode, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(
            lineage.LineageBusy, match=f"lineage database {db} to write: another process"
        ) as info:
            lineage.connect(db, wait_s=0.3)
        assert "\n" not in str(info.value) and isinstance(info.value, ValueError)
        monkeypatch.setenv("RS5M_LINEAGE_WAIT_S", "0.2")
        if holder_mode == "rw":  # a writer keeps readers out too; a reader does not
            with pytest.raises(lineage.LineageBusy, match="to read: another process held it for 0.2 s"):
                lineage.connect(db, read_only=True)
        else:
            with lineage.connect(db, read_only=True) as con:
                assert con.execute("SELECT count(*) FROM versions").fetchone() == (1,)
        store = RatingStore(db, lock_wait_s=0.3)
        try:
            with pytest.raises(StoreBusy, match="locked by another process"):
                store.call(lambda con: con.execute("SELECT 1").fetchone())
        finally:
            store.close()
    finally:
        holder.kill()
        holder.wait()


def test_local_cluster_workers_do_not_profile() -> None:
    """Builds hung for good on CPython 3.11: a worker's profiler deadlocked with exiting download threads."""
    from distributed import LocalCluster

    from flows.build_rs5m import task_runner
    from rs5m.config import DaskConfig

    task_runner(DaskConfig(n_workers=1, threads_per_worker=1, processes=False))
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        callbacks = set(next(iter(cluster.workers.values())).periodic_callbacks)
    assert "heartbeat" in callbacks and "profile" not in callbacks
