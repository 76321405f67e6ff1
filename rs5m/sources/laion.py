"""LAION2B-en, LAION400M and LAION-COCO parquet parts, in the original layouts and as re-released in
Re-LAION (Hugging Face, gated). The layout is detected per file from its schema (names matched
case-insensitively), so both kinds of file can be read by one source:

- ``laion-original``: ``SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH, LICENSE, NSFW, similarity`` (key = SAMPLE_ID);
- ``laion-joined``: ``URL, TEXT, WIDTH, HEIGHT, similarity, hash, punsafe, pwatermark`` (no id: key is
  null and the ingest driver derives it from url+caption);
- ``relaion`` (``laion/relaion2B-en-research[-safe]``, ``laion/relaion400m``): ``url, caption,
  similarity, hash, pwatermark, punsafe, key, status, error_message, width, height, original_width,
  original_height, exif, md5``; key = ``key`` (per row ``hash`` when ``key`` is null or absent); width
  and height = ``original_width``/``original_height`` (the source image, as LAION's WIDTH/HEIGHT),
  else ``width``/``height``.

Extras keys: similarity, punsafe, pwatermark, nsfw, license, hash (those present), so a Re-LAION row
and an original-layout row of the same sample carry the same url, caption, size and scores.

LAION-COCO (``URL, TEXT, top_caption, all_captions, all_similarities, WIDTH, HEIGHT, similarity, hash,
pwatermark, punsafe``): RS5M's keyword filter ran on the BLIP captions concatenated (paper App. B5,
Fig. 21), so the default caption is ``all_captions`` joined with ". ". ``laion/relaion-coco``'s columns
are not confirmed (no file seen): it is read as ``relaion-coco`` when its alt text is named ``caption``
(Re-LAION's name for ``TEXT``) instead of ``TEXT``, with the BLIP columns under their LAION-COCO names
when present, and key = ``key``/``hash`` as in Re-LAION; the ``columns`` option maps anything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.sources._arrow import (
    as_string,
    assemble,
    invalid_rows,
    iter_parquet,
    open_parquet,
    row_group_pieces,
    to_int32,
)
from rs5m.sources._parquet import (
    ParquetAdapter,
    ParquetColumns,
    ParquetLayout,
    ParquetOptions,
    coalesce_keys,
    finder,
)
from rs5m.sources._text import join_sentences
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, SourceFormatError, tried

_SCORES = (("similarity", "similarity"), ("punsafe", "punsafe"), ("pwatermark", "pwatermark"))
_LAION_EXTRAS = (*_SCORES, ("nsfw", "NSFW"), ("license", "LICENSE"), ("hash", "hash"))
LAION_LAYOUTS = (
    ParquetLayout(
        "laion-original", ("URL",), ("TEXT",), ("SAMPLE_ID",), ("WIDTH",), ("HEIGHT",), _LAION_EXTRAS,
        requires=("SAMPLE_ID",),
    ),
    ParquetLayout("laion-joined", ("URL",), ("TEXT",), (), ("WIDTH",), ("HEIGHT",), _LAION_EXTRAS),
    ParquetLayout(
        "relaion", ("url",), ("caption",), ("key", "hash"), ("original_width", "width"),
        ("original_height", "height"), (*_SCORES, ("hash", "hash")),
    ),
)  # fmt: skip


class LaionOptions(ParquetOptions):
    """LAION2B-en / LAION400M options: ``batch_rows`` and ``columns`` (a hand-made column map)."""


class Laion2bAdapter(ParquetAdapter):
    """``laion/relaion2B-en-research[-safe]`` or ``laion/laion2B-en`` parquet parts (any layout above)."""

    name: ClassVar[str] = "laion2b"
    what: ClassVar[str] = "LAION-2B-en parquet"
    options_model: ClassVar[type[AdapterOptions]] = LaionOptions
    layouts: ClassVar[tuple[ParquetLayout, ...]] = LAION_LAYOUTS


class Laion400mAdapter(ParquetAdapter):
    """``laion/relaion400m`` or ``laion400m-meta`` parquet parts (any layout above)."""

    name: ClassVar[str] = "laion400m"
    what: ClassVar[str] = "LAION-400M parquet"
    options_model: ClassVar[type[AdapterOptions]] = LaionOptions
    layouts: ClassVar[tuple[ParquetLayout, ...]] = LAION_LAYOUTS


# --- LAION-COCO --------------------------------------------------------------------------------------


class LaionCocoColumns(ParquetColumns):
    """LAION-COCO's column map: ``caption`` is the alt text (``TEXT``); the BLIP columns too."""

    top_caption: str | None = None
    all_captions: str | None = None


class LaionCocoOptions(AdapterOptions):
    """``caption_mode``: ``all_captions`` (BLIP candidates joined by ``caption_join``, falling back to
    ``top_caption`` then the alt text when the list is empty), ``top_caption`` (falling back to the alt
    text) or ``text`` (the original alt text). ``columns`` maps roles to columns by hand."""

    caption_mode: Literal["all_captions", "top_caption", "text"] = "all_captions"
    caption_join: str = ". "
    columns: LaionCocoColumns | None = None


_COCO_EXTRAS = (("top_caption", "top_caption"), *_SCORES, ("hash", "hash"))
_PRIMARY = {"all_captions": "all_captions", "top_caption": "top_caption", "text": "text"}
_FALLBACKS = {"all_captions": ["top_caption", "text"], "top_caption": ["text"], "text": []}
_ROLES = {"url": ("URL",), "text": ("TEXT", "caption"), "top_caption": ("top_caption",)}
_ROLES |= {"all_captions": ("all_captions",), "width": ("original_width", "WIDTH")}
_ROLES |= {"height": ("original_height", "HEIGHT")}
_COCO_TRIED = {
    "laion-coco": "URL, all_captions|top_caption|TEXT per caption_mode",
    "relaion-coco": "url, all_captions|top_caption|caption per caption_mode",
}


@dataclass
class _Coco:
    layout: str
    cols: dict[str, str]  # role -> file column
    keys: list[str]
    extras: list[tuple[str, str]]


def _nonblank(arr: pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0), False)


class LaionCocoAdapter:
    """``laion/laion-coco`` (or ``laion/relaion-coco``) parquet parts; caption by ``caption_mode``.

    Extras: top_caption, similarity, punsafe, pwatermark, hash (those present) and ``caption_from``,
    the role the caption came from (``all_captions``, ``top_caption``, or ``TEXT`` for the alt text).
    """

    name: ClassVar[str] = "laioncoco"
    options_model: ClassVar[type[AdapterOptions]] = LaionCocoOptions

    def _resolve(self, path: str, pf: pq.ParquetFile, options: LaionCocoOptions) -> _Coco:
        names = pf.schema_arrow.names
        find = finder(names)
        cols = {role: c for role, cands in _ROLES.items() if (c := find(cands))}
        mapped = options.columns.model_dump() if options.columns else {}
        for role, col in mapped.items():
            if col:
                if not find((col,)):
                    raise SourceFormatError(
                        f"{path}: column {col!r} (columns option, {role}) is not in the file; it has {names}"
                    )
                cols["text" if role == "caption" else role] = find((col,)) or col
        primary = _PRIMARY[options.caption_mode]
        if "url" not in cols or primary not in cols:
            found = f"file has {list(names)} (caption_mode {options.caption_mode})"
            raise tried(path, "LAION-COCO parquet", _COCO_TRIED, found)
        if primary == "all_captions" and not _is_list(pf.schema_arrow.field(cols[primary]).type):
            raise SourceFormatError(f"{path}: column all_captions is not a list of strings")
        relaion = cols.get("text", "").lower() == "caption" or bool(find(("key",)))
        keys = [mapped["key"]] if mapped.get("key") else []
        keys = keys or ([c for c in (find(("key",)), find(("hash",))) if c] if relaion else [])
        extras = [(k, c) for k, col in _COCO_EXTRAS if (c := find((col,)))]
        name = ("relaion-coco" if relaion else "laion-coco") + ("+columns" if any(mapped.values()) else "")
        return _Coco(name, cols, keys, extras)

    def detect(self, path: str, options: LaionCocoOptions) -> LayoutInfo:
        """Layout from the schema and row count from the footer."""
        pf = open_parquet(path, options.read_buffer_bytes)
        return LayoutInfo(self._resolve(path, pf, options).layout, pf.metadata.num_rows)

    def pieces(self, path: str, options: LaionCocoOptions, rows_per_piece: int) -> list[str]:
        """Row-group ranges of about ``rows_per_piece`` rows, from the footer."""
        pf = open_parquet(path, options.read_buffer_bytes)
        self._resolve(path, pf, options)
        return row_group_pieces(pf, rows_per_piece)

    def read(
        self, path: str, options: LaionCocoOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield one ``RawBatch`` per parquet batch (of ``piece``); ``SourceFormatError`` when the file is
        not parquet or lacks the url or the caption mode's column."""
        pf = open_parquet(path, options.read_buffer_bytes)
        r = self._resolve(path, pf, options)
        primary = _PRIMARY[options.caption_mode]
        fallbacks = [f for f in _FALLBACKS[options.caption_mode] if f in r.cols]
        read_cols = {c: c for c in [*r.cols.values(), *r.keys, *(c for _, c in r.extras)]}
        for offset, b in iter_parquet(path, pf, read_cols, options.batch_rows, piece):
            n = len(b[r.cols["url"]])
            if primary == "all_captions":
                caption, pre_bad = self._joined(b[r.cols["all_captions"]], options.caption_join)
            else:
                caption, pre_bad = _valid_text(path, r.cols[primary], b[r.cols[primary]])
            source = pa.array([_label(primary)] * n, pa.string())
            for role in fallbacks:
                # Unreadable fallback text is just unusable; top_caption is also checked in extras.
                alt, _ = _valid_text(path, r.cols[role], b[r.cols[role]])
                use = pc.and_(pc.invert(_nonblank(caption)), _nonblank(alt))
                caption = pc.if_else(use, alt, caption)
                source = pc.if_else(use, pa.scalar(_label(role)), source)
            width, height = r.cols.get("width"), r.cols.get("height")
            yield assemble(
                path,
                offset,
                url=as_string(path, r.cols["url"], b[r.cols["url"]]),
                caption=caption,
                key=coalesce_keys(path, b, r.keys, n),
                width=to_int32(b[width] if width else None, n),
                height=to_int32(b[height] if height else None, n),
                extras=[(k, b[c]) for k, c in r.extras] + [("caption_from", source)],
                pre_bad=pre_bad,
                keep=keep,
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


def _label(role: str) -> str:
    """``caption_from`` value of a role (the alt text keeps LAION-COCO's column name, TEXT)."""
    return "TEXT" if role == "text" else role


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
