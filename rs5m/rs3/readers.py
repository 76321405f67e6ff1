"""Readers for the RS3 datasets as their official distributions lay them out on disk.

- fMoW-rgb: ``<root>/train/<category>/<category>_<n>/<category>_<n>_<k>_{rgb,msrgb}.jpg``, each image with
  its metadata JSON beside it (same stem, ``.json``).
- BigEarthNet-S2 v1.0: ``<root>/<patch>/<patch>_B02.tif`` ... one single-band 16-bit GeoTIFF per band,
  and ``<patch>_labels_metadata.json`` (labels, coordinates, projection, tile_source, acquisition_date).
  RGB = bands B04/B03/B02; L2A surface reflectance is stored x10000, and digital numbers 0..``scale_max``
  (default 3000, i.e. reflectance 0-0.3, where nearly all land surfaces lie) map linearly to 0..255,
  clipped, with no per-patch stretch so colours compare across patches. The 120x120 RGB is written as PNG.
- MillionAID: image files, no labels (``<root>/test/*.jpg``).

Contract: ``list_items(source, root, patterns)`` returns sorted keys (paths relative to ``root``; BEN:
patch folder names); ``read_item`` never raises for a bad file: it returns a :class:`ReadItem` whose
``status`` is ``"ok"`` or one of the ``RS3Reason`` read codes with a ``detail``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rs5m.core.io import atomic_path
from rs5m.core.schema import make_uid
from rs5m.rs3.metacaption import MetadataError, ben_fields, fmow_fields

SOURCES = ("fmow", "ben", "millionaid")
DISPLAY = {"fmow": "FMoW", "ben": "BigEarthNet", "millionaid": "MillionAID"}
DEFAULT_PATTERNS = {
    "fmow": ["train/*/*/*_rgb.jpg", "train/*/*/*_msrgb.jpg"],
    "ben": ["*"],
    "millionaid": ["test/**/*.jpg", "test/**/*.png", "test/**/*.tif"],
}
BEN_RGB = ("B04", "B03", "B02")


class RS3Reason(StrEnum):
    """Why an RS3 file was not captioned (stage ``read`` then ``caption``)."""

    UNREADABLE_IMAGE = "unreadable_image"  # empty, unidentifiable or undecodable pixels
    TRUNCATED_IMAGE = "truncated_image"
    TOO_MANY_PIXELS = "too_many_pixels"  # over PIL's decompression-bomb limit
    MISSING_BAND = "missing_band"  # a BigEarthNet patch without one of B04/B03/B02
    MISSING_METADATA = "missing_metadata"  # no JSON beside the image / in the patch
    MALFORMED_METADATA = "malformed_metadata"  # unparsable JSON or a required field missing/unusable
    CAPTION_FAILED = "caption_failed"  # the captioner raised for this image
    EMPTY_CAPTION = "empty_caption"  # every sampled caption was empty


@dataclass
class ReadItem:
    """One dataset file after reading: where its RGB image is, its metadata, or why it failed."""

    uid: str
    source: str
    name: str
    key: str
    image_path: str | None = None
    status: str = "ok"
    detail: str | None = None
    metadata: str | None = None
    family: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    geo: dict[str, Any] = field(default_factory=dict)

    def fail(self, reason: RS3Reason, detail: str) -> ReadItem:
        """Mark this item failed under ``reason``; returns ``self``."""
        self.status, self.detail = reason.value, detail[:300]
        return self


def list_items(source: str, root: str | Path, patterns: list[str] | None = None) -> list[str]:
    """Sorted, de-duplicated keys of a dataset (BEN: patch folders; others: image files)."""
    root = Path(root)
    found: set[str] = set()
    for pattern in patterns or DEFAULT_PATTERNS[source]:
        for p in root.glob(pattern):
            if p.is_dir() if source == "ben" else p.is_file():
                found.add(p.relative_to(root).as_posix())
    return sorted(found)


def check_image(path: Path, probe_size: int = 256) -> tuple[RS3Reason, str] | None:
    """``None`` when ``path`` decodes (JPEGs decoded at reduced scale: cheap, still reads every block)."""
    try:
        if path.stat().st_size == 0:
            return RS3Reason.UNREADABLE_IMAGE, "0 bytes"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.draft("RGB", (probe_size, probe_size))
                img.load()
    except Image.DecompressionBombError as exc:
        return RS3Reason.TOO_MANY_PIXELS, str(exc)
    except Exception as exc:  # PIL raises many types for bad files; all mean "cannot use this image"
        text = f"{type(exc).__name__}: {exc}"
        truncated = "truncated" in text.lower()
        return (RS3Reason.TRUNCATED_IMAGE if truncated else RS3Reason.UNREADABLE_IMAGE), text
    return None


def _load_json(path: Path, item: ReadItem) -> dict[str, Any] | None:
    if not path.is_file():
        item.fail(RS3Reason.MISSING_METADATA, f"{path.name} not found")
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: absurdly deep nesting is malformed metadata, not a crash
        item.fail(RS3Reason.MALFORMED_METADATA, f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}")
        return None
    if not isinstance(meta, dict):
        item.fail(RS3Reason.MALFORMED_METADATA, f"{path.name}: not a JSON object")
        return None
    item.metadata = json.dumps(meta, ensure_ascii=False, sort_keys=True)
    return meta


def read_fmow(root: Path, key: str) -> ReadItem:
    """One fMoW image and its JSON; fields for the ``fmow`` meta-caption family (place/season later)."""
    path = root / key
    item = ReadItem(make_uid("fmow", key), "fmow", f"fmow_{path.stem}", key, str(path), family="fmow")
    meta = _load_json(path.with_suffix(".json"), item)
    if meta is None:
        return item
    parts = Path(key).parts
    category = parts[-3] if len(parts) >= 3 else ""
    try:
        item.fields, item.geo = fmow_fields(
            meta, category, "msrgb" if path.stem.endswith("_msrgb") else "rgb"
        )
    except _BAD_METADATA as exc:
        return item.fail(RS3Reason.MALFORMED_METADATA, f"{type(exc).__name__}: {str(exc)[:200]}")
    bad = check_image(path)
    return item.fail(*bad) if bad else item


# Metadata with wrong types or values (NaN, Infinity, 400-digit ints, strings in boxes, ...) raises
# these inside the field derivations: it is malformed metadata of that item, never a crash of the stage.
_BAD_METADATA = (MetadataError, ValueError, TypeError, OverflowError, KeyError, IndexError, AttributeError)


def ben_rgb(bands: list[np.ndarray], scale_max: int = 3000) -> np.ndarray:
    """uint8 RGB from the B04/B03/B02 arrays: DN 0..``scale_max`` -> 0..255, clipped (module docstring)."""
    stack = np.stack([b.astype(np.float32) for b in bands], axis=-1)
    return np.clip(np.rint(stack * (255.0 / scale_max)), 0, 255).astype(np.uint8)


def _read_band(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as img:
            arr = np.asarray(img)
    if arr.ndim != 2:
        raise ValueError(f"{path.name}: expected one band, got shape {arr.shape}")
    return arr


def read_ben(root: Path, key: str, rgb_dir: Path, scale_max: int = 3000) -> ReadItem:
    """One BigEarthNet patch: metadata JSON, then B04/B03/B02 -> ``rgb_dir/<patch>.png``."""
    folder = root / key
    item = ReadItem(make_uid("ben", key), "ben", f"ben_{key}", key, family="ben")
    meta = _load_json(folder / f"{key}_labels_metadata.json", item)
    if meta is None:
        return item
    try:
        item.fields, item.geo = ben_fields(meta)
    except _BAD_METADATA as exc:
        return item.fail(RS3Reason.MALFORMED_METADATA, f"{type(exc).__name__}: {str(exc)[:200]}")
    paths = [folder / f"{key}_{band}.tif" for band in BEN_RGB]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        return item.fail(RS3Reason.MISSING_BAND, f"missing {', '.join(missing)}")
    try:
        bands = [_read_band(p) for p in paths]
        if len({b.shape for b in bands}) != 1:
            raise ValueError(f"band shapes differ: {[b.shape for b in bands]}")
    except Exception as exc:  # PIL/numpy raise many types for bad TIFFs
        return item.fail(RS3Reason.UNREADABLE_IMAGE, f"{type(exc).__name__}: {exc}")
    out = rgb_dir / f"{key}.png"
    with atomic_path(out) as tmp:
        Image.fromarray(ben_rgb(bands, scale_max), "RGB").save(tmp, format="PNG")
    item.image_path = str(out)
    return item


def read_millionaid(root: Path, key: str) -> ReadItem:
    """One MillionAID image (no metadata, no meta-caption)."""
    path = root / key
    item = ReadItem(make_uid("millionaid", key), "millionaid", f"millionaid_{path.stem}", key, str(path))
    bad = check_image(path)
    return item.fail(*bad) if bad else item


def read_item(source: str, root: str | Path, key: str, rgb_dir: Path, ben_scale_max: int = 3000) -> ReadItem:
    """Dispatch to the source's reader (see module contract)."""
    root = Path(root)
    if source == "fmow":
        return read_fmow(root, key)
    if source == "ben":
        return read_ben(root, key, rgb_dir, ben_scale_max)
    if source == "millionaid":
        return read_millionaid(root, key)
    raise ValueError(f"unknown RS3 source {source!r}; expected one of {SOURCES}")
