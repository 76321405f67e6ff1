"""The whole ``rs5m build`` SIGKILLed mid-download, then restarted: it resumes shard by shard (issue #12).

The test serves the world's images itself (the build config has no ``sample_server``), so it can
count requests per URL path, and makes every image answer after ``SLOW_S`` so the download stage lasts
long enough to stop it in the middle (the final, unkilled run is served at full speed: the request
counts of both servers add up). Shards are small (``PER_SHARD`` rows), so a partition has several
img2dataset shards. The test polls the version folder until at least ``done_at`` shards are marked done
(``NNNNN_stats.json``) while at least one other shard is half-written, then SIGKILLs the build's whole
process group (CLI, its Prefect API server, the in-process Dask cluster). After the kill: every shard
marked done is complete and agrees with its stats, and the version is not COMPLETE. The same command is
run again: it must finish, fetch none of the finished shards' URLs again, redo the half-written shards,
and end exactly like the undisturbed reference.

Short form: one kill, right after the first finished shard. Long form (``RS5M_FUZZ_LONG=1``): kills
later in the download stage, and a second kill of the restarted build before the final run.
The public helpers (config, slow routes, start / kill / finish a build, shard checks) are shared with
``test_server_faults.py``.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import tarfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from rs5m.pipeline.download.img2ds import done_shard_ids
from rs5m.sample import serve_images
from rs5m.sample.server import ROUTES_FILE

from . import LONG
from ._builds import REPO, VERSION, Outcome, World, assert_same, cli_build_cmd, cli_env, outcome, with_config

SLOW_S = 0.5  # every image answers this late: far below the download timeout, so nothing times out
PER_SHARD = 4
# longer timeouts: a slow answer never times out on a loaded machine; the planted 15 s sleeps still do
DOWNLOAD = {"samples_per_shard": PER_SHARD, "timeout": 6.0, "total_timeout": 8.0}
WAIT_S = 600.0
# (finished shards to wait for before each kill); the last run is never killed
KILLS = [(1,)] + ([(12,), (5, 20)] if LONG else [])


def build_config(world: World, name: str, **download: Any) -> Path:
    """The world's config with no ``sample_server`` (the test serves the images) and ``download`` changes."""
    section = yaml.safe_load(world.config.read_text(encoding="utf-8"))["download"]
    section = {**section, **download, "allow_hosts": [f"127.0.0.1:{world.port}"]}
    return with_config(world, name, sample_server=None, download=section)


def slow_routes(images: Path) -> dict[str, dict[str, float]]:
    """A sleep route for every served image that has no planted route (timeouts, redirects) already."""
    planted = json.loads((images / ROUTES_FILE).read_text(encoding="utf-8"))
    paths = {"/" + p.relative_to(images).as_posix() for p in images.rglob("*") if p.is_file()}
    return {p: {"sleep": SLOW_S} for p in sorted(paths - set(planted) - {"/" + ROUTES_FILE})}


def partitions(vdir: Path) -> list[Path]:
    """Every download partition folder of the version."""
    return sorted(p for p in (vdir / "download").glob("*/*") if p.is_dir() and p.parent.name != "_stats")


def download_shards(vdir: Path) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """(done, half-written) shards of every download partition: done = marked by ``NNNNN_stats.json``."""
    done, partial = [], []
    for part in partitions(vdir):
        finished = done_shard_ids(part)
        done += [(part, i) for i in sorted(finished)]
        started = {int(f.name[:5]) for f in part.glob("[0-9]*.*") if f.name[:5].isdigit()}
        partial += [(part, i) for i in sorted(started - finished)]
    return done, partial


def start_build(config: Path, root: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``rs5m build`` in a child process that leads its own process group; output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            cli_build_cmd(config, root, VERSION, *args),
            cwd=REPO,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def tail(log: Path) -> str:
    """The end of a build log, for assertion messages."""
    return log.read_text(encoding="utf-8", errors="replace")[-4000:]


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group (if any of it is left) and reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the whole group already ended
        pass
    proc.wait(timeout=60)


def _live_in_group(pgid: int) -> list[int]:
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def kill_build_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path) -> None:
    """Poll ``ready()`` while the build runs, then SIGKILL its process group and check all of it is gone."""
    deadline = time.monotonic() + WAIT_S
    try:
        while not ready():
            assert proc.poll() is None, (
                f"the build ended before the kill point ({proc.returncode}):\n{tail(log)}"
            )
            assert time.monotonic() < deadline, f"no kill point within {WAIT_S}s:\n{tail(log)}"
            time.sleep(0.02)
    finally:
        kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 60
    while alive := _live_in_group(proc.pid):  # the Prefect API server child dies with the build
        assert time.monotonic() < deadline, f"processes {alive} of the killed build are still running"
        time.sleep(0.1)


def finish_build(config: Path, root: Path, log: Path, *args: str) -> None:
    """Run ``rs5m build`` to its end; it must succeed."""
    proc = start_build(config, root, log, *args)
    try:
        assert proc.wait(timeout=WAIT_S) == 0, tail(log)
    finally:
        kill_group(proc)


def check_shard(part: Path, shard: int) -> set[str]:
    """A shard marked done is complete: its parquet, tar and stats agree. Returns its rows' URLs."""
    name = f"{shard:05d}"
    stats = json.loads((part / f"{name}_stats.json").read_text(encoding="utf-8"))
    rows = pq.read_table(part / f"{name}.parquet").to_pylist()
    status = Counter(r["status"] for r in rows)
    assert len(rows) == stats["count"] and 0 < len(rows) <= PER_SHARD, (part, name)
    assert status["success"] == stats["successes"], (part, name)
    assert status["failed_to_download"] == stats["failed_to_download"], (part, name)
    assert status["failed_to_resize"] == stats["failed_to_resize"], (part, name)
    with tarfile.open(part / f"{name}.tar") as tar:  # reading every member proves the tar is whole
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    for row in rows:
        stored = {n for n in members if n.rpartition(".")[0] == row["key"]}
        if row["status"] == "success":
            assert f"{row['key']}.json" in stored and len(stored) == 3, (part, name, row["key"])
            assert json.loads(members[f"{row['key']}.json"])["uid"] == row["uid"]
        else:
            assert not stored, (part, name, row["key"])
    return {r["url"] for r in rows}


def served_paths(urls: set[str], base_url: str) -> set[str]:
    """The request-log paths of those ``urls`` that point at the test's image server."""
    return {urlsplit(u).path for u in urls if u.startswith(base_url + "/")}


def _mid_download(vdir: Path, done_at: int) -> bool:
    done, partial = download_shards(vdir)
    return len(done) >= done_at and bool(partial)


def _check_killed_state(vdir: Path) -> tuple[set[tuple[Path, int]], set[tuple[Path, int]]]:
    """The version after a kill: not COMPLETE, every done shard whole. Returns (done, half-written) shards."""
    assert not (vdir / "COMPLETE").exists()
    done, partial = download_shards(vdir)
    assert done and partial, (done, partial)  # the kill really fell mid-download
    for part, shard in done:
        check_shard(part, shard)
    return set(done), set(partial)


@pytest.mark.parametrize("kills", KILLS, ids=lambda k: "kill-after-" + "-".join(map(str, k)))
def test_build_killed_mid_download_resumes(
    faults_world: World, reference: Outcome, tmp_path: Path, kills: tuple[int, ...]
) -> None:
    config = build_config(faults_world, "build-kill.yaml", **DOWNLOAD)
    root, log = tmp_path / "root", tmp_path / "build.log"
    root.mkdir()
    vdir = root / "versions" / VERSION
    images = faults_world.dir / "images"
    killed: list[tuple[set[tuple[Path, int]], set[tuple[Path, int]], Counter[str]]] = []
    with serve_images(images, port=faults_world.port, routes=slow_routes(images)) as addr:
        for done_at in kills:
            ready = functools.partial(_mid_download, vdir, done_at)
            kill_build_when(start_build(config, root, log), ready, log)
            killed.append((*_check_killed_state(vdir), Counter(addr.request_log)))
        slow = Counter(addr.request_log)
    # The last run is not killed, so the images answer at once; its requests add to the slow server's.
    with serve_images(images, port=faults_world.port) as fast:
        finish_build(config, root, log)
    after = slow + Counter(fast.request_log)

    urls = {
        (part, i): served_paths(check_shard(part, i), addr.base_url)
        for part in partitions(vdir)
        for i in done_shard_ids(part)
    }
    for done, partial, then in killed:
        assert partial <= set(urls)  # redone by a later run: a half-written shard is not trusted
        refetched = set().union(*(urls[s] for s in partial))
        assert refetched and all(after[p] > then[p] for p in refetched)
        # a finished shard's URLs are never fetched again (a URL also listed in another shard may be)
        only_done = set().union(*(urls[s] for s in done)) - set().union(*(urls[s] for s in set(urls) - done))
        assert only_done and {p: after[p] for p in only_done} == {p: then[p] for p in only_done}
    assert_same(outcome(root), reference)
