"""COYO-700M: ``kakaobrain/coyo-700m`` parquet parts (``data/part-*-17da4908-...-c000.snappy.parquet``).

Columns: ``id, url, text, width, height, image_phash, text_length, word_count, num_tokens_bert,
num_tokens_gpt, num_faces, clip_similarity_vitb32, clip_similarity_vitl14, nsfw_score_opennsfw2,
nsfw_score_gantman, watermark_score, aesthetic_score_laion_v2``. key = ``id``; caption = ``text``.
Extras keep the scores later stages may filter or rank on, under their COYO names.
"""

from __future__ import annotations

from typing import ClassVar

from rs5m.sources._parquet import ParquetAdapter, ParquetLayout, ParquetOptions
from rs5m.sources.base import AdapterOptions

_EXTRA_COLUMNS = (
    "clip_similarity_vitb32",
    "clip_similarity_vitl14",
    "watermark_score",
    "aesthetic_score_laion_v2",
    "nsfw_score_opennsfw2",
    "nsfw_score_gantman",
    "image_phash",
)


class CoyoOptions(ParquetOptions):
    """COYO-700M options: ``batch_rows`` and ``columns`` (a hand-made column map)."""


class CoyoAdapter(ParquetAdapter):
    """COYO-700M parquet parts; raises ``SourceFormatError`` without ``url`` or ``text`` columns."""

    name: ClassVar[str] = "coyo700m"
    what: ClassVar[str] = "COYO-700M parquet"
    options_model: ClassVar[type[AdapterOptions]] = CoyoOptions
    layouts: ClassVar[tuple[ParquetLayout, ...]] = (
        ParquetLayout(
            "coyo",
            url=("url",),
            caption=("text",),
            key=("id",),
            width=("width",),
            height=("height",),
            extras=tuple((c, c) for c in _EXTRA_COLUMNS),
        ),
    )
