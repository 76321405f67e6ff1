"""Tiny evaluation datasets in the real layouts, built in code (demo, tests, fresh machines).

* ImageFolder: ``<root>/<Class_Name>/<img>.jpg`` (or the real WHU-RS19 folder, capped per class);
* RSITMD: ``rsitmd_test.csv`` (``filename,title``), ``test_caps.txt`` + ``test_filename.txt`` and
  ``images/<name>.tif``, 5 captions per image (real RSITMD captions when ``real_data`` is given);
* AIR-SLT: ``annotations/anno.json`` (``[{caption, jpg_name, points}]``) + ``imgs/<n>.jpg``; with
  ``real_data`` the real queries and polygons are used, rescaled onto the generated images.

Pixels are synthetic textures: the point is the formats and the pipeline, not meaningful scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import yaml
from PIL import Image

from rs5m.config.evaluate import EvalConfig, ModelSpec, RetrievalDataset, SeloDataset, ZeroShotDataset
from rs5m.ml.models import TINY_MODEL_NAME

SYNTH_CLASSES = {
    "Forest": (40, 110, 40),
    "Desert": (200, 170, 110),
    "Sea_Lake": (30, 70, 150),
    "Parking": (120, 120, 120),
}
SYNTH_WORDS = (
    ["red", "white", "grey", "green"],
    ["buildings", "ships", "cars", "trees"],
    ["river", "road", "port"],
)


def _texture(rng: np.random.Generator, size: tuple[int, int], colour: tuple[int, int, int]) -> np.ndarray:
    h, w = size
    img = np.asarray(colour, dtype=np.float32) + rng.normal(0, 25, (h, w, 3))
    period = int(rng.integers(8, 40))
    img[(np.arange(h) // period) % 2 == 0] *= 0.8
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image_folder(out: Path, per_class: int = 3, size: int = 96, seed: int = 0) -> Path:
    """Synthetic ImageFolder with four RS classes (one needs the ``_`` -> space rule)."""
    rng = np.random.default_rng(seed)
    for cls, colour in SYNTH_CLASSES.items():
        (out / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_texture(rng, (size, size), colour)).save(
                out / cls / f"{cls.lower()}_{i:02d}.jpg"
            )
    return out


def _real_rsitmd(real: Path, n_images: int) -> tuple[list[str], list[str]]:
    caps = (real / "test_caps.txt").read_text(encoding="utf-8").splitlines()
    names = (real / "test_filename.txt").read_text(encoding="utf-8").splitlines()
    keep = list(dict.fromkeys(n.strip() for n in names))[:n_images]
    pairs = [(n.strip(), c.strip()) for n, c in zip(names, caps, strict=True) if n.strip() in keep]
    return [n for n, _ in pairs], [c for _, c in pairs]


def _synthetic_rsitmd(rng: np.random.Generator, n_images: int) -> tuple[list[str], list[str]]:
    names, caps = [], []
    for i in range(n_images):
        for _ in range(5):
            colour, thing, place = (str(rng.choice(w)) for w in SYNTH_WORDS)
            names.append(f"scene_{i}.tif")
            caps.append(f"some {colour} {thing} are near the {place}.")
    return names, caps


def write_rsitmd(
    out: Path, real_rsitmd: Path | None = None, n_images: int = 12, seed: int = 0
) -> dict[str, Path]:
    """RSITMD-format split (csv and txt pair) with generated 256x256 RGB TIFF images."""
    rng = np.random.default_rng(seed)
    names, caps = _real_rsitmd(real_rsitmd, n_images) if real_rsitmd else _synthetic_rsitmd(rng, n_images)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in dict.fromkeys(names):
        colour = tuple(int(v) for v in rng.integers(30, 220, 3))
        Image.fromarray(_texture(rng, (256, 256), colour)).save(images / name)
    pd.DataFrame({"filename": names, "title": caps}).to_csv(out / "rsitmd_test.csv", index=False)
    (out / "test_caps.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
    (out / "test_filename.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return {
        "csv": out / "rsitmd_test.csv",
        "captions": out / "test_caps.txt",
        "filenames": out / "test_filename.txt",
        "images": images,
    }


def _fit_polygons(polys: list[list[list[float]]], width: int, height: int) -> list[list[list[float]]]:
    pts = np.asarray([p for poly in polys for p in poly], dtype=np.float64)
    lo, span = pts.min(axis=0), np.maximum(pts.max(axis=0) - pts.min(axis=0), 1.0)
    margin = 0.12 * min(width, height)
    scale = min((width - 2 * margin) / span[0], (height - 2 * margin) / span[1])
    return [
        [[float(margin + (x - lo[0]) * scale), float(margin + (y - lo[1]) * scale)] for x, y in poly]
        for poly in polys
    ]


def _synthetic_queries(
    rng: np.random.Generator, n_images: int, per_image: int, width: int, height: int
) -> list:
    items = []
    for i in range(n_images):
        for _ in range(per_image):
            cx, cy = rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height
            rx, ry = rng.uniform(60, 160), rng.uniform(60, 160)
            square = [[cx - rx, cy - ry], [cx + rx, cy - ry], [cx + rx, cy + ry], [cx - rx, cy + ry]]
            colour, thing, place = (str(rng.choice(w)) for w in SYNTH_WORDS)
            items.append(
                {
                    "caption": f"{colour} {thing} next to the {place}.\n",
                    "jpg_name": f"{i}.jpg",
                    "points": [square],
                }
            )
    return items


def write_air_slt(
    out: Path,
    real_anno: Path | None = None,
    n_images: int = 2,
    per_image: int = 2,
    size: tuple[int, int] = (1024, 768),
    seed: int = 0,
) -> dict[str, Path]:
    """AIR-SLT-format set: ``annotations/anno.json`` and ``imgs/`` of ``size`` (width, height) JPEGs."""
    rng = np.random.default_rng(seed)
    width, height = size
    if real_anno is not None:
        real = json.loads(Path(real_anno).read_text(encoding="utf-8"))
        names = list(dict.fromkeys(q["jpg_name"] for q in real))[:n_images]
        items = [q for name in names for q in [r for r in real if r["jpg_name"] == name][:per_image]]
        for name in names:
            group = [q for q in items if q["jpg_name"] == name]
            fitted = _fit_polygons([p for q in group for p in q["points"]], width, height)
            for q in group:
                q["points"], fitted = fitted[: len(q["points"])], fitted[len(q["points"]) :]
    else:
        items = _synthetic_queries(rng, n_images, per_image, width, height)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    (out / "imgs").mkdir(parents=True, exist_ok=True)
    for name in dict.fromkeys(q["jpg_name"] for q in items):
        image = _texture(rng, (height, width), (90, 120, 80))
        for q in (q for q in items if q["jpg_name"] == name):
            colour = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.fillPoly(image, [np.asarray(p, np.int32) for p in q["points"]], colour)
        cv2.imwrite(str(out / "imgs" / name), image)
    (out / "annotations" / "anno.json").write_text(json.dumps(items, indent=1), encoding="utf-8")
    return {"annotations": out / "annotations" / "anno.json", "images": out / "imgs"}


def write_demo_eval_data(
    out: str | Path, real_data: str | Path | None = None, max_per_class: int = 2
) -> EvalConfig:
    """Write tiny ImageFolder/RSITMD/AIR-SLT sets under ``out`` plus ``out/eval.yaml``; return its config.

    ``real_data`` is a ``../shared/data`` style folder: WHU-RS19 images, RSITMD captions and AIR-SLT
    polygons are then real (each used only if present). The model is the random-init ``rs5m-tiny``.
    """
    out = Path(out).resolve()
    real = Path(real_data).resolve() if real_data is not None else None
    whu = real / "whu-rs19" if real and (real / "whu-rs19").is_dir() else None
    rsitmd = real / "rsitmd" if real and (real / "rsitmd" / "test_caps.txt").is_file() else None
    anno = real / "air-slt" / "anno.json" if real and (real / "air-slt" / "anno.json").is_file() else None
    zs_root = whu if whu else write_image_folder(out / "scenes")
    ret = write_rsitmd(out / "rsitmd", rsitmd)
    selo = write_air_slt(out / "AIR-SLT", anno)
    cfg = EvalConfig(
        model=ModelSpec(name=TINY_MODEL_NAME, label="rs5m-tiny random init (ours)"),
        zeroshot=[
            ZeroShotDataset(
                name="WHU-RS19" if whu else "Scenes", root=str(zs_root), max_per_class=max_per_class
            )
        ],
        retrieval=[RetrievalDataset(name="rsitmd", csv=str(ret["csv"]), images_dir=str(ret["images"]))],
        selo=[
            SeloDataset(name="AIR-SLT", annotations=str(selo["annotations"]), images_dir=str(selo["images"]))
        ],
        batch_size=32,
        workers=0,
        output_dir=str(out / "results"),
    )
    (out / "eval.yaml").write_text(
        yaml.safe_dump(_relative(cfg.model_dump(exclude_none=True), out)), encoding="utf-8"
    )
    return cfg


def _relative(obj: Any, base: Path) -> Any:
    if isinstance(obj, dict):
        return {k: _relative(v, base) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relative(v, base) for v in obj]
    if isinstance(obj, str) and obj.startswith(str(base) + "/"):
        return obj[len(str(base)) + 1 :]
    return obj
