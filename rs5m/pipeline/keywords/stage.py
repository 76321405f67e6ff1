"""Keyword candidates: the rows whose caption matches, deduplicated by uid within a partition, with the
patterns they hit, written once; and the keyword stage's counts.

``CandidateWriter`` is what the one-pass ingest (``rs5m.pipeline.ingest``) feeds while it reads a source
file; ``filter_partition`` filters an already normalised parquet the same way (kept for normalised copies
and benchmarks). A kept row whose uid was already kept in this partition (an exact duplicate record) is
removed as ``duplicate_record``; the dedup stage catches copies across partitions.
"""

from __future__ import annotations

import os
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from rs5m.config import KeywordConfig
from rs5m.core.io import atomic_path
from rs5m.core.schema import SAMPLE_SCHEMA, Reason, StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.keywords.matcher import KEYWORDS_FIELD, KeywordMatcher, filter_table

READ_BUFFER = 4 << 20  # parquet pages stream through a buffer this big; chunks are never read whole
CANDIDATE_SCHEMA = SAMPLE_SCHEMA.append(KEYWORDS_FIELD)


class CandidateWriter:
    """Writes matching ``SAMPLE_SCHEMA`` rows to ``out_path`` with their ``keywords``; counts hits.

    ``add`` takes rows already known to match (``matcher.mask``); they are buffered up to ``flush_rows`` and
    written with their per-pattern hits (the per-pattern regexes compile once per flush, not per batch).
    Memory: the buffer plus the uids kept so far (~0.1 % of a partition). Used as a context manager: the
    file is renamed into place only when the block succeeds, and is a valid empty file without hits.
    """

    def __init__(self, out_path: str | os.PathLike[str], matcher: KeywordMatcher, flush_rows: int = 100_000):
        self.matcher, self.flush_rows = matcher, flush_rows
        self.hits = dict.fromkeys(matcher.patterns, 0)
        self.n_out = self.n_dup = 0
        self._out_path, self._pending, self._n_pending = out_path, [], 0
        self._seen: set[str] = set()

    def __enter__(self) -> CandidateWriter:
        self._ctx = atomic_path(self._out_path)
        tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(tmp, CANDIDATE_SCHEMA, compression="zstd")
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if exc is None and self._pending:
                self._flush()
        finally:
            self._writer.close()
            self._ctx.__exit__(kind, exc, tb)

    def add(self, rows: pa.Table) -> None:
        """Buffer matching rows (``SAMPLE_SCHEMA``)."""
        if rows.num_rows:
            self._pending.append(rows.cast(SAMPLE_SCHEMA))
            self._n_pending += rows.num_rows
            if self._n_pending >= self.flush_rows:
                self._flush()

    def _flush(self) -> None:
        table = pa.concat_tables(self._pending)
        first = []
        for uid in table.column("uid").to_pylist():
            first.append(uid not in self._seen)
            self._seen.add(uid)
        self.n_dup += len(first) - sum(first)
        kept, hits = filter_table(table.filter(pa.array(first, pa.bool_())), self.matcher)
        for p, n in hits.items():
            self.hits[p] += n
        self._writer.write_table(kept.cast(CANDIDATE_SCHEMA), row_group_size=max(self.flush_rows, 1))
        self.n_out += kept.num_rows
        self._pending, self._n_pending = [], 0

    def stats(self, source: str, partition: str, n_in: int) -> PartitionStats:
        """The keyword stage's counts for ``n_in`` rows offered to the filter (matching or not)."""
        stats = PartitionStats(
            stage=StageName.KEYWORD.value, source=source, partition=partition, n_in=n_in, n_out=self.n_out,
            extra={"keyword_hits": self.hits},
        )  # fmt: skip
        stats.remove(Reason.NO_KEYWORD_MATCH.value, n_in - self.n_out - self.n_dup)
        stats.remove(Reason.DUPLICATE_RECORD.value, self.n_dup)
        return stats


def filter_partition(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    stats_path: str | os.PathLike[str],
    *,
    cfg: KeywordConfig,
    source: str,
    partition: str,
    batch_size: int = 131_072,
    flush_rows: int = 100_000,
    use_threads: bool = False,
    read_buffer: int = READ_BUFFER,
) -> PartitionStats:
    """Keyword-filter one normalised partition (parquet, ``SAMPLE_SCHEMA``) into ``out_path``.

    Resumable: if ``stats_path`` is a valid done marker, its stats are returned and nothing is read.
    Memory is bounded by ``batch_size`` input rows plus ``flush_rows`` kept rows. The stats file is written
    last. One call uses one core unless ``use_threads``: parallelism comes from partitions side by side.
    """
    done = read_done(stats_path)
    if done is not None:
        return done
    matcher = KeywordMatcher.from_config(cfg)
    # pre_buffer (pyarrow's default) caches every row group it has read until the file is closed,
    # so memory would grow with the file; unbuffered-by-range streaming keeps it per batch.
    pf = pq.ParquetFile(in_path, buffer_size=read_buffer, pre_buffer=False)
    n_in = 0
    with CandidateWriter(out_path, matcher, flush_rows) as writer:
        for batch in pf.iter_batches(batch_size=batch_size, use_threads=use_threads):
            n_in += batch.num_rows
            writer.add(pa.Table.from_batches([batch.filter(matcher.mask(batch.column("caption")))]))
    stats = writer.stats(source, partition, n_in)
    stats.write(stats_path)
    return stats
