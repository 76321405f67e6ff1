"""Benchmark the orchestration cost per partition: the real Prefect + Dask composition over 20 vs 200 inputs.

    python bench/orchestration.py [--small 20] [--large 200] [--workers 2] [--per-task N]

Writes tiny CC12M TSV files (50 rows, no keyword hit: the library work per file is ~10 ms), then runs
``flows._compose.run_partition_stages`` for the ingest stage in a Prefect flow on a DaskTaskRunner
(LocalCluster, process workers), once over the small set and once over the large set, on one local Prefect
API. It prints wall and CPU seconds (this process and its children: the API server, the Dask scheduler and
workers) of each run, and the cost per extra partition: (large - small) / (large_n - small_n). The library
work alone is timed in the same run with ``run_local`` (no Prefect, no Dask) for the ratio.
Target (issue #19): <= 0.2 s wall and <= 0.3 CPU-s per extra partition.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def write_inputs(folder: Path, n: int) -> list[str]:
    """``n`` CC12M TSV files of 50 rows without a keyword."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f"cc12m-{i:04d}.tsv"
        path.write_text(
            "".join(f"https://ex.org/{i}/{j}.jpg\ta photo of a red house {j}\n" for j in range(50))
        )
        files.append(str(path))
    return files


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu() -> float:
    """CPU seconds of this process, its reaped children and its live children (the local API server, the
    Dask scheduler; the workers are measured on the workers)."""
    me = psutil.Process()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = sum(me.cpu_times()[:2]) + reaped.ru_utime + reaped.ru_stime
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def run(files: list[str], root: Path, workers: int, per_task: int | None, label: str) -> tuple[float, float]:
    """Wall and CPU seconds of the ingest stage over ``files`` through Prefect + Dask."""
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from flows._compose import run_partition_stages
    from rs5m.config import BuildConfig, SourceInput
    from rs5m.core.schema import StageName
    from rs5m.core.version import prepare_version
    from rs5m.pipeline import plan, registry

    cfg = BuildConfig(
        version=label, root=str(root), sources=[SourceInput(name="cc12m", files=files)],
        dask={"n_workers": workers, "threads_per_worker": 1, "partitions_per_task": per_task},
    )  # fmt: skip
    prepare_version(cfg)
    parts = plan.write_plan(cfg.layout(), plan.plan_inputs(cfg))
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    runner = DaskTaskRunner(address=cluster.scheduler_address)

    @flow(name=f"bench-orchestration-{label}", task_runner=runner)
    def bench_flow() -> int:
        return len(run_partition_stages([registry.stage(StageName.INGEST)], cfg, parts))

    before = sum(client.run(_self_cpu).values())
    wall, cpu = time.perf_counter(), _cpu()
    done = bench_flow()
    assert done == len(files), done  # one stats (the keyword stage's) per partition
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    cpu += sum(client.run(_self_cpu).values()) - before  # the workers' own CPU
    client.close()
    cluster.close()
    return wall, cpu


def library_only(files: list[str], root: Path) -> float:
    """CPU seconds of the same work without Prefect or Dask."""
    from rs5m.config import BuildConfig, SourceInput
    from rs5m.core.version import prepare_version
    from rs5m.pipeline import registry
    from rs5m.pipeline.local import run_local

    cfg = BuildConfig(version="lib", root=str(root), sources=[SourceInput(name="cc12m", files=files)])
    prepare_version(cfg)
    cpu = time.process_time()
    run_local(cfg, [registry.PUB11[0]])
    return time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=20)
    ap.add_argument("--large", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-task", type=int, default=None, help="partitions per task (default: auto)")
    args = ap.parse_args(argv)
    from flows.local_api import local_api

    with tempfile.TemporaryDirectory(prefix="rs5m-orch-") as tmp, local_api():
        base = Path(tmp)
        small, large = write_inputs(base / "small", args.small), write_inputs(base / "large", args.large)
        lib = library_only(large, base / "lib-root")
        res = {n: run(f, base / f"root-{n}", args.workers, args.per_task, f"n{n}") for n, f in
               ((args.small, small), (args.large, large))}  # fmt: skip
    (ws, cs), (wl, cl) = res[args.small], res[args.large]
    extra = args.large - args.small
    print(f"{'inputs':>7} {'wall s':>8} {'CPU s':>8}")
    for n, (w, c) in res.items():
        print(f"{n:>7} {w:>8.2f} {c:>8.2f}")
    print(
        f"per extra partition: {(wl - ws) / extra:.3f} s wall, {(cl - cs) / extra:.3f} CPU-s "
        f"(library alone: {lib / args.large:.3f} CPU-s per partition; target <= 0.2 s wall, <= 0.3 CPU-s)"
    )


if __name__ == "__main__":
    main()
