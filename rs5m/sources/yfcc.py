"""YFCC15M: YFCC100M metadata rows restricted to OpenAI's CLIP subset (``yfcc100m_subset_data.tsv``).

Input files are YFCC100M metadata, headerless TSV, plain or ``.gz``/``.bz2``, in one of two layouts:
- Yahoo Webscope ``yfcc100m_dataset-N``: 23 fields ``photoid, uid, unickname, datetaken, dateuploaded,
  capturedevice, title, description, usertags, machinetags, longitude, latitude, accuracy, pageurl,
  downloadurl, licensename, licenseurl, serverid, farmid, secret, secretoriginal, ext, marker``;
- the Multimedia Commons dump that OpenAI's list refers to: 25 fields, the same with a line number
  before and the photo hash after ``photoid``.

OpenAI's subset file lists ``line number, photo id, photo hash`` (tab-separated; a header line, if
present, is skipped). Its ids are loaded once into a sorted numpy array (~120 MB for 14.8 M ids),
cached across ``read`` calls, and each chunk of lines is matched with one ``searchsorted``.

Title, description and tags are URL-encoded with ``+`` for space (decoded with ``unquote_plus``).
Caption = ``caption_fields`` (default title, description) joined by ``caption_join``. key = photoid.
Videos (``marker == 1``) are rejected as ``not_an_image`` unless ``images_only`` is false.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import ClassVar, Literal
from urllib.parse import unquote_plus

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from pydantic import Field

from rs5m.sources._text import RowBuffer, as_float, iter_lines, join_sentences, open_binary
from rs5m.sources.base import AdapterOptions, RawBatch, SourceFormatError

YFCC_FIELDS = (
    "photoid uid unickname datetaken dateuploaded capturedevice title description usertags machinetags "
    "longitude latitude accuracy pageurl downloadurl licensename licenseurl serverid farmid secret "
    "secretoriginal ext marker"
).split()
_I = {name: i for i, name in enumerate(YFCC_FIELDS)}
NOT_AN_IMAGE = "not_an_image"  # proposed Reason code: YFCC100M videos


class YfccOptions(AdapterOptions):
    """``subset_file``: OpenAI's id list (None keeps every row); ``caption_fields``: URL-decoded
    fields joined by ``caption_join``; ``images_only``: reject videos."""

    subset_file: str | None = None
    caption_fields: list[Literal["title", "description"]] = Field(
        default_factory=lambda: ["title", "description"], min_length=1
    )
    caption_join: str = ". "
    images_only: bool = True


@functools.lru_cache(maxsize=2)
def _subset_ids(path: str, mtime_ns: int, size: int) -> np.ndarray:
    del mtime_ns, size  # cache key only: a rewritten file is reloaded
    with open_binary(path) as f:
        first = f.readline().rstrip(b"\r\n").split(b"\t")
    col = 1 if len(first) >= 2 else 0
    header = not first[col].strip().isdigit()
    names = [f"c{i}" for i in range(len(first))]
    try:
        with open_binary(path) as f:
            table = pacsv.read_csv(
                f,
                read_options=pacsv.ReadOptions(column_names=names, skip_rows=int(header)),
                parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[names[col]], column_types={names[col]: pa.int64()}
                ),
            )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise SourceFormatError(f"{path}: not an OpenAI YFCC subset id list ({exc})") from exc
    ids = table.column(0).drop_null().to_numpy()
    return np.unique(ids)


def load_subset(path: str) -> np.ndarray:
    """Sorted unique photo ids of OpenAI's ``yfcc100m_subset_data.tsv`` (cached per file version)."""
    st = os.stat(path)
    return _subset_ids(path, st.st_mtime_ns, st.st_size)


def _tags(s: str) -> list[str]:
    return [t for t in (unquote_plus(x, errors="strict") for x in s.split(",")) if t]


class YfccAdapter:
    """YFCC100M metadata files filtered to the YFCC15M subset."""

    name: ClassVar[str] = "yfcc15m"
    options_model: ClassVar[type[AdapterOptions]] = YfccOptions

    def read(self, path: str, options: YfccOptions) -> Iterator[RawBatch]:
        """Yield one batch per ``options.batch_rows`` lines; rows outside the subset are
        ``not_in_subset`` rejects keyed by photoid."""
        subset = load_subset(options.subset_file) if options.subset_file else None
        buf = RowBuffer(path, options.batch_rows)
        chunk: list[tuple[int, bytes]] = []
        with open_binary(path) as f:
            for item in iter_lines(path, f):
                if item[1]:
                    chunk.append(item)
                if len(chunk) >= options.batch_rows:
                    yield from self._chunk(buf, chunk, subset, options)
                    chunk = []
        yield from self._chunk(buf, chunk, subset, options)
        yield from buf.drain()

    def _chunk(
        self, buf: RowBuffer, chunk: list[tuple[int, bytes]], subset: np.ndarray | None, opt: YfccOptions
    ) -> Iterator[RawBatch]:
        rows: list[tuple[int, list[bytes], int]] = []
        for lineno, raw in chunk:
            parts = raw.split(b"\t")
            if len(parts) == 25:
                parts = [parts[1], *parts[3:]]
            if len(parts) != 23:
                buf.reject(
                    lineno, "malformed_row", f"expected 23 or 25 tab-separated fields, got {len(parts)}"
                )
            elif not (parts[0].strip().isascii() and parts[0].strip().isdigit()):
                buf.reject(lineno, "malformed_row", "photoid is not an integer")
            elif int(parts[0]) >= 2**63:  # YFCC photo ids are int64; a longer one is a broken line
                buf.reject(lineno, "malformed_row", "photoid is out of range")
            else:
                rows.append((lineno, parts, int(parts[0])))
        if subset is not None and rows:
            ids = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
            pos = np.minimum(np.searchsorted(subset, ids), max(len(subset) - 1, 0))
            keep = subset[pos] == ids if len(subset) else np.zeros(len(ids), dtype=bool)
        else:
            keep = np.ones(len(rows), dtype=bool)
        for (lineno, parts, pid), ok in zip(rows, keep.tolist(), strict=True):
            if not ok:
                buf.reject(lineno, "not_in_subset", "", key=str(pid))
            else:
                self._row(buf, lineno, parts, str(pid), opt)
            if buf.full():
                yield buf.take()

    @staticmethod
    def _row(buf: RowBuffer, lineno: int, parts: list[bytes], key: str, opt: YfccOptions) -> None:
        if b"\x00" in b"".join(parts):
            return buf.reject(lineno, "malformed_row", "NUL byte in line", key)
        try:
            f = [p.decode("utf-8") for p in parts]
        except UnicodeDecodeError as exc:
            return buf.reject(lineno, "bad_encoding", f"not UTF-8 at byte {exc.start}", key)
        if opt.images_only and f[_I["marker"]].strip() == "1":
            return buf.reject(lineno, NOT_AN_IMAGE, "marker=1 (video)", key)
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
            return buf.reject(lineno, "bad_encoding", "percent-encoded text is not UTF-8", key)
        caption = join_sentences((text[c] for c in opt.caption_fields), opt.caption_join)
        buf.add(lineno, key, f[_I["downloadurl"]], caption, extras=extras)
