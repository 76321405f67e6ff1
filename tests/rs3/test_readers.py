"""Readers on the miniature RS3 world (official layouts, planted bad files) and on real pixels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rs5m.rs3.readers import ben_rgb, check_image, list_items, read_item


def _expected(world: Path) -> dict:
    return json.loads((world / "expected.json").read_text())


@pytest.mark.parametrize("source", ["fmow", "ben", "millionaid"])
def test_read_every_item_matches_the_plan(rs3_world, tmp_path, source):
    exp = _expected(rs3_world)
    root = rs3_world / exp["roots"][source]
    keys = list_items(source, root)
    assert len(keys) == exp[source]["listed"]
    items = [read_item(source, root, key, tmp_path) for key in keys]
    statuses = Counter(it.status for it in items)
    assert statuses.pop("ok") == exp[source]["ok"]
    assert dict(statuses) == exp[source]["removed"]
    for it in items:
        assert it.uid.startswith(f"{source}-") and it.name.startswith(f"{source}_")
        if it.status == "ok":
            assert Path(it.image_path).is_file()
        else:
            assert it.detail


def test_fmow_layout_and_names(rs3_world):
    keys = list_items("fmow", rs3_world / "fmow-rgb")
    assert "train/airport/airport_0/airport_0_0_rgb.jpg" in keys
    assert "train/airport/airport_0/airport_0_0_msrgb.jpg" in keys
    item = read_item(
        "fmow", rs3_world / "fmow-rgb", "train/airport/airport_0/airport_0_0_msrgb.jpg", Path(".")
    )
    assert item.name == "fmow_airport_0_0_msrgb" and item.fields["class_label"] == "airport"
    assert json.loads(item.metadata)["utm"] == "18T"


def test_bad_file_details(rs3_world, tmp_path):
    root = rs3_world / "fmow-rgb"
    missing = read_item("fmow", root, "train/port/port_9/port_9_0_rgb.jpg", tmp_path)
    assert missing.status == "missing_metadata" and "port_9_0_rgb.json" in missing.detail
    no_boxes = read_item("fmow", root, "train/port/port_9/port_9_1_rgb.jpg", tmp_path)
    assert no_boxes.status == "malformed_metadata" and "bounding_boxes" in no_boxes.detail
    ben = rs3_world / "BigEarthNet-v1.0"
    band = next(k for k in list_items("ben", ben) if not (ben / k / f"{k}_B03.tif").exists())
    assert read_item("ben", ben, band, tmp_path).detail == f"missing {band}_B03.tif"


def test_ben_rgb_scaling_round_trips(rs3_world, tmp_path):
    ben = rs3_world / "BigEarthNet-v1.0"
    key = list_items("ben", ben)[0]
    item = read_item("ben", ben, key, tmp_path)
    assert item.status == "ok" and item.image_path == str(tmp_path / f"{key}.png")
    with Image.open(item.image_path) as img:
        assert img.size == (120, 120) and img.mode == "RGB"
        rgb = np.asarray(img)
    with Image.open(ben / key / f"{key}_B04.tif") as red:
        assert red.mode.startswith("I;16")
        dn = np.asarray(red).astype(np.float64)
    assert np.abs(rgb[..., 0].astype(int) - np.rint(dn * 255 / 3000).clip(0, 255)).max() == 0
    bands = [np.array([[0, 1500, 3000, 9000]], dtype=np.uint16)] * 3
    assert ben_rgb(bands)[0, :, 0].tolist() == [0, 128, 255, 255]


def test_real_pixels_read(shared_data, tmp_path):
    src = sorted((shared_data / "whu-rs19" / "airport").glob("*.jpg"))[0]
    test = tmp_path / "millionaid" / "test"
    test.mkdir(parents=True)
    (test / "P0000001.jpg").write_bytes(src.read_bytes())
    item = read_item("millionaid", tmp_path / "millionaid", "test/P0000001.jpg", tmp_path)
    assert item.status == "ok" and item.name == "millionaid_P0000001"
    assert check_image(test / "P0000001.jpg") is None
