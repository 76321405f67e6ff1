"""Scale run of read + keyword filter: a generated PUB11 world in all 11 formats on a local Dask cluster.

    python bench/scale.py [--rows 50000000] [--workers 2] [--out DIR] [--rows-per-partition 2000000]

Generates (once, cached in DIR) metadata for the 11 sources in their official layouts with the sources'
PUB11 shares of the rows (LAION2B 55 %, COYO 18 %, LAION-COCO 16 %, LAION400M 10 %, the rest < 1 % each):
the four parquet sources vectorised in several parts (LAION-like captions, ~0.1 % keyword hits), the seven
text/JSON sources through the sample world's writers (``rs5m.sample``, scaled plans). Then it plans the
inputs (pieces of ``--rows-per-partition`` rows) and runs the ingest stage (one pass: read, validate,
keyword-filter) over every partition on a ``distributed.LocalCluster`` of ``--workers`` single-threaded
process workers, and prints: rows, rows per CPU second per core (from the per-partition timings), wall,
peak RSS per worker, bytes written per input row, and the projection for 3.7 B rows on one 16-core node
and on ten.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.ingest import _captions, _pools  # noqa: E402

SHARES = {
    "laion2b": 2.3e9,
    "coyo700m": 746e6,
    "laioncoco": 662e6,
    "laion400m": 413e6,
    "wit": 37e6,
    "yfcc15m": 15e6,
    "cc12m": 12e6,
    "redcaps": 12e6,
    "cc3m": 3.3e6,
    "sbu": 1e6,
    "vg": 0.1e6,
}
PART_ROWS = 5_000_000
GROUP = 500_000


def _parquet_part(path: Path, n: int, seed: int, layout: str) -> None:
    rng = np.random.default_rng(seed)
    pool, hits = _pools(rng)
    with pq.ParquetWriter(path, _schema(layout), compression="snappy") as writer:
        for lo in range(0, n, GROUP):
            k = min(GROUP, n - lo)
            ids = pa.array(np.arange(seed * 10**10 + lo, seed * 10**10 + lo + k, dtype=np.int64))
            urls = pc.binary_join_element_wise(
                "https://img.example.com/", pc.cast(ids, pa.string()), ".jpg", ""
            )
            cap = _captions(rng, k, pool, hits)
            dims = [pa.array(rng.integers(64, 2048, k)), pa.array(rng.integers(64, 2048, k))]
            if layout == "coyo":
                cols = [ids, urls, cap, *dims]
            elif layout == "laioncoco":
                cols = [urls, cap, cap, pa.array([[c] for c in cap.to_pylist()]), *dims]
            else:
                cols = [ids, urls, cap, *dims, pa.nulls(k, pa.string()), pa.array(np.full(k, "UNLIKELY"))]
            writer.write_table(pa.Table.from_arrays(cols, schema=_schema(layout)), row_group_size=GROUP)


def _schema(layout: str) -> pa.Schema:
    if layout == "coyo":
        return pa.schema(
            [
                ("id", pa.int64()),
                ("url", pa.string()),
                ("text", pa.string()),
                ("width", pa.int64()),
                ("height", pa.int64()),
            ]
        )
    if layout == "laioncoco":
        return pa.schema(
            [
                ("URL", pa.string()),
                ("TEXT", pa.string()),
                ("top_caption", pa.string()),
                ("all_captions", pa.list_(pa.string())),
                ("WIDTH", pa.int64()),
                ("HEIGHT", pa.int64()),
            ]
        )
    return pa.schema(
        [
            ("SAMPLE_ID", pa.int64()),
            ("URL", pa.string()),
            ("TEXT", pa.string()),
            ("HEIGHT", pa.int64()),
            ("WIDTH", pa.int64()),
            ("LICENSE", pa.string()),
            ("NSFW", pa.string()),
        ]
    )


def make_world(out: Path, rows: int) -> dict[str, list[str]]:
    """Write the world (cached); return each source's files."""
    from rs5m.sample import write_world
    from rs5m.sample.plan import SourcePlan

    total = sum(SHARES.values())
    files: dict[str, list[str]] = {}
    layouts = {"laion2b": "laion", "laion400m": "laion", "coyo700m": "coyo", "laioncoco": "laioncoco"}
    for i, (source, layout) in enumerate(layouts.items()):
        n = int(rows * SHARES[source] / total)
        parts = max(1, math.ceil(n / PART_ROWS))
        folder = out / source
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(parts):
            path = folder / f"part-{j:05d}-c000.snappy.parquet"
            if not path.exists():
                _parquet_part(path, min(PART_ROWS, n - j * PART_ROWS), 100 * i + j, layout)
            files[source] = [*files.get(source, []), str(path)]
    small = {s: max(200, int(rows * SHARES[s] / total)) for s in SHARES if s not in layouts}
    world = out / "small"
    if not (world / "expected.json").exists():
        plans = {
            s: SourcePlan(n, max(1, n // 700), {}, near_misses=0, missing_images=0) for s, n in small.items()
        }
        write_world(world, seed=0, images=False, plans=plans)
    import yaml

    build = yaml.safe_load((world / "build.yaml").read_text())
    for src in build["sources"]:
        if src["name"] not in layouts:
            files[src["name"]] = [str(world / f) for f in src["files"]]
            opts = src.get("options", {})
            files[src["name"] + ":options"] = {
                k: str(world / v) if k.endswith("_file") else v for k, v in opts.items()
            }
    return files


def _worker_peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows-per-partition", type=int, default=2_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "scale")
    args = ap.parse_args(argv)
    from distributed import Client, LocalCluster

    from rs5m.config import BuildConfig, SourceInput
    from rs5m.core.version import prepare_version
    from rs5m.pipeline import plan, registry
    from rs5m.pipeline.timing import actual_rates

    world = args.out / f"world-{args.rows}"
    t0 = time.perf_counter()
    files = make_world(world, args.rows)
    print(f"world: {time.perf_counter() - t0:.0f} s to make or find")
    sources = [
        SourceInput(name=s, files=f, options=files.get(f"{s}:options", {}))
        for s, f in files.items()
        if ":" not in s
    ]
    cfg = BuildConfig(
        version=f"scale-{int(time.time())}",
        root=str(args.out / "root"),
        sources=sources,
        ingest={"rows_per_partition": args.rows_per_partition},
    )
    prepare_version(cfg)
    parts = plan.write_plan(cfg.layout(), plan.plan_inputs(cfg))
    stage = registry.stage(registry.PUB11[0].name)

    def one(part: tuple[str, str]) -> int:
        return stage.run_partition(cfg.layout(), part[0], part[1], cfg).n_in

    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as lc,
        Client(lc) as client,
    ):
        start = time.perf_counter()
        client.gather(client.map(one, parts, pure=False))
        wall = time.perf_counter() - start
        peaks = client.run(_worker_peak)
    rates = actual_rates(cfg.layout())["ingest+keyword"]
    written = sum(p.stat().st_size for p in cfg.layout().dir.rglob("*") if p.is_file())
    rows, per_core = rates["work"], rates["work"] / max(rates["cpu_s"], 1e-9)
    print(f"rows {rows:,} in {len(parts)} partitions, wall {wall:.0f} s on {args.workers} workers")
    print(
        f"rows per CPU-s per core {per_core:,.0f}; peak RSS per worker {max(peaks.values()):.0f} MB; "
        f"written {written / rows:.2f} B per input row ({written / 1e6:.1f} MB)"
    )
    for nodes in (1, 10):
        minutes = 3.7e9 / (per_core * 16 * nodes) / 60
        gb = 3.7e9 * written / rows / 1e9
        print(f"projection, 3.7 B rows on {nodes} x 16 cores: {minutes:.1f} min, {gb:.1f} GB written")


if __name__ == "__main__":
    main()
