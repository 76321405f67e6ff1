"""Ingest: read one PUB11 input through its source adapter and write its rows in the normalised schema.

Contract of ``ingest_file``: every row read from the file ends either in the partition's output
(``ingest/<source>/<partition>.parquet``, ``SAMPLE_SCHEMA``) or in its rejects file with a reason (both
streamed: memory is bounded by one batch); the stats file (written last) records
``n_in = n_out + removed``. A partition whose stats file exists is not read again (resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.config import BuildConfig, IngestConfig, SourceInput
from rs5m.core.io import atomic_path
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import REJECT_SCHEMA, SAMPLE_SCHEMA, Reason, StageName, make_uid
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.plan import partition_name, read_plan
from rs5m.sources import get_adapter
from rs5m.sources.base import RawBatch, SourceFormatError


@dataclass(frozen=True)
class IngestPaths:
    """Where ingest writes for one input file."""

    output: Path
    rejects: Path
    stats: Path
    stem: str


def ingest_paths(version_dir: Path, source: str, partition: str) -> IngestPaths:
    """Output locations of one input file under a version folder."""
    layout = VersionLayout.of(version_dir)
    return IngestPaths(
        output=layout.output(StageName.INGEST, source, partition),
        rejects=layout.side(StageName.INGEST, "rejects", source, partition),
        stats=layout.stats(StageName.INGEST, source, partition),
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
            "stage": StageName.INGEST.value,
            "reason": reason,
            "detail": detail,
        }


def iter_batches(source: SourceInput, path: str) -> Iterator[RawBatch]:
    """Batches of one input file through the source's adapter, options validated by its model.

    A decoding error that does not name the file (pyarrow's "Couldn't deserialize thrift" for damaged
    parquet pages, a broken compressed stream) becomes a ``SourceFormatError`` naming it; an error of the
    OS itself (with an errno) stays as it is.
    """
    adapter = get_adapter(source.name)
    options = adapter.options_model(**source.options)
    try:
        yield from adapter.read(path, options)
    except (pa.ArrowException, OSError, EOFError) as exc:
        if (isinstance(exc, OSError) and exc.errno is not None) or isinstance(exc, SourceFormatError):
            raise
        said = " ".join(str(exc).split()) or type(exc).__name__
        raise SourceFormatError(f"{path}: cannot read this {source.name} file: {said}") from exc


def ingest_file(
    source: SourceInput, path: str, version_dir: Path, cfg: IngestConfig, partition: str | None = None
) -> PartitionStats:
    """Normalise one input file of ``source`` into its partition under ``version_dir/ingest``.

    Returns the file's stats (also written as its done marker). Raises ``SourceFormatError`` when the
    file as a whole is not in the source's format; bad rows never raise.
    """
    partition = partition or partition_name(path)
    paths = ingest_paths(version_dir, source.name, partition)
    done = read_done(paths.stats)
    if done is not None:
        return done
    stats = PartitionStats(stage=StageName.INGEST.value, source=source.name, partition=partition)
    validator = _Validator(source.name, cfg)
    with (
        atomic_path(paths.output) as out_tmp,
        pq.ParquetWriter(out_tmp, SAMPLE_SCHEMA, compression="zstd") as out,
        atomic_path(paths.rejects) as rej_tmp,
        pq.ParquetWriter(rej_tmp, REJECT_SCHEMA, compression="zstd") as rej,
    ):
        for batch in iter_batches(source, path):
            kept, rejected = validator.split(batch, stats)
            if kept.num_rows:
                out.write_table(kept)
            if rejected.num_rows:
                rej.write_table(rejected)
    st = Path(path).stat()
    stats.extra = {
        "input": str(path),
        "input_size": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
    }
    stats.write(paths.stats)
    return stats


def run(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """The ingest stage over one planned input (``rs5m.pipeline.registry``)."""
    item = read_plan(layout)[(source, partition)]
    return ingest_file(cfg.source(source), item.path, layout.dir, cfg.ingest, partition)
