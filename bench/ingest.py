"""Benchmark the one-pass read + keyword filter against the raw read of the same columns and two passes.

    python bench/ingest.py [--rows N] [--rounds R] [--out DIR]

Writes (once, cached in DIR) metadata files in official layouts with LAION-like captions (~0.1 % keyword
hits, see bench/keyword_scan.py): a LAION2B-en parquet part (``SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH,
LICENSE, NSFW, similarity``) and a CC12M TSV (``url<TAB>caption``, no header). For each, in one process on
one core, best of R rounds, rows per CPU second:

  (raw)     reading the columns the reader uses (pyarrow, streamed): all 8 of a LAION part, both of a TSV;
  (ours)    ``rs5m.pipeline.ingest.ingest_file``: read, validate, keyword-filter, write rejects + candidates;
  (2-pass)  the old way in the same run: ``keep_all_rows`` ingest (a normalised copy of every row) and then
            ``filter_partition`` over that copy.

It prints ours/raw (target >= 0.7 for parquet), ours/2-pass, bytes written per input row and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.keyword_scan import HIT_PHRASES, _caption_pool  # noqa: E402
from rs5m.config import IngestConfig, KeywordConfig, SourceInput  # noqa: E402
from rs5m.core.io import atomic_path  # noqa: E402
from rs5m.pipeline.ingest import ingest_file, ingest_paths  # noqa: E402
from rs5m.pipeline.keywords.stage import filter_partition  # noqa: E402

ROW_GROUP = 500_000


def _captions(rng: np.random.Generator, n: int, pool: pa.Array, hits: pa.Array) -> pa.Array:
    is_hit = pa.array(rng.random(n) < 0.001)
    return pc.if_else(
        is_hit,
        hits.take(pa.array(rng.integers(0, len(hits), n))),
        pool.take(pa.array(rng.integers(0, len(pool), n))),
    )


def _pools(rng: np.random.Generator) -> tuple[pa.Array, pa.Array]:
    pool = _caption_pool(rng, 200_000)
    phrases = pa.array([HIT_PHRASES[i] for i in rng.integers(0, len(HIT_PHRASES), 4_000)])
    bases = pool.take(pa.array(rng.integers(0, len(pool), 4_000)))
    return pool, pc.binary_join_element_wise(phrases, bases, " ")


def make_laion(path: Path, rows: int, seed: int = 0) -> None:
    """A LAION2B-en part in the original layout."""
    rng = np.random.default_rng(seed)
    pool, hits = _pools(rng)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, _LAION, compression="snappy") as writer:
        for lo in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - lo)
            ids = pa.array(np.arange(lo, lo + n, dtype=np.int64))
            urls = pc.binary_join_element_wise(
                "https://img.example.com/i/", pc.cast(ids, pa.string()), ".jpg", ""
            )
            table = pa.table(
                [
                    ids,
                    urls,
                    _captions(rng, n, pool, hits),
                    pa.array(rng.integers(64, 2048, n)),
                    pa.array(rng.integers(64, 2048, n)),
                    pa.nulls(n, pa.string()),
                    pa.array(np.full(n, "UNLIKELY")),
                    pa.array(rng.random(n)),
                ],
                schema=_LAION,
            )
            writer.write_table(table, row_group_size=ROW_GROUP)


_LAION = pa.schema(
    [
        ("SAMPLE_ID", pa.int64()),
        ("URL", pa.string()),
        ("TEXT", pa.string()),
        ("HEIGHT", pa.int64()),
        ("WIDTH", pa.int64()),
        ("LICENSE", pa.string()),
        ("NSFW", pa.string()),
        ("similarity", pa.float64()),
    ]
)


def make_cc12m(path: Path, rows: int, seed: int = 1) -> None:
    """A CC12M TSV: ``url<TAB>caption``, no header."""
    rng = np.random.default_rng(seed)
    pool, hits = _pools(rng)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for lo in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - lo)
            caps = pc.replace_substring(_captions(rng, n, pool, hits), "\t", " ")
            urls = pc.binary_join_element_wise(
                "https://cc.example.org/", pc.cast(pa.array(np.arange(lo, lo + n)), pa.string()), ""
            )
            lines = pc.binary_join_element_wise(urls, caps, "\t")
            fh.write(("\n".join(lines.to_pylist()) + "\n").encode())


def raw_parquet(path: Path) -> int:
    pf = pq.ParquetFile(path, pre_buffer=False)
    return sum(b.num_rows for b in pf.iter_batches(batch_size=65_536))  # every column the reader uses


def raw_tsv(path: Path) -> int:
    opts = pacsv.ReadOptions(column_names=["url", "caption"], block_size=4 << 20)
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False)
    return sum(b.num_rows for b in pacsv.open_csv(path, read_options=opts, parse_options=parse))


def _cpu(fn: Callable[[], int], rounds: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(rounds):
        t = time.process_time()
        rows = fn()
        best = min(best, time.process_time() - t)
    return best, rows


def _written(vdir: Path) -> int:
    return sum(p.stat().st_size for p in vdir.rglob("*") if p.is_file())


def bench_source(source: str, path: Path, raw: Callable[[Path], int], rounds: int, work: Path) -> dict:
    """Time raw read, one pass and two passes over one file; return the numbers."""
    src = SourceInput(name=source, files=[str(path)])

    def one_pass(keep: bool = False) -> Callable[[], int]:
        def go() -> int:
            vdir = work / f"{source}-{'keep' if keep else 'one'}" / "versions" / "b"
            shutil.rmtree(vdir, ignore_errors=True)
            return ingest_file(
                src, str(path), vdir, IngestConfig(keep_all_rows=keep), "p", KeywordConfig()
            ).n_in

        return go

    def two_pass() -> int:
        n = one_pass(keep=True)()
        p = ingest_paths(work / f"{source}-keep" / "versions" / "b", source, "p")
        out = work / "two-pass.parquet"
        stats = work / "two-pass.json"
        stats.unlink(missing_ok=True)
        filter_partition(p.output, out, stats, cfg=KeywordConfig(), source=source, partition="p")
        return n

    t_raw, rows = _cpu(lambda: raw(path), rounds)
    t_one, _ = _cpu(one_pass(), rounds)
    t_two, _ = _cpu(two_pass, rounds)
    written = _written(work / f"{source}-one")
    return {
        "source": source,
        "rows": rows,
        "raw": rows / t_raw,
        "ours": rows / t_one,
        "two_pass": rows / t_two,
        "bytes_per_row": written / rows,
        "bytes_per_row_two_pass": _written(work / f"{source}-keep") / rows,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ingest")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "laion2b": (args.out / f"laion-{args.rows}.parquet", make_laion, raw_parquet),
        "cc12m": (args.out / f"cc12m-{args.rows}.tsv", make_cc12m, raw_tsv),
    }
    print(
        f"{'source':8} {'rows':>10} {'raw r/cpu-s':>12} {'ours':>10} {'2-pass':>10} {'ours/raw':>8} "
        f"{'ours/2p':>8} {'B/row':>7} {'B/row 2p':>8}"
    )
    for source, (path, make, raw) in files.items():
        if not path.exists():
            make(path, args.rows)
        r = bench_source(source, path, raw, args.rounds, args.out / "work")
        print(
            f"{source:8} {r['rows']:>10,} {r['raw']:>12,.0f} {r['ours']:>10,.0f} {r['two_pass']:>10,.0f} "
            f"{r['ours'] / r['raw']:>8.2f} {r['ours'] / r['two_pass']:>8.2f} {r['bytes_per_row']:>7.2f} "
            f"{r['bytes_per_row_two_pass']:>8.1f}"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
