"""A Dask worker SIGKILLed in the middle of keyword filtering, a download and scoring (issue #12).

The build runs on a cluster this module starts (a scheduler and two ``dask worker`` processes with
nannies, one thread each, on 127.0.0.1). ``KillPlugin``, registered before the build, patches every
worker process (restarted ones too): when a partition of the chosen source reaches the kill point,
the worker claims the kill (a file linked into place, so it is claimed once), publishes its PID and
blocks. The test waits for that file, SIGKILLs the PID and sees it gone; the nanny restarts the worker,
Dask reruns the lost task, and the build must end exactly like the undisturbed reference. Nothing
waits on timing: the kill hits a task that is provably at that point.

Short form: one kill per stage mid-write (keyword candidates parquet open, first sample in the download
tar, first batch in the embeddings memmap), the scoring one in a ``retry_failed`` build. Long form
(``RS5M_FUZZ_LONG=1``): the scoring kill in a plain build, just before the done marker, other
partitions, a second kill of the retried task, the worker running the ``filter-keywords`` Prefect task,
and a partition that kills every worker.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import psutil
import pytest
from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

from rs5m.core.stats import PartitionStats

from . import LONG
from ._builds import REPO, VERSION, Outcome, World, assert_same, free_port, outcome, run_build, stop_processes

BLOCK_S = 600.0  # a claimed worker waits this long to be killed, then fails its task loudly
WAIT_S = 600.0  # the test waits this long for a worker to reach the kill point
ALLOWED = int(dask.config.get("distributed.scheduler.allowed-failures"))  # worker deaths a task survives
STATS_DIRS = {"keyword": "keyword/_stats", "download": "download/_stats", "scoring": "outlier_score/_stats"}
ENTRIES = {  # each stage's per-partition function, as the task code calls it
    "keyword": "rs5m.pipeline.ingest:run",  # the registry entry: (layout, source, partition, cfg)
    "download": "rs5m.pipeline.download.stage:download_candidates",
    "scoring": "rs5m.pipeline.outlier.scores:score_partition",
}
MID_POINTS = {
    # one pass: the candidates parquet open, the first batch's keyword mask computed, nothing written
    "keyword": "rs5m.pipeline.keywords.matcher:KeywordMatcher.mask",
    "download": "img2dataset.writer:WebDatasetSampleWriter.write",  # one sample in the shard's tar
    "scoring": "rs5m.pipeline.outlier.scores:ClipScorer.embed_images",  # first batch of the embeddings memmap
}
BEFORE_MARKER = "rs5m.core.stats:PartitionStats.write"  # every output written, the done marker not yet

# One cluster for the module: under pytest-xdist its tests run on one worker, one after the other.
pytestmark = pytest.mark.xdist_group("worker-kill-cluster")

_LOCAL = threading.local()  # (stage, source/partition) the worker thread is in, set by the entry


@dataclass(frozen=True)
class KillPoint:
    """Kill the worker at ``point`` ("module:attr" or "module:Class.attr") inside ``stage``'s function
    for a ``source`` partition: once it returned (``after``) or just before it runs. ``times``: kills of
    that partition, the later ones while its task is retried. ``stage=None``: wherever ``point`` runs."""

    name: str
    stage: str | None
    point: str
    source: str | None = None
    after: bool = True
    times: int = 1
    retry_failed: bool = False  # the build's parameter


def _resolve(target: str) -> tuple[Any, str]:
    module, _, path = target.partition(":")
    owner, _, attr = path.rpartition(".")
    mod = importlib.import_module(module)
    return (getattr(mod, owner) if owner else mod), attr


def _publish(path: Path, obj: dict[str, Any], link: bool = False) -> bool:
    """Write JSON to ``path`` atomically; ``link``: only if ``path`` does not exist yet (else False)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj), encoding="utf-8")
    try:
        os.link(tmp, path) if link else os.replace(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


class KillPlugin(WorkerPlugin):
    """Patches one ``KillPoint`` and the stages' entry records into a worker process; teardown undoes it."""

    def __init__(self, point: KillPoint, folder: str) -> None:
        self.point, self.folder = point, Path(folder)
        self._saved: list[tuple[Any, str, Any]] = []

    def setup(self, worker: Any) -> None:
        (self.folder / "entered").mkdir(parents=True, exist_ok=True)
        for stage, entry in ENTRIES.items():
            self._patch(entry, functools.partial(self._entry, stage))
        self._patch(self.point.point, self._stop_at)

    def teardown(self, worker: Any) -> None:
        for owner, attr, orig in reversed(self._saved):
            setattr(owner, attr, orig)
        self._saved.clear()

    def _patch(self, target: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        owner, attr = _resolve(target)
        orig = inspect.getattr_static(owner, attr)
        self._saved.append((owner, attr, orig))
        setattr(owner, attr, functools.wraps(orig)(wrap(orig)))

    def _entry(self, stage: str, orig: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(orig)

        def entry(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind_partial(*args, **kwargs).arguments
            key = f"{bound['source']}/{bound.get('partition', bound.get('part'))}"
            record = {"stage": stage, "key": key, "pid": os.getpid(), "ns": time.time_ns()}
            _publish(self.folder / "entered" / f"{record['ns']}-{os.getpid()}.json", record)
            outer, _LOCAL.key = getattr(_LOCAL, "key", None), (stage, key)
            try:
                return orig(*args, **kwargs)
            finally:
                _LOCAL.key = outer

        return entry

    def _stop_at(self, orig: Callable[..., Any]) -> Callable[..., Any]:
        def point(*args: Any, **kwargs: Any) -> Any:
            if not self.point.after:
                self._maybe_stop()
            result = orig(*args, **kwargs)
            if self.point.after:
                self._maybe_stop()
            return result

        return point

    def _maybe_stop(self) -> None:
        p = self.point
        stage, key = getattr(_LOCAL, "key", None) or (None, p.name)
        if stage != p.stage or (p.source is not None and not key.startswith(f"{p.source}/")):
            return
        for i in range(p.times):
            info = {"pid": os.getpid(), "key": key, "kill": i}
            if i and json.loads((self.folder / "pid-0.json").read_text(encoding="utf-8"))["key"] != key:
                return  # later kills only hit the retried partition
            if _publish(self.folder / f"pid-{i}.json", info, link=True):
                deadline = time.monotonic() + BLOCK_S
                while time.monotonic() < deadline:
                    time.sleep(0.05)
                raise RuntimeError(f"kill point {p.name}: worker {os.getpid()} was not killed in {BLOCK_S}s")


@dataclass
class Cluster:
    """The module's Dask cluster: scheduler address, a client, and the ``dask worker`` (nanny) processes."""

    address: str
    client: Client
    nannies: list[subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and two single-thread workers with nannies; workers import this module (the plugin)."""
    tmp, port = tmp_path_factory.mktemp("dask-kill"), free_port()
    address = f"tcp://127.0.0.1:{port}"
    # profiler off as in docker-compose.yml: on CPython 3.11 it can deadlock a worker (flows/build_rs5m.py)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO)}
    env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    common = ["--host", "127.0.0.1", "--dashboard-address", ":0"]
    cli = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port), *common]
    procs = [subprocess.Popen(cli, cwd=REPO, env=env)]
    cli = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", *common]
    procs += [subprocess.Popen([*cli, "--local-directory", str(tmp)], cwd=REPO, env=env) for _ in range(2)]
    try:
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=180)
            yield Cluster(address, client, procs[1:])
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def _markers(vdir: Path) -> dict[str, tuple[int, int]]:
    """Every done marker of the version: relative path -> (inode, mtime); a rewrite changes the inode."""
    out = {}
    for p in vdir.glob("*/_stats/**/*.json"):
        with contextlib.suppress(FileNotFoundError):  # replaced or removed while listed
            out[str(p.relative_to(vdir))] = (p.stat().st_ino, p.stat().st_mtime_ns)
    return out


def _kill_each(point: KillPoint, folder: Path, vdir: Path, done: threading.Event) -> list[dict[str, Any]]:
    """For each claimed kill: snapshot the done markers, SIGKILL the worker, see it gone (in a thread)."""
    kills = []
    for i in range(point.times):
        path, deadline = folder / f"pid-{i}.json", time.monotonic() + WAIT_S
        while not path.exists():
            if done.is_set() or time.monotonic() > deadline:
                return kills
            time.sleep(0.05)
        info = json.loads(path.read_text(encoding="utf-8"))
        info.update(parent=psutil.Process(info["pid"]).ppid(), markers=_markers(vdir), ns=time.time_ns())
        os.kill(info["pid"], signal.SIGKILL)
        kills.append({**info, "dead": _gone(info["pid"])})
    return kills


def _gone(pid: int, timeout: float = 60) -> bool:
    """Whether ``pid`` has ended (reaped, or a zombie its nanny has not reaped yet) within ``timeout``."""
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True


def _entries(folder: Path) -> list[dict[str, Any]]:
    """Stage-function entries recorded by the workers, oldest first."""
    records = [json.loads(p.read_text(encoding="utf-8")) for p in (folder / "entered").glob("*.json")]
    return sorted(records, key=lambda e: e["ns"])


def _mid(stage: str, source: str, **kw: Any) -> KillPoint:
    suffix = "-retry-failed" if kw.get("retry_failed") else "-twice" if kw.get("times") else ""
    return KillPoint(f"{stage}-mid-{source}{suffix}", stage, MID_POINTS[stage], source, **kw)


# With retry_failed: a kill during scoring must not make Dask rerun finished downloads (their futures
# are not held past their stage, see flows/build_rs5m.py). That scoring kill is the short form's, so the
# plain one (same kill point, fewer checks) is long form only.
RETRY = _mid("scoring", "laion2b", retry_failed=True)
# A kill mid-download is in the short form of tests/faults/test_build_kill.py (the whole build killed).
SHORT = [_mid("keyword", "laion2b"), RETRY]
LONG_POINTS = [
    _mid("download", "laion2b"),
    _mid("scoring", "laion2b"),
    *(KillPoint(f"{s}-before-marker-coyo700m", s, BEFORE_MARKER, "coyo700m", after=False) for s in ENTRIES),
    *(_mid(stage, "laioncoco") for stage in ENTRIES),
    *(_mid(stage, "laion400m", times=2) for stage in ENTRIES),
    # the worker running a barrier task (dedup over every source), once its decisions and markers are
    # written: the retried task finds them done and rewrites nothing
    KillPoint("dedup-barrier-host", None, "rs5m.pipeline.dedup.stage:run_dedup"),
    # a partition that kills every worker it runs on: Dask gives up (KilledWorker), the build fails
    # loudly, and running it again finishes the version
    KillPoint("download-poison-laion2b", "download", MID_POINTS["download"], "laion2b", times=ALLOWED + 1),
]
POINTS = [
    *(pytest.param(p, id=p.name) for p in SHORT),
    *(
        pytest.param(p, id=p.name, marks=pytest.mark.skipif(not LONG, reason="long form: RS5M_FUZZ_LONG=1"))
        for p in LONG_POINTS
    ),
]


@pytest.mark.parametrize("point", POINTS)
def test_worker_killed_mid_stage(
    point: KillPoint,
    cluster: Cluster,
    faults_world: World,
    reference: Outcome,
    tmp_path: Path,
    prefect_harness: None,
) -> None:
    cluster.client.wait_for_workers(2, timeout=180)
    folder, root = tmp_path / "kill", tmp_path / "data"
    vdir = root / "versions" / VERSION
    name = f"kill-{point.name}"
    cluster.client.register_plugin(KillPlugin(point, str(folder)), name=name)
    done = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        killer = pool.submit(_kill_each, point, folder, vdir, done)
        params = {"dask_address": cluster.address, "retry_failed": point.retry_failed}
        failed = None
        try:
            try:
                run_build(faults_world.config, root, **params)
            except Exception as exc:  # expected only where a partition killed more workers than allowed
                if point.times <= ALLOWED or type(exc).__name__ != "KilledWorker":
                    raise
                failed = exc
                run_build(faults_world.config, root, **params)  # the same command again finishes it
        finally:
            done.set()
            cluster.client.unregister_worker_plugin(name)
        kills = killer.result()
    assert len(kills) == point.times, f"{point.name}: the kill point was reached {len(kills)}x"
    killed = {k["pid"] for k in kills}
    assert all(k["dead"] for k in kills), f"killed workers still alive: {kills}"
    assert {k["parent"] for k in kills} <= {p.pid for p in cluster.nannies}, "not a nanny's worker"
    assert not killed & set(cluster.client.run(os.getpid).values())
    assert (failed is not None) == (point.times > ALLOWED), f"the build failed on {failed!r}"

    assert_same(outcome(root), reference)
    assert not list(vdir.rglob(".*.tmp"))  # writes cut off by the kill left no temporary file behind

    # Work finished before a kill was not redone: its done marker is the very same file.
    after = _markers(vdir)
    for kill in kills:
        changed = sorted(p for p, st in kill["markers"].items() if after.get(p) != st)
        assert not changed, f"finished before kill {kill['kill']} but redone: {changed}"
    if point.retry_failed:  # there a rerun of a finished earlier stage's task is not a no-op
        earlier = list(ENTRIES)[: list(ENTRIES).index(str(point.stage))]
        rerun = [e for e in _entries(folder) if e["stage"] in earlier and e["ns"] > kills[0]["ns"]]
        assert not rerun, f"finished tasks of earlier stages ran again after the kill: {rerun}"
    if point.stage is None:
        return
    # The killed partition was redone to the end, by a worker that was not killed.
    key = kills[0]["key"]
    assert {k["key"] for k in kills} == {key}
    source, part = key.split("/", 1)
    marker = f"{STATS_DIRS[point.stage]}/{source}/{part}.json"
    assert all(marker not in k["markers"] for k in kills)
    stats = PartitionStats.read(vdir / marker)
    assert (stats.source, stats.partition) == (source, part)
    runs = [e["pid"] for e in _entries(folder) if (e["stage"], e["key"]) == (point.stage, key)]
    assert runs[: point.times] == [k["pid"] for k in kills]
    assert len(runs) > point.times and runs[-1] not in killed
