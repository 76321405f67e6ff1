"""YFCC15M: YFCC100M metadata rows restricted to OpenAI's CLIP subset (``yfcc100m_subset_data.tsv``).

Input files, layout detected per file:
- ``yfcc-sqlite``: ``yfcc100m_dataset.sql``, the SQLite file the Multimedia Commons bucket hands out
  today (table ``yfcc100m_dataset``, the 23 TSV field names as columns, values as in the TSV: text
  URL-encoded). Streamed in rowid ranges, so one 65 GB file becomes many partitions (``rowid:`` pieces);
  locators are ``<file>:<rowid>``.
- ``yfcc-tsv-23``: Yahoo Webscope ``yfcc100m_dataset-N`` (plain, ``.gz`` or ``.bz2``), headerless TSV,
  23 fields ``photoid, uid, unickname, datetaken, dateuploaded, capturedevice, title, description,
  usertags, machinetags, longitude, latitude, accuracy, pageurl, downloadurl, licensename, licenseurl,
  serverid, farmid, secret, secretoriginal, ext, marker``;
- ``yfcc-tsv-25``: the Multimedia Commons TSV dump that OpenAI's list refers to: the same with a line
  number before and the photo hash after ``photoid``.

The subset list is loaded once per worker process (see ``rs5m.sources._yfcc_subset``) and each chunk of
rows is matched with one ``searchsorted``. Title, description and tags are URL-encoded with ``+`` for
space (decoded with ``unquote_plus``). Caption = ``caption_fields`` (default title, description) joined
by ``caption_join``. key = photoid. Videos (``marker == 1``) are rejected as ``not_an_image`` unless
``images_only`` is false.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import ClassVar, Literal
from urllib.parse import unquote_plus

import numpy as np
from pydantic import Field

from rs5m.sources._files import sniff
from rs5m.sources._text import RowBuffer, as_float, join_sentences
from rs5m.sources._tsv import first_lines, lines_of, text_pieces
from rs5m.sources._yfcc_sqlite import YFCC_FIELDS, SqliteTable
from rs5m.sources._yfcc_subset import in_subset, load_subset
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, tried

_I = {name: i for i, name in enumerate(YFCC_FIELDS)}
NOT_AN_IMAGE = "not_an_image"  # proposed Reason code: YFCC100M videos
_LAYOUTS = {
    "yfcc-sqlite": "SQLite table yfcc100m_dataset with the 23 field columns",
    "yfcc-tsv-23": "headerless TSV, 23 fields (Webscope)",
    "yfcc-tsv-25": "headerless TSV, 25 fields (Multimedia Commons)",
}


class YfccOptions(AdapterOptions):
    """``subset_file``: OpenAI's id list, plain or ``.bz2`` (None keeps every row); ``subset_cache_dir``:
    where its decoded ids are kept as ``.npy`` and shared by every worker (None: in-process only; a
    relative folder is taken from the subset file's folder);
    ``table``: the SQLite table; ``caption_fields``: URL-decoded fields joined by ``caption_join``;
    ``images_only``: reject videos."""

    subset_file: str | None = None
    subset_cache_dir: str | None = None
    table: str = "yfcc100m_dataset"
    caption_fields: list[Literal["title", "description"]] = Field(
        default_factory=lambda: ["title", "description"], min_length=1
    )
    caption_join: str = ". "
    images_only: bool = True


def _tags(s: str) -> list[str]:
    return [t for t in (unquote_plus(x, errors="strict") for x in s.split(",")) if t]


def tsv_layout(path: str) -> str:
    """``yfcc-tsv-23`` or ``yfcc-tsv-25`` by the field count most of the first lines have;
    ``SourceFormatError`` listing the layouts when none has 23 or 25 fields."""
    counts = [len(x.split(b"\t")) for x in first_lines(path)]
    n23, n25 = counts.count(23), counts.count(25)
    if not (n23 or n25):
        seen = sorted(set(counts))[:5]
        raise tried(path, "YFCC100M metadata", _LAYOUTS, f"its first lines have {seen} tab-separated fields")
    return "yfcc-tsv-25" if n25 > n23 else "yfcc-tsv-23"


class YfccAdapter:
    """YFCC100M metadata (SQLite or TSV) filtered to the YFCC15M subset."""

    name: ClassVar[str] = "yfcc15m"
    options_model: ClassVar[type[AdapterOptions]] = YfccOptions

    def detect(self, path: str, options: YfccOptions) -> LayoutInfo:
        """``yfcc-sqlite`` (rows estimated from the rowid range) or ``yfcc-tsv-23``/``-25``."""
        kind = sniff(path)
        if kind == "sqlite":
            with SqliteTable(path, options.table) as t:
                lo_hi = t.bounds()
                return LayoutInfo("yfcc-sqlite", t.estimated_rows(lo_hi), estimated=True)
        if kind != "text":
            raise tried(path, "YFCC100M metadata", _LAYOUTS, f"it is a {kind} file")
        return LayoutInfo(tsv_layout(path))

    def pieces(self, path: str, options: YfccOptions, rows_per_piece: int) -> list[str]:
        """``rowid:`` ranges (SQLite, from ``min/max(rowid)``), ``bytes:`` ranges (plain TSV) or
        ``[""]`` (compressed TSV)."""
        kind = sniff(path)
        if kind == "sqlite":
            with SqliteTable(path, options.table) as t:
                return t.pieces(rows_per_piece)
        if kind != "text":
            raise tried(path, "YFCC100M metadata", _LAYOUTS, f"it is a {kind} file")
        return text_pieces(path, rows_per_piece)

    def read(
        self, path: str, options: YfccOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield one batch per ``options.batch_rows`` rows; rows outside the subset are
        ``not_in_subset`` rejects keyed by photoid."""
        kind = sniff(path)
        if kind not in ("sqlite", "text"):
            raise tried(path, "YFCC100M metadata", _LAYOUTS, f"it is a {kind} file")
        subset = None
        if options.subset_file:
            cache = options.subset_cache_dir
            if cache and not os.path.isabs(os.path.expanduser(cache)):
                cache = os.path.join(os.path.dirname(os.path.abspath(options.subset_file)), cache)
            subset = load_subset(options.subset_file, cache)
        buf = RowBuffer(path, options.batch_rows)
        if kind == "sqlite":
            with SqliteTable(path, options.table) as t:
                for chunk in t.chunks(piece, options.batch_rows):
                    yield from self._chunk(buf, chunk, subset, options)
        else:
            chunk: list[tuple[int, list[bytes]]] = []
            for lineno, raw in lines_of(path, piece, options.read_buffer_bytes):
                if raw:
                    chunk.append((lineno, raw.split(b"\t")))
                if len(chunk) >= options.batch_rows:
                    yield from self._chunk(buf, chunk, subset, options)
                    chunk = []
            yield from self._chunk(buf, chunk, subset, options)
        yield from buf.drain()

    def _chunk(
        self,
        buf: RowBuffer,
        chunk: list[tuple[int, list[bytes]]],
        subset: np.ndarray | None,
        opt: YfccOptions,
    ) -> Iterator[RawBatch]:
        rows: list[tuple[int, list[bytes], int]] = []
        for pos, parts in chunk:
            if len(parts) == 25:
                parts = [parts[1], *parts[3:]]
            if len(parts) != 23:
                buf.reject(pos, "malformed_row", f"expected 23 or 25 tab-separated fields, got {len(parts)}")
            elif not (parts[0].strip().isascii() and parts[0].strip().isdigit()):
                buf.reject(pos, "malformed_row", "photoid is not an integer")
            elif int(parts[0]) >= 2**63:  # YFCC photo ids are int64; a longer one is a broken line
                buf.reject(pos, "malformed_row", "photoid is out of range")
            else:
                rows.append((pos, parts, int(parts[0])))
        if subset is not None and rows:
            keep = in_subset(subset, np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)))
        else:
            keep = np.ones(len(rows), dtype=bool)
        for (pos, parts, pid), ok in zip(rows, keep.tolist(), strict=True):
            if not ok:
                buf.reject(pos, "not_in_subset", "", key=str(pid))
            else:
                self._row(buf, pos, parts, str(pid), opt)
            if buf.full():
                yield buf.take()

    @staticmethod
    def _row(buf: RowBuffer, pos: int, parts: list[bytes], key: str, opt: YfccOptions) -> None:
        if b"\x00" in b"".join(parts):
            return buf.reject(pos, "malformed_row", "NUL byte in line", key)
        try:
            f = [p.decode("utf-8") for p in parts]
        except UnicodeDecodeError as exc:
            return buf.reject(pos, "bad_encoding", f"not UTF-8 at byte {exc.start}", key)
        if opt.images_only and f[_I["marker"]].strip() == "1":
            return buf.reject(pos, NOT_AN_IMAGE, "marker=1 (video)", key)
        try:
            text = {c: unquote_plus(f[_I[c]], errors="strict") for c in ("title", "description")}
            extras = {
                "latitude": as_float(f[_I["latitude"]]),
                "longitude": as_float(f[_I["longitude"]]),
                "datetaken": f[_I["datetaken"]] or None,
                "usertags": _tags(f[_I["usertags"]]),
                "machinetags": _tags(f[_I["machinetags"]]),
                "pageurl": f[_I["pageurl"]] or None,
            }
        except UnicodeDecodeError:
            return buf.reject(pos, "bad_encoding", "percent-encoded text is not UTF-8", key)
        caption = join_sentences((text[c] for c in opt.caption_fields), opt.caption_join)
        buf.add(pos, key, f[_I["downloadurl"]], caption, extras=extras)
