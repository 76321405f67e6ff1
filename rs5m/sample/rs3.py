"""A miniature RS3 world in the official on-disk layouts, with planted bad files and known answers.

``write_rs3_world(out, seed, real_data)`` writes::

    fmow-rgb/train/<category>/<category>_<n>/<category>_<n>_<k>_{rgb,msrgb}.{jpg,json}
    BigEarthNet-v1.0/<patch>/<patch>_B{02,03,04,08}.tif + <patch>_labels_metadata.json
    millionaid/test/P<7 digits>.jpg
    expected.json

Pixels are real WHU-RS19 crops when ``real_data`` (the shared data folder, or its ``whu-rs19``) is
given, else generated. BigEarthNet bands are 120x120 single-band 16-bit TIFFs (no GeoTIFF tags; the
reader does not need them) whose values invert the reader's documented scaling of an RGB picture.
``expected.json`` is written from the plan, not by running the readers: per source ``listed``, ``ok``
and ``removed`` (by ``RS3Reason`` code), and planted facts (hemisphere seasons, relative locations,
UTM zones) for tests. Same ``seed`` -> identical files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# (category, WHU-RS19 class, lat, lon, month, alpha-3, utm, box [x, y, w, h] in 160 px, season, location)
_FMOW = [
    (
        "airport",
        "airport",
        40.64,
        -73.78,
        7,
        "USA",
        "18T",
        [10, 10, 60, 60],
        "Summer",
        "top-left and top-center blocks",
    ),
    (
        "airport",
        "airport",
        -33.94,
        151.18,
        7,
        "AUS",
        "56H",
        [90, 40, 60, 60],
        "Winter",
        "center-right and center blocks",
    ),
    ("crop_field", "farmland", 48.85, 2.35, 1, "FRA", "31U", [60, 60, 30, 30], "Winter", "center block"),
    (
        "port",
        "port",
        -22.9,
        -43.2,
        1,
        "BRA",
        "23K",
        [0, 100, 160, 50],
        "Summer",
        "bottom-left and bottom-center blocks",
    ),
]
_BEN_LABELS = [
    ["Non-irrigated arable land", "Pastures"],
    ["Coniferous forest", "Mixed forest", "Transitional woodland/shrub"],
    ["Discontinuous urban fabric", "Industrial or commercial units"],
    ["Sea and ocean"],
    ["Water bodies", "Broad-leaved forest"],
    ["Complex cultivation patterns", "Land principally occupied by agriculture"],
]
_BEN_ZONES = [(34, 341700, 4452840), (29, 512000, 4810000), (33, 402000, 5612000), (35, 650000, 6700000)]
_WHU = ["airport", "farmland", "port", "forest", "residential", "river", "meadow", "industrial"]


def _pictures(real_data: str | Path | None, rng: random.Random, n: int, size: int) -> list[Image.Image]:
    root = Path(real_data) if real_data else None
    if root is not None and (root / "whu-rs19").is_dir():
        root = root / "whu-rs19"
    files = sorted(root.glob("*/*.jpg")) if root is not None and root.is_dir() else []
    out = []
    for _ in range(n):
        if files:
            with Image.open(files[rng.randrange(len(files))]) as img:
                out.append(img.convert("RGB").resize((size, size), Image.BILINEAR))
            continue
        img = Image.new("RGB", (size, size), tuple(rng.randrange(40, 200) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y = rng.randrange(size), rng.randrange(size)
            draw.rectangle(
                [x, y, x + size // 5, y + size // 7], fill=tuple(rng.randrange(256) for _ in range(3))
            )
        out.append(img)
    return out


def _polygon(lat: float, lon: float) -> str:
    d = 0.002
    ring = [
        (lon - d, lat - d),
        (lon + d, lat - d),
        (lon + d, lat + d),
        (lon - d, lat + d),
        (lon - d, lat - d),
    ]
    return "POLYGON ((" + ", ".join(f"{x:.6f} {y:.6f}" for x, y in ring) + "))"


def fmow_json(
    cat: str, lat: float, lon: float, month: int, cc: str, zone: str, box: list[int], size: int
) -> dict:
    """A fMoW-style metadata record (the fields and nesting of the official per-image JSON)."""
    return {
        "gsd": 0.5,
        "img_width": size,
        "img_height": size,
        "country_code": cc,
        "utm": zone,
        "timestamp": f"2016-{month:02d}-09T15:03:22Z",
        "cloud_cover": 0,
        "scan_direction": "FORWARD",
        "target_azimuth_dbl": 314.3,
        "off_nadir_angle_dbl": 23.1,
        "multi_resolution_dbl": 2.0,
        "pan_resolution_dbl": 0.5,
        "bounding_boxes": [
            {"ID": -1, "box": box, "category": cat, "raw_location": _polygon(lat, lon)},
            {"ID": 1000 + len(cat), "box": box, "category": cat, "visible": True},
        ],
    }


def _write_fmow(root: Path, pics: list[Image.Image], size: int) -> dict[str, Any]:
    planted: dict[str, Any] = {"seasons": {}, "locations": {}, "utm": {}}
    for i, (cat, _, lat, lon, month, cc, zone, box, season, location) in enumerate(_FMOW):
        folder = root / "train" / cat / f"{cat}_{i}"
        folder.mkdir(parents=True, exist_ok=True)
        for kind in ("rgb", "msrgb"):
            stem = f"{cat}_{i}_0_{kind}"
            pics[2 * i + (kind == "msrgb")].save(folder / f"{stem}.jpg", quality=90)
            (folder / f"{stem}.json").write_text(
                json.dumps(fmow_json(cat, lat, lon, month, cc, zone, box, size))
            )
        key = f"train/{cat}/{cat}_{i}/{cat}_{i}_0_rgb.jpg"
        planted["seasons"][key], planted["utm"][key] = season, zone
        planted["locations"][key] = location
    bad = root / "train" / "port" / "port_9"
    bad.mkdir(parents=True)
    pics[-1].save(bad / "port_9_0_rgb.jpg")  # no JSON beside it
    pics[-1].save(bad / "port_9_0_msrgb.jpg")
    (bad / "port_9_0_msrgb.json").write_text('{"gsd": 0.5, "bounding_boxes": [')  # truncated JSON
    pics[-2].save(bad / "port_9_1_rgb.jpg")
    (bad / "port_9_1_rgb.json").write_text(json.dumps({"gsd": 0.5, "utm": "23K"}))  # no bounding boxes
    good = fmow_json("port", -22.9, -43.2, 1, "BRA", "23K", [0, 0, 50, 50], size)
    data = (root / "train/port/port_3/port_3_0_rgb.jpg").read_bytes()
    (bad / "port_9_1_msrgb.jpg").write_bytes(data[: len(data) // 2])  # truncated image
    (bad / "port_9_1_msrgb.json").write_text(json.dumps(good))
    counts = {"missing_metadata": 1, "malformed_metadata": 2, "truncated_image": 1}
    n_ok = 2 * len(_FMOW)
    return {"listed": n_ok + 4, "ok": n_ok, "removed": counts, "planted": planted}


def _ben_patch(i: int) -> str:
    return f"S2A_MSIL2A_2017{6 + i % 6:02d}13T101031_{i}_{40 + i}"


def _write_ben(root: Path, pics: list[Image.Image], scale_max: int) -> dict[str, Any]:
    planted: dict[str, Any] = {"utm": {}}
    n = len(_BEN_LABELS)
    for i in range(n + 3):
        patch = _ben_patch(i)
        folder = root / patch
        folder.mkdir(parents=True, exist_ok=True)
        rgb = np.asarray(pics[i % len(pics)].resize((120, 120)), dtype=np.float32)
        dn = np.rint(rgb * (scale_max / 255.0)).astype(np.uint16)
        for band, arr in (("B04", dn[..., 0]), ("B03", dn[..., 1]), ("B02", dn[..., 2]), ("B08", dn[..., 1])):
            if not (i == n and band == "B03"):  # planted: a patch missing B03
                Image.fromarray(arr).save(folder / f"{patch}_{band}.tif")
        zone, east, north = _BEN_ZONES[i % len(_BEN_ZONES)]
        meta = {
            "labels": _BEN_LABELS[i % n],
            "coordinates": {"ulx": east, "uly": north, "lrx": east + 1200, "lry": north - 1200},
            "projection": f'PROJCS["WGS 84 / UTM zone {zone}N",GEOGCS["WGS 84",DATUM["WGS_1984"]]]',
            "tile_source": f"S2A_MSIL1C_20170613T101031_N0205_R022_T{zone}SEJ_20170613T101551.SAFE",
            "acquisition_date": f"2017-{6 + i % 6:02d}-13 10:10:31",
        }
        if i == n + 1:
            (folder / f"{patch}_labels_metadata.json").write_text("not json at all")
        elif i != n + 2:  # planted: patch n+2 has no metadata file
            (folder / f"{patch}_labels_metadata.json").write_text(json.dumps(meta))
        planted["utm"][patch] = zone
    removed = {"missing_band": 1, "malformed_metadata": 1, "missing_metadata": 1}
    return {"listed": n + 3, "ok": n, "removed": removed, "planted": planted}


def _write_millionaid(root: Path, pics: list[Image.Image]) -> dict[str, Any]:
    test = root / "test"
    test.mkdir(parents=True, exist_ok=True)
    for i, pic in enumerate(pics):
        pic.save(test / f"P{173410 + i:07d}.jpg", quality=90)
    (test / "P0999998.jpg").write_bytes(b"<html>not an image</html>")
    (test / "P0999999.jpg").write_bytes(b"")
    return {"listed": len(pics) + 2, "ok": len(pics), "removed": {"unreadable_image": 2}, "planted": {}}


def write_rs3_world(
    out: str | Path, seed: int = 0, real_data: str | Path | None = None, ben_scale_max: int = 3000
) -> dict[str, Any]:
    """Write the RS3 sample world under ``out`` (see module docstring); return ``expected.json``'s content."""
    out = Path(out)
    rng = random.Random(seed)
    size = 160
    pics = _pictures(real_data, rng, 2 * len(_FMOW) + 2, size)
    expected = {
        "fmow": _write_fmow(out / "fmow-rgb", pics, size),
        "ben": _write_ben(out / "BigEarthNet-v1.0", pics, ben_scale_max),
        "millionaid": _write_millionaid(out / "millionaid", _pictures(real_data, rng, 6, size)),
        "roots": {"fmow": "fmow-rgb", "ben": "BigEarthNet-v1.0", "millionaid": "millionaid"},
        "notes": "listed = items the reader lists; ok = readable; removed = planted bad files by reason",
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True), encoding="utf-8")
    return expected
