"""WIT (Wikipedia-based Image Text): ``wit_v1.train.all-0000K-of-00010.tsv.gz`` (one piece each; an
unpacked ``.tsv`` splits into byte ranges, the header read from the file's first line).

Gzip TSV whose first line is a header naming the 17 columns (``language, page_url, image_url,
page_title, section_title, hierarchical_section_title, caption_reference_description,
caption_attribution_description, caption_alt_text_description, mime_type, original_height,
original_width, is_main_image, attribution_passes_lang_id, page_changed_recently,
context_page_description, context_section_description``). Columns are found by header name. Lines are
split on tabs only (the files are not CSV-quoted: quotes inside fields are literal).

RS5M used English WIT only; rows of another language are rejected as ``non_english`` before the rest
of the line is decoded (most WIT rows are not English). WIT has no per-row id: ``key`` is null and the
ingest driver derives it from url+caption; rejects carry the image URL as key.

Caption: the first non-blank of ``caption_fields``. The default order puts the reference description
first (the human-written caption shown under the image in the article, the closest to an image
caption), then the alt text (accessibility text: short, often generic or missing), then the
attribution description (the Commons file description: long, often another language, with
licence/author boilerplate).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from rs5m.sources._files import open_binary
from rs5m.sources._text import RowBuffer, as_int, split_tsv
from rs5m.sources._tsv import first_lines, lines_of, text_pieces
from rs5m.sources.base import AdapterOptions, Keep, LayoutInfo, RawBatch, SourceFormatError

WIT_COLUMNS = (
    "language",
    "page_url",
    "image_url",
    "page_title",
    "section_title",
    "hierarchical_section_title",
    "caption_reference_description",
    "caption_attribution_description",
    "caption_alt_text_description",
    "mime_type",
    "original_height",
    "original_width",
    "is_main_image",
    "attribution_passes_lang_id",
    "page_changed_recently",
    "context_page_description",
    "context_section_description",
)
CaptionField = Literal[
    "caption_reference_description", "caption_alt_text_description", "caption_attribution_description"
]
_EXTRAS = ("language", "page_url", "page_title", "mime_type")


class WitOptions(AdapterOptions):
    """``language``: the WIT language code kept; ``caption_fields``: caption columns in priority order."""

    language: str = "en"
    caption_fields: list[CaptionField] = Field(
        default_factory=lambda: [
            "caption_reference_description",
            "caption_alt_text_description",
            "caption_attribution_description",
        ],
        min_length=1,
    )


def _first_line(path: str) -> bytes:
    """The header line; a damaged stream is a ``SourceFormatError``."""
    try:
        with open_binary(path) as f:
            return f.readline().rstrip(b"\n").rstrip(b"\r")
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceFormatError(f"{path}: corrupt or truncated stream at line 1 ({exc})") from exc


def _as_bool(v: str) -> bool | None:
    low = v.strip().lower()
    return True if low == "true" else False if low == "false" else None


class WitAdapter:
    """WIT TSV files (gzip or plain), one row per (page, image) example."""

    name: ClassVar[str] = "wit"
    options_model: ClassVar[type[AdapterOptions]] = WitOptions

    def detect(self, path: str, options: WitOptions) -> LayoutInfo:
        """``wit-tsv``: the header names the needed columns."""
        first_lines(path, 1)  # a text file, readable
        self._header(path, _first_line(path), options)
        return LayoutInfo("wit-tsv")

    def pieces(self, path: str, options: WitOptions, rows_per_piece: int) -> list[str]:
        """``bytes:`` ranges of a plain TSV (the header stays in the first); ``[""]`` when gzipped."""
        return text_pieces(path, rows_per_piece, header_lines=1)

    def read(
        self, path: str, options: WitOptions, piece: str | None = None, keep: Keep | None = None
    ) -> Iterator[RawBatch]:
        """Yield batches of ``options.batch_rows`` lines (of ``piece``). Raises ``SourceFormatError``
        when the header lacks ``language``, ``image_url`` or a configured caption column."""
        buf = RowBuffer(path, options.batch_rows)
        idx, n_fields = self._header(path, _first_line(path), options)
        li, ui = idx["language"], idx["image_url"]
        lang = options.language.encode("utf-8")
        for lineno, raw in lines_of(path, piece, options.read_buffer_bytes):
            if not raw or lineno == 1:
                continue
            parts = raw.split(b"\t")
            if len(parts) == n_fields and parts[li] != lang:
                url = parts[ui].decode("utf-8", "replace") or None
                got = parts[li].decode("utf-8", "replace")
                buf.reject(lineno, "non_english", f"language={got!r}", key=url)
            else:
                self._row(buf, lineno, raw, idx, n_fields, options)
            if buf.full():
                yield buf.take()
        yield from buf.drain()

    @staticmethod
    def _header(path: str, raw: bytes, options: WitOptions) -> tuple[dict[str, int], int]:
        try:
            names = [c.strip() for c in raw.decode("utf-8").split("\t")]
        except UnicodeDecodeError as exc:
            raise SourceFormatError(f"{path}: header line is not UTF-8 ({exc})") from exc
        idx = {c: i for i, c in enumerate(names) if c in WIT_COLUMNS}
        missing = [c for c in ("language", "image_url", *options.caption_fields) if c not in idx]
        if missing:
            raise SourceFormatError(
                f"{path}: WIT header lacks column(s) {missing}; first line is {names[:17]}"
            )
        return idx, len(names)

    @staticmethod
    def _row(buf: RowBuffer, lineno: int, raw: bytes, idx: dict[str, int], n: int, opt: WitOptions) -> None:
        fields, reason, detail = split_tsv(raw, n)
        if fields is None:
            buf.reject(lineno, reason, detail)
            return
        get = {c: fields[i] for c, i in idx.items()}.get
        caption, used = "", None
        for col in opt.caption_fields:
            if (get(col) or "").strip():
                caption, used = get(col), col
                break
        extras = {c: get(c) for c in _EXTRAS if c in idx}
        extras["is_main_image"] = _as_bool(get("is_main_image") or "")
        extras["caption_field"] = used
        width = as_int(get("original_width"))
        height = as_int(get("original_height"))
        buf.add(lineno, None, get("image_url"), caption, width, height, extras, checked=True)
