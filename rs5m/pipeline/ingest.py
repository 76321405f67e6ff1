"""Ingest: read one PUB11 source file through its adapter and write normalised parquet partitions.

Contract of ``ingest_file``: every row read from the file ends either in an output partition
(``SAMPLE_SCHEMA``) or in the rejects file with a reason (both streamed: memory is bounded by one
batch); the stats file (written last) records ``n_in = n_out + removed``. A file whose stats file
exists is not read again (resume).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.config import IngestConfig, SourceInput
from rs5m.core.io import atomic_path
from rs5m.core.schema import REJECT_SCHEMA, SAMPLE_SCHEMA, Reason, Stage, make_uid
from rs5m.core.stats import PartitionStats, read_done
from rs5m.sources import get_adapter
from rs5m.sources.base import RawBatch


@dataclass(frozen=True)
class IngestPaths:
    """Where ingest writes for one input file."""

    parts_dir: Path
    rejects: Path
    stats: Path
    stem: str


def partition_name(path: str) -> str:
    """A file-system-safe partition name derived from an input file's base name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).name)


def ingest_paths(version_dir: Path, source: str, partition: str) -> IngestPaths:
    """Output locations of one input file under a version folder."""
    base = version_dir / Stage.INGEST.value
    return IngestPaths(
        parts_dir=base / source,
        rejects=base / "_rejects" / source / f"{partition}.parquet",
        stats=base / "_stats" / source / f"{partition}.json",
        stem=partition,
    )


class _Validator:
    """Checks common to all sources, applied to one RawBatch at a time (no per-file state, so memory
    stays bounded by the batch). Exact duplicate records share a uid; the URL dedup stage removes them."""

    def __init__(self, source: str, cfg: IngestConfig) -> None:
        self.source = source
        self.cfg = cfg

    def split(self, batch: RawBatch, stats: PartitionStats) -> tuple[pa.Table, pa.Table]:
        """Return (kept rows as ``SAMPLE_SCHEMA``, rejected rows as ``REJECT_SCHEMA``); update ``stats``."""
        t = batch.table
        rejects: list[dict] = []
        for r in batch.rejects:
            uid = make_uid(self.source, r.key) if r.key else f"{self.source}-{r.locator}"
            rejects.append(self._reject(uid, r.reason, r.detail))
            stats.remove(r.reason)
        stats.n_in += len(batch.rejects) + t.num_rows
        if t.num_rows == 0:
            return SAMPLE_SCHEMA.empty_table(), pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA)
        url = pc.utf8_trim_whitespace(t["url"])
        caption = pc.utf8_trim_whitespace(t["caption"])
        reasons = self._reasons(url, caption)
        keys, urls, caps = t["key"].to_pylist(), url.to_pylist(), caption.to_pylist()
        uids = [
            make_uid(self.source, key if key else f"{u}\x00{c}")
            for key, u, c in zip(keys, urls, caps, strict=True)
        ]
        for uid, u, reason in zip(uids, urls, reasons, strict=True):
            if reason is not None:
                rejects.append(self._reject(uid, reason, (u or "")[:200]))
                stats.remove(reason)
        mask = pa.array([r is None for r in reasons], pa.bool_())
        out = pa.table(
            {
                "uid": pa.array(uids, pa.string()),
                "source": pa.array([self.source] * t.num_rows, pa.string()),
                "url": url,
                "caption": caption,
                "width": t["width"],
                "height": t["height"],
                "extras": t["extras"],
            },
            schema=SAMPLE_SCHEMA,
        ).filter(mask)
        stats.n_out += out.num_rows
        return out, pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA)

    def _reasons(self, url: pa.ChunkedArray, caption: pa.ChunkedArray) -> list[str | None]:
        lower = pc.ascii_lower(url)
        http = pc.or_(pc.starts_with(lower, "http://"), pc.starts_with(lower, "https://"))
        url_len, cap_len = pc.utf8_length(url), pc.utf8_length(caption)
        cases = [
            (pc.or_kleene(pc.is_null(url), pc.equal(url_len, 0)), Reason.MISSING_URL.value),
            (pc.invert(http), Reason.BAD_URL.value),
            (pc.greater(url_len, self.cfg.max_url_length), Reason.BAD_URL.value),
            (pc.or_kleene(pc.is_null(caption), pc.equal(cap_len, 0)), Reason.MISSING_CAPTION.value),
            (pc.greater(cap_len, self.cfg.max_caption_length), Reason.MALFORMED_ROW.value),
        ]
        out: list[str | None] = [None] * len(url)
        for mask, reason in reversed(cases):  # earlier cases win
            for i, hit in enumerate(pc.fill_null(mask, False).to_pylist()):
                if hit:
                    out[i] = reason
        return out

    def _reject(self, uid: str, reason: str, detail: str) -> dict:
        return {
            "uid": uid,
            "source": self.source,
            "stage": Stage.INGEST.value,
            "reason": reason,
            "detail": detail,
        }


class _PartWriter:
    """Writes ``SAMPLE_SCHEMA`` rows into ``<stem>-NNNNN.parquet`` files of at most ``max_rows`` rows."""

    def __init__(self, parts_dir: Path, stem: str, max_rows: int) -> None:
        self.parts_dir, self.stem, self.max_rows = parts_dir, stem, max_rows
        self.outputs: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._ctx = None
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._writer is None:
                self._open()
            take = min(table.num_rows, self.max_rows - self._rows)
            self._writer.write_table(table.slice(0, take))
            self._rows += take
            table = table.slice(take)
            if self._rows >= self.max_rows:
                self._close()

    def finish(self) -> list[str]:
        if self._writer is not None or not self.outputs:
            if self._writer is None:
                self._open()  # an empty partition keeps the file countable and the schema known
            self._close()
        return self.outputs

    def abort(self) -> None:
        if self._ctx is not None:
            self._writer.close()
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def _open(self) -> None:
        final = self.parts_dir / f"{self.stem}-{len(self.outputs):05d}.parquet"
        self._ctx = atomic_path(final)
        tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(tmp, SAMPLE_SCHEMA, compression="zstd")
        self._final, self._rows = final, 0

    def _close(self) -> None:
        self._writer.close()
        self._ctx.__exit__(None, None, None)
        self.outputs.append(str(self._final))
        self._writer, self._ctx = None, None


def iter_batches(source: SourceInput, path: str) -> Iterator[RawBatch]:
    """Batches of one input file through the source's adapter, options validated by its model."""
    adapter = get_adapter(source.name)
    options = adapter.options_model(**source.options)
    yield from adapter.read(path, options)


def ingest_file(
    source: SourceInput, path: str, version_dir: Path, cfg: IngestConfig, partition: str | None = None
) -> PartitionStats:
    """Normalise one input file of ``source`` into partitions under ``version_dir/ingest``.

    Returns the file's stats (also written as its done marker). Raises ``SourceFormatError`` when the
    file as a whole is not in the source's format; bad rows never raise.
    """
    partition = partition or partition_name(path)
    paths = ingest_paths(version_dir, source.name, partition)
    done = read_done(paths.stats)
    if done is not None:
        return done
    stats = PartitionStats(stage=Stage.INGEST.value, source=source.name, partition=partition)
    validator = _Validator(source.name, cfg)
    writer = _PartWriter(paths.parts_dir, paths.stem, cfg.rows_per_partition)
    with atomic_path(paths.rejects) as tmp, pq.ParquetWriter(tmp, REJECT_SCHEMA, compression="zstd") as rej:
        try:
            for batch in iter_batches(source, path):
                kept, rejected = validator.split(batch, stats)
                writer.write(kept)
                if rejected.num_rows:
                    rej.write_table(rejected)
            outputs = writer.finish()
        except BaseException:
            writer.abort()
            raise
    st = Path(path).stat()
    stats.extra = {
        "input": str(path),
        "input_size": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        # relative to the version folder, so a version can be moved or seeded from another one
        "outputs": [str(Path(o).relative_to(version_dir)) for o in outputs],
        "rejects": str(paths.rejects.relative_to(version_dir)),
    }
    stats.write(paths.stats)
    return stats
