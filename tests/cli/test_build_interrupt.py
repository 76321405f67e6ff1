"""Ctrl-C at the terminal during a real ``rs5m build`` of the sample world (issue #17 item 9).

The build runs a LocalCluster with worker processes, so the terminal's SIGINT (sent here to the whole
process group, as a terminal does) reaches the CLI and its Dask workers, not the local Prefect API
server (its own session). A first Ctrl-C stops the build within seconds: one line, status 130, nothing
it started left running. A rerun resumes; a double Ctrl-C stops it at once. The last run finishes the
version with the sample world's planted counts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from rs5m.lineage import store as lineage
from tests.cli.bad_inputs import FLOW_CASES
from tests.faults._builds import VERSION, World, cli_build_cmd, cli_env, make_world

pytestmark = pytest.mark.slow

START_S = 300.0  # Prefect's server and the cluster start slowly on a loaded machine
LINE = next(c for c in FLOW_CASES if c.what == "Ctrl-C during a build").shows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    dask = {"n_workers": 1, "threads_per_worker": 2, "processes": True}
    return make_world(tmp_path_factory.mktemp("interrupt-world"), dask=dask)


def _start(world: World, root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_build_cmd(world.config, root), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip


def _running(proc: subprocess.Popen[str], root: Path, after: int) -> list[psutil.Process]:
    """Wait until the build works on partitions (a stats file newer than ``after`` of them); its
    descendants then (API server, Dask nanny and worker)."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        if len(list((root / "versions" / VERSION).glob("*/_stats/*/*.json"))) > after:
            return psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.2)
    raise AssertionError("the build did not start a partition in time")


def _gone(procs: list[psutil.Process], within_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + within_s
    left = procs
    while left and time.monotonic() < deadline:
        left = [p for p in left if _alive(p)]
        time.sleep(0.1)
    return left


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stats(root: Path) -> dict[Path, int]:
    """Every partition done marker (stats file) of the version and its modification time."""
    return {p: p.stat().st_mtime_ns for p in (root / "versions" / VERSION).glob("*/_stats/*/*.json")}


def test_ctrl_c_stops_a_build_that_resumes(world: World, tmp_path: Path) -> None:
    root = tmp_path / "data"
    # one Ctrl-C: the run stops, counts what finished, closes the cluster
    proc = _start(world, root)
    children = _running(proc, root, 0)
    assert any("uvicorn" in p.cmdline() for p in children)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 20  # grace period 15 s, then it is cut off
    assert proc.returncode == 130
    assert err.strip("\n").splitlines()[-1] == LINE and "Traceback" not in err
    assert not _gone(children, 10)  # no API server, no Dask worker left behind
    kept = _stats(root)
    assert kept and not (root / "versions" / VERSION / "COMPLETE").exists()

    # the rerun resumes (finished partitions are not redone); two Ctrl-Cs stop it at once
    proc = _start(world, root)
    children = _running(proc, root, len(kept))
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 130 and err.strip("\n").splitlines()[-1] == LINE
    assert not _gone(children, 10)

    # the last run finishes the version with the world's planted counts
    proc = _start(world, root)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert (root / "versions" / VERSION / "COMPLETE").is_file()
    assert {p: t for p, t in _stats(root).items() if p in kept} == kept  # finished partitions not redone
    with lineage.connect(root / "lineage.duckdb", read_only=True) as con:
        rows = {r["Name"]: r for r in lineage.funnel_rows(con, VERSION)}
    expected = world.expected["sources"]
    assert rows["Total"]["Amount"] == sum(e["amount"] for e in expected.values())
    assert rows["Total"]["After Keyword Filtering"] == sum(
        e["funnel"]["after_keyword"] for e in expected.values()
    )
