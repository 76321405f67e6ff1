"""Ingest: read one PUB11 input and keyword-filter it in the same pass (RS5M's read + keyword stages).

Contract of ``ingest_file`` for one partition (an input file, or a piece of one):
- every row the source adapter reads is either rejected at ingest with a reason (malformed, bad
  encoding, missing or bad URL, missing caption ...; written to ``ingest/_rejects/<source>/<part>.parquet``
  with its uid) or is valid; every valid row either matches a keyword (a candidate, written once to
  ``keyword/<source>/<part>.parquet`` with the patterns it hits) or counts as ``no_keyword_match``
  (or ``duplicate_record``, an exact copy of a kept candidate);
- two stats files record it: stage ``ingest`` (n_in rows read, n_out valid rows) and then, last, stage
  ``keyword`` (n_in valid rows, n_out candidates) — the keyword stats file is the partition's done marker;
- ``IngestConfig.keep_all_rows`` also writes every valid row, normalised (``ingest/<source>/<part>.parquet``),
  so ``rs5m why`` can say "no keyword match" for a row that was not kept; off by default, since that copy
  is ~100 bytes per input row for billions of rows to keep ~0.1 % of them.
Validation is vectorised; a uid (a hash) is computed only for the rows written. Memory is bounded by one
batch plus the buffered candidates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.config import BuildConfig, IngestConfig, KeywordConfig, SourceInput
from rs5m.core.io import atomic_path
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import REJECT_SCHEMA, SAMPLE_SCHEMA, Reason, StageName, make_uid
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.keywords.matcher import KeywordMatcher
from rs5m.pipeline.keywords.stage import CandidateWriter
from rs5m.pipeline.plan import partition_name, read_plan
from rs5m.sources import get_adapter
from rs5m.sources.base import Keep, RawBatch, SourceFormatError

# Reason per validation code; earlier checks win (code 0: valid).
_CODES = (None, Reason.MISSING_URL, Reason.BAD_URL, Reason.MISSING_CAPTION, Reason.MALFORMED_ROW)


@dataclass(frozen=True)
class IngestPaths:
    """Where ingest writes for one partition."""

    output: Path  # every valid row, only with keep_all_rows
    rejects: Path
    stats: Path
    candidates: Path
    keyword_stats: Path


def ingest_paths(version_dir: Path, source: str, partition: str) -> IngestPaths:
    """Output locations of one partition under a version folder."""
    layout = VersionLayout.of(version_dir)
    return IngestPaths(
        output=layout.output(StageName.INGEST, source, partition),
        rejects=layout.side(StageName.INGEST, "rejects", source, partition),
        stats=layout.stats(StageName.INGEST, source, partition),
        candidates=layout.output(StageName.KEYWORD, source, partition),
        keyword_stats=layout.stats(StageName.KEYWORD, source, partition),
    )


def _trimmed(t: pa.Table) -> pa.Table:
    for name in ("url", "caption"):
        t = t.set_column(t.schema.get_field_index(name), name, pc.utf8_trim_whitespace(t[name]))
    return t


def _codes(url: pa.ChunkedArray, caption: pa.ChunkedArray, cfg: IngestConfig) -> np.ndarray:
    """Validation code per row (index into ``_CODES``) of trimmed url and caption columns, vectorised."""
    http = pc.or_(
        pc.starts_with(url, "http://", ignore_case=True), pc.starts_with(url, "https://", ignore_case=True)
    )
    url_len, cap_len = pc.utf8_length(url), pc.utf8_length(caption)
    cases = [
        pc.or_kleene(pc.is_null(url), pc.equal(url_len, 0)),
        pc.or_(pc.invert(http), pc.greater(url_len, cfg.max_url_length)),
        pc.or_kleene(pc.is_null(caption), pc.equal(cap_len, 0)),
        pc.greater(cap_len, cfg.max_caption_length),
    ]
    codes = np.zeros(len(url), dtype=np.int8)
    for code in range(len(cases), 0, -1):  # earlier cases win: apply them last
        codes[pc.fill_null(cases[code - 1], False).to_numpy(zero_copy_only=False)] = code
    return codes


def _codes_untrimmed(t: pa.Table, cfg: IngestConfig) -> np.ndarray:
    """``_codes`` of rows whose url and caption were not trimmed yet, trimming only where it can matter.

    Trimming never turns an invalid row valid except where the untrimmed check already fails (a padded
    URL, a padded over-long value), and turns a valid one invalid only for an all-whitespace caption: so
    the untrimmed codes are exact except on those rows, which are checked again trimmed."""
    codes = _codes(t["url"], t["caption"], cfg)
    blank = pc.fill_null(pc.utf8_is_space(t["caption"]), False).to_numpy(zero_copy_only=False)
    again = np.flatnonzero((codes != 0) | blank)
    if again.size:
        sub = _trimmed(t.select(["url", "caption"]).take(pa.array(again)))
        codes[again] = _codes(sub["url"], sub["caption"], cfg)
    return codes


class _Pass:
    """The state of one pass over a partition: counts, the writers, the keyword filter."""

    def __init__(
        self, source: str, cfg: IngestConfig, matcher: KeywordMatcher, stats: PartitionStats
    ) -> None:
        self.source, self.cfg, self.matcher, self.stats = source, cfg, matcher, stats

    def uids(self, t: pa.Table) -> list[str]:
        keys, urls, caps = (t[c].to_pylist() for c in ("key", "url", "caption"))
        return [
            make_uid(self.source, k if k else f"{u}\x00{c}") for k, u, c in zip(keys, urls, caps, strict=True)
        ]

    def rejects(self, batch: RawBatch, bad: pa.Table, codes: np.ndarray) -> pa.Table:
        """A batch's rejected rows (the adapter's, then the validator's) as ``REJECT_SCHEMA``; counted."""
        rows = []
        for r in batch.rejects:
            rows.append(
                (make_uid(self.source, r.key) if r.key else f"{self.source}-{r.locator}", r.reason, r.detail)
            )
        details = [(u or "")[:200] for u in bad["url"].to_pylist()]
        rows += [(uid, _CODES[c].value, d) for uid, c, d in zip(self.uids(bad), codes, details, strict=True)]
        for _, reason, _ in rows:
            self.stats.remove(reason)
        cols = list(zip(*rows, strict=True)) if rows else [[], [], []]
        stage = StageName.INGEST.value
        return pa.table(
            {"uid": cols[0], "source": [self.source] * len(rows), "stage": [stage] * len(rows),
             "reason": cols[1], "detail": cols[2]}, schema=REJECT_SCHEMA,
        )  # fmt: skip

    def normalised(self, t: pa.Table) -> pa.Table:
        """Rows as ``SAMPLE_SCHEMA`` (uids computed here)."""
        return pa.table(
            {"uid": pa.array(self.uids(t), pa.string()), "source": pa.array([self.source] * t.num_rows),
             "url": t["url"], "caption": t["caption"], "width": t["width"], "height": t["height"],
             "extras": t["extras"]}, schema=SAMPLE_SCHEMA,
        )  # fmt: skip

    def split(self, batch: RawBatch) -> tuple[pa.Table, pa.Table]:
        """(valid rows, rejected rows as ``REJECT_SCHEMA``) of one batch; the ingest counts updated.

        The adapter's ``others`` (rows its early keyword filter left out, key/url/caption only) are
        validated and counted like the rest; only their rejects are kept."""
        t, o = _trimmed(batch.table), batch.others  # others are only counted: trimmed where it matters
        codes = _codes(t["url"], t["caption"], self.cfg)
        o_codes = _codes_untrimmed(o, self.cfg) if o is not None else np.zeros(0, np.int8)
        ok = codes == 0
        self.stats.n_in += len(batch.rejects) + t.num_rows + len(o_codes)
        self.stats.n_out += int(ok.sum()) + int((o_codes == 0).sum())
        bad = t.select(["key", "url", "caption"]).filter(pa.array(~ok))
        bad_codes = codes[~ok]
        if o is not None and (o_codes != 0).any():
            bad = pa.concat_tables([bad, _trimmed(o.filter(pa.array(o_codes != 0))).cast(bad.schema)])
            bad_codes = np.concatenate([bad_codes, o_codes[o_codes != 0]])
        return t.filter(pa.array(ok)), self.rejects(batch, bad, bad_codes)


def iter_batches(
    source: SourceInput, path: str, piece: str = "", keep: Keep | None = None
) -> Iterator[RawBatch]:
    """Batches of one input file (or one piece of it) through the source's adapter, options validated;
    ``keep`` lets the adapter build the costly columns for the selected rows only (``RawBatch.others``).

    A decoding error that does not name the file (pyarrow's "Couldn't deserialize thrift" for damaged
    parquet pages, a broken compressed stream) becomes a ``SourceFormatError`` naming it (a ``ValueError``:
    not retried); an error of the OS itself (with an errno) stays as it is.
    """
    adapter = get_adapter(source.name)
    options = adapter.options_model(**source.options)
    try:
        yield from adapter.read(path, options, piece or None, keep)
    except (pa.ArrowException, OSError, EOFError) as exc:
        if (isinstance(exc, OSError) and exc.errno is not None) or isinstance(exc, SourceFormatError):
            raise
        said = " ".join(str(exc).split()) or type(exc).__name__
        raise SourceFormatError(f"{path}: cannot read this {source.name} file: {said}") from exc


def ingest_file(
    source: SourceInput,
    path: str,
    version_dir: Path,
    cfg: IngestConfig,
    partition: str | None = None,
    keyword: KeywordConfig | None = None,
    piece: str = "",
) -> PartitionStats:
    """Read, validate and keyword-filter one input of ``source`` in one pass (see the module contract).

    Returns the ingest stats (the keyword stats are written beside them, last). Raises
    ``SourceFormatError`` when the file as a whole is not in the source's format; bad rows never raise.
    """
    partition = partition or partition_name(path)
    paths = ingest_paths(version_dir, source.name, partition)
    if read_done(paths.keyword_stats) is not None and (done := read_done(paths.stats)) is not None:
        return done
    stats = PartitionStats(stage=StageName.INGEST.value, source=source.name, partition=partition)
    matcher = KeywordMatcher.from_config(keyword or KeywordConfig())
    state = _Pass(source.name, cfg, matcher, stats)
    with ExitStack() as stack:
        rej = stack.enter_context(
            pq.ParquetWriter(stack.enter_context(atomic_path(paths.rejects)), REJECT_SCHEMA)
        )
        out = None
        if cfg.keep_all_rows:
            out = stack.enter_context(
                pq.ParquetWriter(stack.enter_context(atomic_path(paths.output)), SAMPLE_SCHEMA)
            )
        candidates = stack.enter_context(CandidateWriter(paths.candidates, matcher))
        for batch in iter_batches(source, path, piece, None if cfg.keep_all_rows else matcher.mask):
            valid, rejects = state.split(batch)
            if rejects.num_rows:
                rej.write_table(rejects)
            if out is not None and valid.num_rows:
                out.write_table(state.normalised(valid))
            hits = valid.filter(matcher.mask(valid["caption"]))
            candidates.add(state.normalised(hits))
    st = Path(path).stat()
    stats.extra = {
        "input": str(path),
        "piece": piece,
        "input_size": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
    }
    stats.write(paths.stats)
    candidates.stats(source.name, partition, stats.n_out).write(paths.keyword_stats)
    return stats


def run(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """Read + keyword-filter one planned input (``rs5m.pipeline.registry``); returns the keyword stats."""
    item = read_plan(layout)[(source, partition)]
    ingest_file(cfg.source(source), item.path, layout.dir, cfg.ingest, partition, cfg.keyword, item.piece)
    return PartitionStats.read(layout.stats(StageName.KEYWORD, source, partition))


def check_yields(layout: VersionLayout, cfg: BuildConfig) -> list[str]:
    """After ingest: one warning per planned input that gave no valid row; ``ValueError`` naming every source
    whose inputs gave none at all (an empty or wrong-format source would otherwise build a "complete"
    version of nothing), unless that source sets ``allow_empty``."""
    warnings, empty = [], []
    for src in cfg.sources:
        parts = [p for s, p in read_plan(layout) if s == src.name]
        valid = {p: read_done(layout.stats(StageName.INGEST, src.name, p)) for p in parts}
        zero = [p for p, st in valid.items() if st is not None and st.n_out == 0]
        warnings += [f"source {src.name}: input {p} gave no valid row" for p in zero]
        if parts and len(zero) == len(parts) and not src.allow_empty:
            empty.append(
                f"{src.name} ({len(parts)} file(s), e.g. {read_plan(layout)[(src.name, parts[0])].path})"
            )
    if empty:
        raise ValueError(
            "no valid row in source(s) " + "; ".join(empty) + ": check the files' format (rs5m inputs check) "
            "or set allow_empty: true on the source"
        )
    return warnings
