"""Writers for the PUB11 sources published as JSON documents: RedCaps, SBU and Visual Genome.

Same contract as ``rs5m.sample.writers``: official file names and structure (reference §2), one record
per planned ``Row`` in order, returns ``(files relative to root, adapter options)``. JSON is written
with ``ensure_ascii=False`` and no indentation, like the originals.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rs5m.sample import vocab
from rs5m.sample.captions import Captioner
from rs5m.sample.plan import Row, SourceRows
from rs5m.sample.writers import Result, build_records, row_text

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_YEAR_START = {2019: 1546300800, 2020: 1577836800, 2021: 1609459200}


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")


def write_redcaps(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """RedCaps ``annotations/<subreddit>_<year>.json`` files (``{"info", "annotations"}``); rows are
    split over the files in ``vocab.REDDIT_SUBS`` order, a duplicate staying in its original's file."""
    bounds, start = [], 0
    for sub, year, k in vocab.REDDIT_SUBS:
        bounds.append((start, start + k, sub, year))
        start += k
    file_of: list[int] = []
    for i, r in enumerate(src.rows):
        fi = next((j for j, (a, b, _, _) in enumerate(bounds) if a <= i < b), len(bounds) - 1)
        file_of.append(file_of[r.dup_of] if r.dup_of is not None else fi)

    def make(i: int, r: Row) -> dict[str, Any]:
        _, _, sub, year = bounds[file_of[i]]
        if r.reject == "missing_caption":
            caption, raw = "", "[OC] [4032x3024]"
        elif r.kind == "near_miss":
            caption = cap.near_miss().lower()
            raw = f"[OC] {caption} [3000x2000]"
        else:
            caption, raw = cap.reddit(r.patterns)
        image_id = "".join(rng.choice(_B36) for _ in range(6))
        slug = "_".join(w for w in "".join(c if c.isalnum() else " " for c in raw.lower()).split())[:60]
        return {
            "image_id": image_id,
            "subreddit": sub,
            "url": r.url,
            "caption": caption,
            "raw_caption": raw,
            "score": rng.randint(1, 40000),
            "author": f"user_{rng.getrandbits(24):06x}",
            "created_utc": float(_YEAR_START[year] + rng.randrange(365 * 86400)),
            "permalink": f"/r/{sub}/comments/{image_id}/{slug}/",
        }

    records = build_records(src, make)
    files = []
    for j, (_, _, sub, year) in enumerate(bounds):
        rel = f"redcaps/annotations/{sub}_{year}.json"
        info = {
            "subreddit": sub,
            "year": year,
            "url": "https://redcaps.xyz",
            "version": "1.0",
            "description": f"RedCaps annotations of r/{sub} posts from {year}",
        }
        anns = [rec for rec, f in zip(records, file_of, strict=True) if f == j]
        _dump(root / rel, {"info": info, "annotations": anns})
        files.append(rel)
    return files, {}


def write_sbu(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """SBU ``sbu-captions-all.json``: columnar ``{"image_urls", "captions", "user_ids"}``."""
    records = build_records(
        src, lambda i, r: (r.url, row_text(cap, r, cap.sbu), f"{rng.randrange(10**7, 10**8)}@N0{i % 9}")
    )
    _dump(
        root / "sbu/sbu-captions-all.json",
        {
            "image_urls": [u for u, _, _ in records],
            "captions": [c for _, c, _ in records],
            "user_ids": [uid for _, _, uid in records],
        },
    )
    return ["sbu/sbu-captions-all.json"], {}


def write_vg(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """Visual Genome ``image_data.json`` (one entry per row) and ``region_descriptions.json``
    (``[{"regions": [...], "id": image_id}]``); a hit's first region phrase carries the keywords, a
    ``missing_caption`` image has no regions."""
    next_region = [1]

    def make(i: int, r: Row) -> tuple[dict[str, Any], dict[str, Any]]:
        image = {
            "image_id": i + 1,
            "url": r.url,
            "width": r.width,
            "height": r.height,
            "coco_id": rng.randrange(1, 580000) if rng.random() < 0.4 else None,
            "flickr_id": rng.randrange(10**8, 10**9) if rng.random() < 0.4 else None,
        }
        if r.reject == "missing_caption":
            phrases: list[str] = []
        elif r.kind == "near_miss":
            phrases = [cap.near_miss().lower(), *cap.vg((), rng.randint(2, 5))]
        else:
            phrases = cap.vg(r.patterns, rng.randint(3, 8))
        regions = []
        for phrase in phrases:
            x, y = rng.randrange(r.width // 2), rng.randrange(r.height // 2)
            w, h = rng.randint(8, r.width - x), rng.randint(8, r.height - y)
            regions.append({"region_id": next_region[0], "width": w, "height": h, "image_id": i + 1,
                            "phrase": phrase, "y": y, "x": x})  # fmt: skip
            next_region[0] += 1
        return image, {"regions": regions, "id": i + 1}

    pairs = build_records(src, make)
    _dump(root / "vg/image_data.json", [image for image, _ in pairs])
    _dump(root / "vg/region_descriptions.json", [regions for _, regions in pairs])
    return ["vg/image_data.json"], {"regions_file": "vg/region_descriptions.json"}
