"""LAION2B-en, LAION400M and LAION-COCO: parquet parts as published on Hugging Face.

LAION2B-en / LAION400M come in two layouts, both accepted (columns matched case-insensitively):
``SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH, LICENSE, NSFW, similarity`` and the "-joined" variant
``URL, TEXT, WIDTH, HEIGHT, similarity, hash, punsafe, pwatermark`` (no SAMPLE_ID: key is null and the
ingest driver derives it from url+caption). Extras keys: similarity, punsafe, pwatermark, nsfw,
license, hash (those present).

LAION-COCO (``URL, TEXT, top_caption, all_captions, all_similarities, WIDTH, HEIGHT, similarity, hash,
pwatermark, punsafe``): RS5M's keyword filter ran on the BLIP captions concatenated (paper App. B5,
Fig. 21), so the default caption is ``all_captions`` joined with ". ".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc

from rs5m.sources._arrow import (
    as_string,
    assemble,
    invalid_rows,
    iter_parquet,
    open_parquet,
    resolve_columns,
    to_int32,
)
from rs5m.sources._parquet import ParquetAdapter, ParquetLayout
from rs5m.sources._text import join_sentences
from rs5m.sources.base import AdapterOptions, RawBatch, SourceFormatError

LAION_LAYOUT = ParquetLayout(
    url="URL",
    caption="TEXT",
    key="SAMPLE_ID",
    width="WIDTH",
    height="HEIGHT",
    extras=(
        ("similarity", "similarity"),
        ("punsafe", "punsafe"),
        ("pwatermark", "pwatermark"),
        ("nsfw", "NSFW"),
        ("license", "LICENSE"),
        ("hash", "hash"),
    ),
)


class LaionOptions(AdapterOptions):
    """LAION2B-en / LAION400M options (only ``batch_rows``)."""


class Laion2bAdapter(ParquetAdapter):
    """``laion/laion2B-en`` parquet parts (plain or "-joined" layout); caption = ``TEXT``."""

    name: ClassVar[str] = "laion2b"
    options_model: ClassVar[type[AdapterOptions]] = LaionOptions
    layout: ClassVar[ParquetLayout] = LAION_LAYOUT


class Laion400mAdapter(ParquetAdapter):
    """``laion400m-meta`` parquet parts; caption = ``TEXT``."""

    name: ClassVar[str] = "laion400m"
    options_model: ClassVar[type[AdapterOptions]] = LaionOptions
    layout: ClassVar[ParquetLayout] = LAION_LAYOUT


class LaionCocoOptions(AdapterOptions):
    """``caption_mode``: ``all_captions`` (BLIP candidates joined by ``caption_join``, falling back to
    ``top_caption`` then ``TEXT`` when the list is empty), ``top_caption`` (falling back to ``TEXT``)
    or ``text`` (the original alt-text)."""

    caption_mode: Literal["all_captions", "top_caption", "text"] = "all_captions"
    caption_join: str = ". "


_COCO_EXTRAS = (("top_caption", "top_caption"), ("similarity", "similarity"), ("punsafe", "punsafe"))
_COCO_EXTRAS += (("pwatermark", "pwatermark"), ("hash", "hash"))
_PRIMARY = {"all_captions": "all_captions", "top_caption": "top_caption", "text": "TEXT"}
_FALLBACKS = {"all_captions": ["top_caption", "TEXT"], "top_caption": ["TEXT"], "text": []}


def _nonblank(arr: pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0), False)


class LaionCocoAdapter:
    """``laion/laion-coco`` parquet parts; caption chosen by ``LaionCocoOptions.caption_mode``.

    Extras: top_caption, similarity, punsafe, pwatermark, hash (those present) and ``caption_from``,
    the column the caption came from.
    """

    name: ClassVar[str] = "laioncoco"
    options_model: ClassVar[type[AdapterOptions]] = LaionCocoOptions

    def read(self, path: str, options: LaionCocoOptions) -> Iterator[RawBatch]:
        """Yield one ``RawBatch`` per parquet batch; ``SourceFormatError`` when the file is not parquet
        or lacks ``URL`` or the caption mode's column."""
        pf = open_parquet(path)
        primary = _PRIMARY[options.caption_mode]
        fallbacks = _FALLBACKS[options.caption_mode]
        optional = ["WIDTH", "HEIGHT", *fallbacks, *(c for _, c in _COCO_EXTRAS)]
        cols = resolve_columns(path, pf.schema_arrow.names, ["URL", primary], optional)
        if primary == "all_captions" and not _is_list(pf.schema_arrow.field(cols[primary]).type):
            raise SourceFormatError(f"{path}: column all_captions is not a list of strings")
        for offset, b in iter_parquet(path, pf, cols, options.batch_rows):
            n = len(b["URL"])
            if primary == "all_captions":
                caption, pre_bad = self._joined(b["all_captions"], options.caption_join)
            else:
                caption, pre_bad = _valid_text(path, primary, b[primary])
            source = pa.array([primary] * n, pa.string())
            for col in fallbacks:
                if col in b:
                    # Unreadable fallback text is just unusable; top_caption is also checked in extras.
                    alt, _ = _valid_text(path, col, b[col])
                    use = pc.and_(pc.invert(_nonblank(caption)), _nonblank(alt))
                    caption = pc.if_else(use, alt, caption)
                    source = pc.if_else(use, pa.scalar(col), source)
            extras = [(k, b[c]) for k, c in _COCO_EXTRAS if c in b] + [("caption_from", source)]
            yield assemble(
                path,
                offset,
                url=as_string(path, "URL", b["URL"]),
                caption=caption,
                key=pa.nulls(n, pa.string()),
                width=to_int32(b.get("WIDTH"), n),
                height=to_int32(b.get("HEIGHT"), n),
                extras=extras,
                pre_bad=pre_bad,
            )

    @staticmethod
    def _joined(lists: pa.Array, sep: str) -> tuple[pa.Array, dict[int, tuple[str, str]]]:
        """Join each row's caption list; rows whose list holds invalid UTF-8 get a null caption and
        are returned as ``bad_encoding``."""
        if pa.types.is_null(lists.type):
            return pa.nulls(len(lists), pa.string()), {}
        bad = {i: ("bad_encoding", "all_captions is not valid UTF-8") for i in invalid_rows(lists)}
        if bad:
            lists = pc.if_else(
                pa.array([i in bad for i in range(len(lists))]), pa.scalar(None, lists.type), lists
            )
        joined = [join_sentences(row, sep) if row else "" for row in lists.to_pylist()]
        return pa.array(joined, pa.string()), bad


def _valid_text(path: str, name: str, arr: pa.Array) -> tuple[pa.Array, dict[int, tuple[str, str]]]:
    """A string column with its invalid-UTF-8 values nulled, and those rows as ``bad_encoding``."""
    arr = as_string(path, name, arr).cast(pa.string())
    bad = {i: ("bad_encoding", f"{name} is not valid UTF-8") for i in invalid_rows(arr)}
    if bad:
        arr = pc.if_else(pa.array([i in bad for i in range(len(arr))]), pa.scalar(None, pa.string()), arr)
    return arr, bad


def _is_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and (
        pa.types.is_string(t.value_type)
        or pa.types.is_large_string(t.value_type)
        or pa.types.is_null(t.value_type)
    )
