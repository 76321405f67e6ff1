"""Conceptual Captions: CC12M and CC3M, as Google's TSV files or as Hugging Face parquet conversions.

Layouts, detected per file:
- ``tsv``: headerless, one pair per line, no quoting: CC12M ``cc12m.tsv`` is ``url<TAB>caption``, CC3M
  ``GCC-training.tsv`` (formerly ``Train_GCC-training.tsv``) is ``caption<TAB>url``. The order is
  checked on the first lines (the field that starts with ``http(s)://`` is the url), so a file in the
  other order is read too; ``.gz``/``.bz2`` are read in place.
- ``tsv-header``: the same with a header line naming the columns (``url<TAB>caption``, as img2dataset's
  CC12M recipe adds with ``sed``).
- ``hf-parquet``: ``image_url, caption`` (``google-research-datasets/conceptual_captions`` ``unlabeled``
  and ``labeled`` configs, the ``conceptual_12m`` parquet conversion); ``url, caption`` is accepted too.
  CC3M's ``labeled`` parquet also carries ``labels``/``confidence_scores``, which become the tags.

CC3M can be joined with Google's Image Labels (``Image_Labels_Subset_Train_GCC-Labels-training.tsv``,
headerless ``caption, url, labels, MIDs, confidences``; or the ``labeled`` parquet): ``labels_file``.
Its tags are held per worker process in a compact index (``rs5m.sources._labels``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from rs5m.sources._files import sniff
from rs5m.sources._labels import LabelIndex, load_labels, tags_array
from rs5m.sources._parquet import ParquetAdapter, ParquetLayout, ParquetOptions, Resolved, finder
from rs5m.sources._text import RowBuffer, split_tsv
from rs5m.sources._tsv import first_lines, lines_of, text_pieces
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, tried

_HEADERS = {"url": "url", "image_url": "url", "caption": "caption", "text": "caption"}
_CC_PARQUET = (
    ParquetLayout("hf-parquet", ("image_url",), ("caption",)),
    ParquetLayout("url-caption-parquet", ("url",), ("caption",)),
)


class CC12MOptions(ParquetOptions):
    """CC12M options: ``batch_rows``; ``columns`` maps roles for a parquet conversion."""


class CC3MOptions(ParquetOptions):
    """``labels_file``: optional Image Labels TSV, labelled parquet, or folder of labelled parquet
    parts; its tags go to extras ``tags: [{tag, prob}]``. ``columns`` maps roles for a parquet
    conversion."""

    labels_file: str | None = None


def _is_url(field: bytes) -> bool:
    return field.lstrip().lower().startswith((b"http://", b"https://"))


def tsv_layout(path: str, url_first: bool, strict: bool = True) -> tuple[str, bool, bool]:
    """``(layout name, url first?, has a header line?)`` from the first lines of a two-column TSV.

    When no sampled line has two fields: ``SourceFormatError`` naming the file and the layouts tried if
    ``strict`` (detection), else the source's own order (reading: every line then is a row reject)."""
    lines = first_lines(path)
    head = [h.strip().lower() for h in lines[0].split(b"\t")] if lines else []
    names = [_HEADERS.get(h.decode("utf-8", "replace")) for h in head]
    if len(names) == 2 and set(names) == {"url", "caption"}:
        return "tsv-header", names[0] == "url", True
    pairs = [x.split(b"\t") for x in lines]
    pairs = [p for p in pairs if len(p) == 2]
    if not pairs and not strict:
        return "tsv", url_first, False
    if not pairs:
        order = "url<TAB>caption" if url_first else "caption<TAB>url"
        layouts = {"tsv": f"headerless {order}", "tsv-header": "a url/caption header line"}
        layouts["hf-parquet"] = "parquet image_url, caption"
        raise tried(
            path, "Conceptual Captions", layouts, "no line of the first 256 KiB has 2 tab-separated fields"
        )
    first = sum(_is_url(p[0]) and not _is_url(p[1]) for p in pairs)
    second = sum(_is_url(p[1]) and not _is_url(p[0]) for p in pairs)
    if first != second:
        url_first = first > second
    return "tsv", url_first, False


def _read_pairs(
    path: str, options: ParquetOptions, piece: str | None, url_first: bool, tags: LabelIndex | None
) -> Iterator[RawBatch]:
    """Batches of a two-column TSV (or one ``bytes:`` piece); blank lines are not samples."""
    _, url_first, header = tsv_layout(path, url_first, strict=False)
    buf = RowBuffer(path, options.batch_rows)
    for lineno, raw in lines_of(path, piece, options.read_buffer_bytes):
        if not raw or (header and lineno == 1):
            continue
        fields, reason, detail = split_tsv(raw, 2)
        if fields is None:
            buf.reject(lineno, reason, detail)
        else:
            url, caption = fields if url_first else fields[::-1]
            found = tags.get(url) if tags is not None else None
            extras = '{"tags":' + found + "}" if found else None
            buf.add(lineno, None, url, caption, extras=extras, checked=True)
        if buf.full():
            yield buf.take()
    yield from buf.drain()


class _CCAdapter(ParquetAdapter):
    """Shared by CC12M and CC3M: TSV (any order, header or not) or parquet, detected per file."""

    url_first: ClassVar[bool]
    layouts: ClassVar[tuple[ParquetLayout, ...]] = _CC_PARQUET

    def labels(self, options: ParquetOptions) -> LabelIndex | None:
        """The labels index to join (CC3M with ``labels_file``), else ``None``."""
        return None

    def detect(self, path: str, options: ParquetOptions) -> LayoutInfo:
        """``hf-parquet`` (rows from the footer), ``tsv`` or ``tsv-header``."""
        if sniff(path) == "parquet":
            return super().detect(path, options)
        return LayoutInfo(tsv_layout(path, self.url_first)[0])

    def pieces(self, path: str, options: ParquetOptions, rows_per_piece: int) -> list[str]:
        """Row-group ranges (parquet), byte ranges (plain TSV) or ``[""]`` (compressed TSV)."""
        if sniff(path) == "parquet":
            return super().pieces(path, options, rows_per_piece)
        return text_pieces(path, rows_per_piece, int(tsv_layout(path, self.url_first)[2]))

    def read(
        self, path: str, options: ParquetOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` lines or parquet rows; bad lines become
        ``malformed_row`` or ``bad_encoding`` rejects located ``<file>:<line>``."""
        tags = self.labels(options)
        if sniff(path) == "parquet":
            yield from super().read(path, options, piece, keep)
        else:
            yield from _read_pairs(path, options, piece, self.url_first, tags)


class CC12MAdapter(_CCAdapter):
    """CC12M ``cc12m.tsv`` or a parquet conversion: key null (derived from url+caption), no extras."""

    name: ClassVar[str] = "cc12m"
    what: ClassVar[str] = "CC12M parquet"
    options_model: ClassVar[type[AdapterOptions]] = CC12MOptions
    url_first: ClassVar[bool] = True


class CC3MAdapter(_CCAdapter):
    """CC3M ``GCC-training.tsv`` (``caption<TAB>url``) or the HF parquet, optionally with Image Labels."""

    name: ClassVar[str] = "cc3m"
    what: ClassVar[str] = "CC3M parquet"
    options_model: ClassVar[type[AdapterOptions]] = CC3MOptions
    url_first: ClassVar[bool] = False
    folder_options: ClassVar[frozenset[str]] = frozenset({"labels_file"})  # may name a folder

    def labels(self, options: ParquetOptions) -> LabelIndex | None:
        """The ``labels_file`` index (``FileNotFoundError`` when the file is missing)."""
        path = getattr(options, "labels_file", None)
        if not path:
            return None
        if not os.path.exists(path):
            raise FileNotFoundError(f"CC3M labels_file not found: {path}")
        return load_labels(path)

    def resolve(self, path: str, pf: pq.ParquetFile, options: ParquetOptions) -> Resolved:
        """As the parquet adapter, plus the labelled config's ``labels``/``confidence_scores``."""
        r = super().resolve(path, pf, options)
        find = finder(pf.schema_arrow.names)
        for purpose in ("labels", "confidence_scores"):
            if col := find((purpose,)):
                r.also[purpose] = col
        if "labels" in r.also:
            r.layout = r.layout.replace("hf-parquet", "hf-parquet-labeled")
        return r

    def more_extras(
        self, b: dict[str, pa.Array], r: Resolved, options: ParquetOptions
    ) -> list[tuple[str, pa.Array]]:
        """``tags``: each row's own labels (labelled parquet), else ``labels_file``'s by url."""
        index = self.labels(options)
        if "labels" not in r.also and index is None:
            return []
        labels, probs = (b.get(r.also[k]) if k in r.also else None for k in ("labels", "confidence_scores"))
        return [("tags", tags_array(b[r.roles["url"]], labels, probs, index))]
