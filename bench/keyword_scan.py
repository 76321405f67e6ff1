"""Benchmark the RS keyword filter against reading the captions alone and against pandas.

    python bench/keyword_scan.py [--rows N] [--pandas-rows M] [--out DIR] [--rounds R]

Writes (once, cached in DIR) a LAION-like ingest partition with ``SAMPLE_SCHEMA``: N rows, row groups of
1M rows, captions mostly 5-40 words of alt text plus ~10% LAION-COCO-length captions (50-300 words),
near-miss words ("aerospace", "living space", "satellite dish", ...) and ~0.1% keyword hits. Then, in
one process on one core, it times over the same batches:

  (a) reading the caption column alone;
  (b) reading it and running the matcher (mask, then per-pattern hits on the matching rows), with the
      literal prefilter when ``ahocorasick_rs`` is installed (RE2 on the candidate rows only);
  (b') the same with ``KeywordMatcher(prefilter=False)``: one RE2 pass over every batch;
  (b2) the real ``filter_partition`` (all columns read, kept rows written, stats) and (a2) reading all
       columns, for context;
  (c) pandas ``Series.str.contains(big_regex, case=False)`` on the first M captions, in memory, with
      the naive regex (alternation of the escaped patterns) and with one that has our rules.

Rates are rows per CPU second (one thread, so per core), best of R rounds; the ratios compare numbers
from this run only. Peak RSS is sampled per phase.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rs5m.config import KeywordConfig  # noqa: E402
from rs5m.config.build import DEFAULT_PATTERNS  # noqa: E402
from rs5m.core.io import atomic_path  # noqa: E402
from rs5m.core.schema import SAMPLE_SCHEMA  # noqa: E402
from rs5m.pipeline.keywords.matcher import KeywordMatcher  # noqa: E402
from rs5m.pipeline.keywords.stage import READ_BUFFER, filter_partition  # noqa: E402

ROW_GROUP = 1_000_000
COMMON = (
    "the a of and in on with for to at by from is an photo image stock picture vector illustration view "
    "background white black red blue green house home garden city street car new style design art wall old "
    "woman man girl boy dog cat night sky sun sea beach mountain tree river road building interior kitchen "
    "bedroom dress shirt shoes watch book cover poster logo icon wedding christmas summer winter flower "
    "modern vintage beautiful happy little big small free best top sale black-and-white hd 4k png jpg"
).split()
# Words that share letters with the patterns, so the matcher sees realistic near misses.
NEAR = "space earth satellite aerial aerospace google planet dove remote sensing map modern landscape".split()
HIT_PHRASES = (
    ["aerial view of", "Aerial View", "aerial photography", "AERIAL PHOTO", "aerial imagery"] * 6
    + ["satellite image", "Satellite imagery of", "satellite view", "satellite map", "Google Earth"] * 2
    + ["remote sensing", "Landsat 8", "Sentinel-2", "sentinel 2", "USGS", "MODIS", "Maxar", "space photo"]
)


def _fixed(prefix: bytes, body: np.ndarray, suffix: bytes) -> pa.Array:
    """Strings ``prefix + body[i] + suffix`` from an ``(n, k)`` uint8 array, built without Python loops."""
    n, k = body.shape
    rows = np.empty((n, len(prefix) + k + len(suffix)), np.uint8)
    rows[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    rows[:, len(prefix) : len(prefix) + k] = body
    rows[:, len(prefix) + k :] = np.frombuffer(suffix, np.uint8)
    offsets = np.arange(n + 1, dtype=np.int32) * rows.shape[1]
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(rows.tobytes()))


def _hex(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.frombuffer(b"0123456789abcdef", np.uint8)[rng.integers(0, 16, (n, k))]


def _caption_pool(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` distinct-ish captions from a Zipf vocabulary, assembled byte-wise with numpy."""
    syll = "ka lo mi ne ru ta shi ven dor bel gra pin sol mar tek zu fa rio lan cor eth".split()
    synth = {"".join(rng.choice(syll, rng.integers(2, 5))) for _ in range(30_000)}
    vocab = [w.encode() for w in COMMON + NEAR + sorted(synth)]
    rank = np.arange(1, len(vocab) + 1, dtype=np.float64)
    rank[len(COMMON) : len(COMMON) + len(NEAR)] = rng.uniform(300, 3000, len(NEAR))  # rarer near misses
    weights = 1.0 / rank
    table = np.repeat(
        np.arange(len(vocab)), np.maximum(1, np.round(weights / weights.sum() * 2**22)).astype(int)
    )
    wlen = np.array([len(w) + 1 for w in vocab])  # + separator
    wstart = np.concatenate([[0], np.cumsum(wlen)[:-1]])
    blob = np.frombuffer(b"".join(w + b" " for w in vocab), np.uint8)
    nwords = rng.integers(5, 41, n)
    long = rng.random(n) < 0.10
    nwords[long] = rng.integers(50, 301, long.sum())
    chunks = []
    for lo in range(0, n, 20_000):
        nw = nwords[lo : lo + 20_000]
        tok = table[rng.integers(0, len(table), nw.sum())]
        tl = wlen[tok]
        ends = np.cumsum(tl)
        idx = np.repeat(wstart[tok] - (ends - tl), tl) + np.arange(ends[-1])
        data = blob[idx]
        row_end = ends[np.cumsum(nw) - 1]
        data = np.delete(data, row_end - 1)  # drop each caption's trailing space
        offsets = np.concatenate([[0], row_end - np.arange(1, len(nw) + 1)]).astype(np.int32)
        chunks.append(
            pa.StringArray.from_buffers(len(nw), pa.py_buffer(offsets), pa.py_buffer(data.tobytes()))
        )
    return pa.concat_arrays(chunks)


def make_data(path: Path, rows: int, seed: int = 0) -> None:
    """Write the synthetic partition (see module docstring) atomically; a few seconds per million rows."""
    rng = np.random.default_rng(seed)
    pool = _caption_pool(rng, 200_000)
    phrases = pa.array([HIT_PHRASES[i] for i in rng.integers(0, len(HIT_PHRASES), 4_000)])
    bases = pool.take(pa.array(rng.integers(0, len(pool), 4_000)))
    front = rng.random(4_000) < 0.5
    hit_pool = pc.if_else(
        pa.array(front),
        pc.binary_join_element_wise(phrases, bases, " "),
        pc.binary_join_element_wise(bases, phrases, " "),
    )
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, SAMPLE_SCHEMA, compression="zstd") as writer:
        for lo in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - lo)
            is_hit = pa.array(rng.random(n) < 0.001)
            caption = pc.if_else(
                is_hit,
                hit_pool.take(pa.array(rng.integers(0, len(hit_pool), n))),
                pool.take(pa.array(rng.integers(0, len(pool), n))),
            )
            score = np.frombuffer(b"0123456789", np.uint8)[rng.integers(0, 10, (n, 4))]
            table = pa.table(
                [
                    _fixed(b"laion2b-", _hex(rng, n, 16), b""),
                    pa.array(np.full(n, "laion2b")),
                    _fixed(b"https://img.example.com/i/", _hex(rng, n, 24), b".jpg"),
                    caption,
                    pa.array(rng.integers(64, 2048, n, dtype=np.int32)),
                    pa.array(rng.integers(64, 2048, n, dtype=np.int32)),
                    _fixed(b'{"similarity": 0.', score, b', "punsafe": 0.01}'),
                ],
                schema=SAMPLE_SCHEMA,
            )
            writer.write_table(table, row_group_size=ROW_GROUP)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


class PeakRss:
    """Sample this process's RSS every 5 ms while the block runs; ``peak_mb`` is the largest seen."""

    def __enter__(self) -> PeakRss:
        self.peak_mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _open(path: Path) -> pq.ParquetFile:
    return pq.ParquetFile(path, buffer_size=READ_BUFFER, pre_buffer=False)  # as filter_partition


def read_captions(path: Path, batch: int) -> int:
    n = 0
    for b in _open(path).iter_batches(batch_size=batch, columns=["caption"], use_threads=False):
        n += b.num_rows
    return n


def scan(path: Path, batch: int, matcher: KeywordMatcher) -> int:
    kept = []
    for b in _open(path).iter_batches(batch_size=batch, columns=["caption"], use_threads=False):
        col = b.column(0)
        kept.append(col.filter(matcher.mask(col)))
    return int(matcher.hit_matrix(pa.chunked_array(kept, pa.string())).any(axis=1).sum())


def first_captions(path: Path, n: int) -> pa.Array:
    """The first ``n`` captions, read batch by batch so that the rest of the file is never loaded."""
    got: list[pa.Array] = []
    for b in _open(path).iter_batches(batch_size=min(n, ROW_GROUP), columns=["caption"]):
        got.append(b.column(0))
        if sum(map(len, got)) >= n:
            break
    return pa.concat_arrays(got).slice(0, n)


def read_all(path: Path, batch: int) -> int:
    return sum(b.num_rows for b in _open(path).iter_batches(batch_size=batch, use_threads=False))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--pandas-rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=131_072)
    args = ap.parse_args(argv)

    path = args.out / f"laion_like_{args.rows}.parquet"
    if not path.exists():
        t = time.perf_counter()
        make_data(path, args.rows)
        print(f"generated {path} in {time.perf_counter() - t:.1f}s (rerun for an RSS peak without it)")
    mb = 0.0
    for b in _open(path).iter_batches(batch_size=args.batch_size, columns=["caption"]):
        mb += pc.sum(pc.binary_length(b.column(0))).as_py() / 1e6
    rows, mb_per_row = args.rows, mb / args.rows
    print(f"{rows:,} rows, {mb:,.0f} MB of captions ({mb_per_row * 1e6:.0f} B/row)")

    matcher, re2_only = KeywordMatcher(), KeywordMatcher(prefilter=False)
    print(f"matcher: {matcher!r}")
    cpu: dict[str, float] = {}
    wall: dict[str, float] = {}
    rss: dict[str, float] = {}
    results: dict[str, object] = {}

    def measure(name: str, fn: Callable[[], object], sample_rss: bool = True) -> None:
        """Keep the best CPU time over calls (one thread, so CPU seconds = core seconds)."""
        with PeakRss() if sample_rss else contextlib.nullcontext() as peak:
            c, w = time.process_time(), time.perf_counter()
            results[name] = fn()
            c, w = time.process_time() - c, time.perf_counter() - w
        if c < cpu.get(name, float("inf")):
            cpu[name], wall[name] = c, w
        if peak is not None:
            rss[name] = max(rss.get(name, 0.0), peak.peak_mb)

    stats_dir = args.out / "run"

    def run_stage() -> object:
        marker = stats_dir / f"stats-{time.time_ns()}.json"  # a fresh marker: never resume
        return filter_partition(
            path, stats_dir / "kept.parquet", marker, cfg=KeywordConfig(), source="laion2b", partition="0"
        )

    print(f"RSS before the scans: {_rss_mb():,.0f} MB")
    for _ in range(args.rounds):  # interleaved, so that load from other processes hits both alike
        measure("a", lambda: read_captions(path, args.batch_size))
        measure("b", lambda: scan(path, args.batch_size, matcher))
        measure("b_re2", lambda: scan(path, args.batch_size, re2_only))
    measure("a2", lambda: read_all(path, args.batch_size))
    measure("b2", run_stage)
    n_hit = results["b"]
    assert results["b_re2"] == n_hit, (results["b_re2"], n_hit)
    assert results["b2"].n_out == n_hit, (results["b2"], n_hit)  # type: ignore[attr-defined]
    scan_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3

    pandas_caps = first_captions(path, args.pandas_rows).to_pandas()
    naive = "|".join(re.escape(p) for p in DEFAULT_PATTERNS)
    ours = r"(?<![^\W_])(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in DEFAULT_PATTERNS) + ")"
    m = len(pandas_caps)
    for name, rx in [("c_naive", naive), ("c_rules", ours)]:
        measure(name, lambda rx=rx: int(pandas_caps.str.contains(rx, case=False, regex=True).sum()), False)
        print(f"pandas {name}: {results[name]} of {m:,} rows match")

    def rate(name: str, n: int) -> float:
        return n / cpu[name]

    print("\n| step | CPU s | wall s | rows/s per core | caption MB/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, label, n in [
        ("a", "(a) read caption column", rows),
        ("b", "(b) read + keyword match", rows),
        ("b_re2", "(b') read + keyword match, RE2 alone", rows),
        ("a2", "(a2) read all 7 columns", rows),
        ("b2", "(b2) filter_partition (all columns, write, stats)", rows),
        ("c_naive", f"(c) pandas str.contains, naive alternation, {m:,} rows", m),
        ("c_rules", f"(c') pandas str.contains, our rules, {m:,} rows", m),
    ]:
        r, peak_mb = rate(name, n), f"{rss[name]:,.0f}" if name in rss else "-"
        print(
            f"| {label} | {cpu[name]:.2f} | {wall[name]:.2f} | {r:,.0f} | {r * mb_per_row:,.1f} | {peak_mb} |"
        )
    print(f"\nkept {n_hit:,} rows ({n_hit / rows:.3%}); ru_maxrss after the scans {scan_maxrss:,.0f} MB")
    ra, rb, ra2, rb2 = rate("a", rows), rate("b", rows), rate("a2", rows), rate("b2", rows)
    print(
        f"(b)/(a) = {rb / ra:.2f}   (b')/(a) = {rate('b_re2', rows) / ra:.2f}   (b2)/(a2) = {rb2 / ra2:.2f}"
    )
    print(f"(b)/(c) = {rb / rate('c_naive', m):.0f}x   (b)/(c') = {rb / rate('c_rules', m):.0f}x")


if __name__ == "__main__":
    main()
