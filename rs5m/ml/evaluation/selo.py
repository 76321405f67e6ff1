"""Semantic-localisation map generation on AIR-SLT (reference §11.3, as GeoRSCLIP/SeLo generate them).

For each scale s: two grids of s x s tiles with stride s, offsets 0 and s/2, tiles running past the
border moved back inside; identical tiles count once (the reference keys them by file name). Each
tile: cv2 crop -> resize 256x256 (INTER_CUBIC) -> JPEG (cv2 default quality 95) -> decoded with PIL ->
eval preprocess. Pixel heat = mean cosine(tile, query) over covering tiles; min-max -> uint8 ->
``cv2.medianBlur(., 251)`` -> grayscale JPEG -> read back: that map is what the metrics score.
JPEG round trips run in memory with the same codec and settings as the reference's files.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from rs5m.config.evaluate import SeloDataset
from rs5m.ml.evaluation import slm
from rs5m.ml.evaluation.embed import Embedder, files_fingerprint

TILE_SIZE = 256
MEDIAN_KSIZE = 251
Box = tuple[int, int, int, int]  # row0, row1, col0, col1


def _starts(length: int, step: int, offset: int) -> list[tuple[int, int]]:
    spans = []
    for start in range(offset, length, step):
        end = start + step
        if end >= length:
            start, end = length - step, length
        spans.append((start, end))
    return spans


def tile_boxes(height: int, width: int, scales: list[int]) -> list[Box]:
    """Unique tile boxes in generation order (scale, then offset 0 / s/2, then column, then row)."""
    if any(s > height or s > width for s in scales):
        raise ValueError(f"image {width}x{height} is smaller than a tile scale in {scales}")
    seen: dict[Box, None] = {}
    for step in scales:
        for gap in (step, int(0.5 * step)):
            offset = step - gap
            for c0, c1 in _starts(width, step, offset):
                for r0, r1 in _starts(height, step, offset):
                    seen.setdefault((r0, r1, c0, c1), None)
    return list(seen)


def jpeg_bytes(array: np.ndarray) -> bytes:
    """The bytes ``cv2.imwrite(name.jpg, array)`` would write (same encoder, default quality 95)."""
    ok, buf = cv2.imencode(".jpg", array)
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def tile_image(source_bgr: np.ndarray, box: Box) -> Image.Image:
    """One tile as the reference's model sees it before the eval preprocess."""
    r0, r1, c0, c1 = box
    tile = cv2.resize(source_bgr[r0:r1, c0:c1], (TILE_SIZE, TILE_SIZE), interpolation=cv2.INTER_CUBIC)
    image = Image.open(io.BytesIO(jpeg_bytes(tile)))
    image.load()
    return image


def read_bgr(path: str | os.PathLike[str]) -> np.ndarray:
    """``cv2.imread`` colour image; ``FileNotFoundError``/``ValueError`` when missing or unreadable."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"SeLo image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode SeLo image {path}")
    return image


class TileDataset(Dataset):
    """Preprocessed tiles of one decoded (BGR) large image."""

    def __init__(self, image: np.ndarray, boxes: list[Box], preprocess: Any):
        self.image, self.boxes, self.preprocess = image, boxes, preprocess

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int) -> Any:
        return self.preprocess(tile_image(self.image, self.boxes[index]))


def heat_map(shape: tuple[int, int], boxes: list[Box], sims: np.ndarray) -> np.ndarray:
    """Per-pixel mean of the similarities of the tiles covering it (float64)."""
    total = np.zeros(shape, dtype=np.float64)
    count = np.zeros(shape, dtype=np.float64)
    for (r0, r1, c0, c1), sim in zip(boxes, sims, strict=True):
        total[r0:r1, c0:c1] += float(sim)
        count[r0:r1, c0:c1] += 1
    return total / count


def probmap_jpeg(heat: np.ndarray) -> bytes:
    """Min-max to uint8, median blur 251, grayscale JPEG bytes (the reference's ``probmap_*.jpg``)."""
    shifted = heat - np.min(heat)
    top = np.max(shifted)
    scaled = shifted / top if top > 0 else shifted  # a flat map would be 0/0 in the reference
    gray = cv2.medianBlur(np.uint8(255 * scaled), MEDIAN_KSIZE)
    return jpeg_bytes(gray)


def decode_probmap(data: bytes) -> np.ndarray:
    """Probability map read back as the metric code does: grayscale decode / 255."""
    gray = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    return slm.gray_to_prob(gray)


def load_annotations(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """``anno.json``: a list of ``{caption, jpg_name, points}``; ``ValueError`` if malformed."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"SeLo annotations not found: {p}")
    try:
        items = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not JSON ({exc})") from exc
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and {"caption", "jpg_name", "points"} <= set(i) for i in items
    ):
        raise ValueError(f"{p}: expected a list of {{caption, jpg_name, points}} objects")
    return items


def evaluate_selo(
    embedder: Embedder, ds: SeloDataset, maps_dir: str | os.PathLike[str] | None = None
) -> dict:
    """Run SeLo on every query (or the first ``max_queries``); optional probmaps under ``maps_dir``."""
    queries = load_annotations(ds.annotations)[: ds.max_queries]
    texts = embedder.texts(f"selo-{ds.name}", [q["caption"] for q in queries])
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    tiles: dict[str, tuple[tuple[int, int], list[Box], np.ndarray]] = {}
    per_query = []
    for i, query in enumerate(queries):
        name = query["jpg_name"]
        if name not in tiles:
            tiles[name] = _embed_tiles(embedder, os.path.join(ds.images_dir, name), ds.scales)
        shape, boxes, feats = tiles[name]
        data = probmap_jpeg(heat_map(shape, boxes, feats @ texts[i]))
        if maps_dir is not None:
            Path(maps_dir).mkdir(parents=True, exist_ok=True)
            (Path(maps_dir) / f"probmap_{i}.jpg").write_bytes(data)
        metrics = slm.slm_metrics(decode_probmap(data), query["points"])
        per_query.append({"index": i, "jpg_name": name, "caption": query["caption"].strip(), **metrics})
    return {
        "task": "selo",
        "dataset": ds.name,
        "n_queries": len(queries),
        "n_images": len(tiles),
        "metrics": slm.mean_metrics(per_query),
        "per_query": per_query,
    }


def _embed_tiles(
    embedder: Embedder, path: str, scales: list[int]
) -> tuple[tuple[int, int], list[Box], np.ndarray]:
    image = read_bgr(path)
    height, width = image.shape[:2]
    boxes = tile_boxes(height, width, scales)
    fp = files_fingerprint([path], extra=["tiles", scales, TILE_SIZE])
    feats = embedder.dataset("selo-tiles", TileDataset(image, boxes, embedder.preprocess), fp)
    return (height, width), boxes, feats
