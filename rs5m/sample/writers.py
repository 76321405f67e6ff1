"""Writers for the parquet PUB11 sources (LAION2B, LAION400M, LAION-COCO, COYO-700M) and the helpers
shared by every format writer (``textwriters`` and ``jsonwriters`` hold the other sources).

Contract of every ``write_<format>(root, src, cap, rng)``: writes the source's files under
``root/<source>/`` with the official file names and layout, one physical row per ``Row`` in order, and returns
``(files, options)``: paths relative to ``root`` and the adapter options for build.yaml (``*_file``
options relative to ``root``). Output bytes depend only on the plan and ``rng`` state (gzip mtime 0,
no timestamps, fixed parquet row-group size).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rs5m.sample.captions import Captioner
from rs5m.sample.plan import Row, SourceRows

ROW_GROUP = 64
PARQUET = {
    "laion2b": "part-00000-5114fd87-297e-42b0-9d11-50f1df323dfa-c000.snappy.parquet",
    "laion400m": "part-00000-5b54c5d5-bbcf-484d-a2ce-0d6f73df1a36-c000.snappy.parquet",
    "laioncoco": "part-00000-2256f782-126f-4dc6-b9c6-e6757637749d-c000.snappy.parquet",
    "coyo700m": "part-00000-17da4908-939c-46e5-91d0-15f256041956-c000.snappy.parquet",
}
LAION_SCHEMA = pa.schema(
    [
        ("SAMPLE_ID", pa.int64()),
        ("URL", pa.string()),
        ("TEXT", pa.string()),
        ("HEIGHT", pa.int32()),
        ("WIDTH", pa.int32()),
        ("LICENSE", pa.string()),
        ("NSFW", pa.string()),
        ("similarity", pa.float64()),
    ]
)
COCO_SCHEMA = pa.schema(
    [
        ("URL", pa.string()),
        ("TEXT", pa.string()),
        ("top_caption", pa.string()),
        ("all_captions", pa.list_(pa.string())),
        ("all_similarities", pa.list_(pa.float64())),
        ("WIDTH", pa.int64()),
        ("HEIGHT", pa.int64()),
        ("similarity", pa.float64()),
        ("hash", pa.int64()),
        ("pwatermark", pa.float64()),
        ("punsafe", pa.float64()),
    ]
)
_I32, _F = pa.int32(), pa.float64()
COYO_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("url", pa.string()),
        ("text", pa.string()),
        ("width", _I32),
        ("height", _I32),
        ("image_phash", pa.string()),
        ("text_length", _I32),
        ("word_count", _I32),
        ("num_tokens_bert", _I32),
        ("num_tokens_gpt", _I32),
        ("num_faces", _I32),
        ("clip_similarity_vitb32", _F),
        ("clip_similarity_vitl14", _F),
        ("nsfw_score_opennsfw2", _F),
        ("nsfw_score_gantman", _F),
        ("watermark_score", _F),
        ("aesthetic_score_laion_v2", _F),
    ]
)
Result = tuple[list[str], dict[str, Any]]


def row_text(cap: Captioner, r: Row, style: Callable[[tuple[str, ...]], str]) -> str | None:
    """The caption of a one-text row in ``style``; "" or None for a planted missing caption."""
    if r.reject == "missing_caption":
        return ""
    if r.text is not None:
        return r.text
    return cap.near_miss() if r.kind == "near_miss" else style(r.patterns)


def build_records(src: SourceRows, make: Callable[[int, Row], Any]) -> list[Any]:
    """One record per row; duplicate rows repeat their original's record exactly."""
    out: list[Any] = []
    for i, r in enumerate(src.rows):
        out.append(out[r.dup_of] if r.dup_of is not None else make(i, r))
    return out


def _parquet(root: Path, name: str, schema: pa.Schema, records: list[dict[str, Any]]) -> list[str]:
    rel = f"{name}/{PARQUET[name]}"
    (root / name).mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(records, schema=schema)
    pq.write_table(table, root / rel, compression="snappy", row_group_size=ROW_GROUP)
    return [rel]


def write_laion(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """LAION2B-en / LAION400M parquet: SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH, LICENSE, NSFW, similarity."""
    base = rng.randrange(10**9, 4 * 10**9)

    def make(i: int, r: Row) -> dict[str, Any]:
        text = row_text(cap, r, cap.alt)
        if text == "" and rng.random() < 0.5:
            text = None
        return {
            "SAMPLE_ID": base + 5 * i + rng.randrange(5),
            "URL": r.url,
            "TEXT": text,
            "HEIGHT": r.height,
            "WIDTH": r.width,
            "LICENSE": rng.choice(("?", "?", "?", "http://creativecommons.org/licenses/by/2.0/")),
            "NSFW": rng.choice(("UNLIKELY",) * 8 + ("UNSURE", "NSFW")),
            "similarity": round(rng.uniform(0.28, 0.45), 6),
        }

    return _parquet(root, src.name, LAION_SCHEMA, build_records(src, make)), {}


def write_coyo(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """COYO-700M parquet with its 17 columns."""

    def make(i: int, r: Row) -> dict[str, Any]:
        text = row_text(cap, r, cap.alt) or ""
        words = len(text.split())
        u = rng.uniform
        return {
            "id": rng.randrange(10**12, 10**13),
            "url": r.url,
            "text": text,
            "width": r.width,
            "height": r.height,
            "image_phash": f"{rng.getrandbits(64):016x}",
            "text_length": len(text),
            "word_count": words,
            "num_tokens_bert": words + words // 3,
            "num_tokens_gpt": words + words // 4,
            "num_faces": rng.choice((0, 0, 0, 1, 2)),
            "clip_similarity_vitb32": round(u(0.2, 0.4), 6),
            "clip_similarity_vitl14": round(u(0.18, 0.38), 6),
            "nsfw_score_opennsfw2": round(u(0, 0.1), 6),
            "nsfw_score_gantman": round(u(0, 0.1), 6),
            "watermark_score": round(u(0, 0.6), 6),
            "aesthetic_score_laion_v2": round(u(4.0, 6.5), 6),
        }

    return _parquet(root, src.name, COYO_SCHEMA, build_records(src, make)), {}


def write_laioncoco(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """LAION-COCO parquet; the planted keywords live in ``all_captions`` (the reader's default caption)."""

    def make(i: int, r: Row) -> dict[str, Any]:
        if r.reject == "missing_caption":
            caps: list[str] = []
            text: str | None = None
        elif r.kind == "near_miss":
            caps = [cap.near_miss().lower(), *cap.blip((), rng.randint(3, 6))]
            text = cap.plain()
        else:
            caps = cap.blip(r.patterns, rng.randint(4, 7))
            text = cap.alt(r.alt_patterns or r.patterns)
        sims = sorted((round(rng.uniform(0.25, 0.42), 6) for _ in caps), reverse=True)
        return {
            "URL": r.url,
            "TEXT": text,
            "top_caption": caps[0] if caps else None,
            "all_captions": caps,
            "all_similarities": sims,
            "WIDTH": r.width,
            "HEIGHT": r.height,
            "similarity": round(rng.uniform(0.28, 0.4), 6),
            "hash": rng.getrandbits(63) - 2**62,
            "pwatermark": round(rng.uniform(0, 0.5), 6),
            "punsafe": round(rng.uniform(0, 0.05), 6),
        }

    return _parquet(root, src.name, COCO_SCHEMA, build_records(src, make)), {"caption_mode": "all_captions"}
