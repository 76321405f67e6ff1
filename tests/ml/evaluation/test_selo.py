"""SeLo map generation (reference §11.3): tiling, heat map, probmap round trip, a small end-to-end run."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rs5m.config.evaluate import SeloDataset
from rs5m.ml.evaluation import selo
from rs5m.ml.evaluation.fixtures import write_air_slt


def test_tile_boxes_hand_enumerated() -> None:
    # 512 x 768, scale 256: offset-0 grid 3 cols x 2 rows; offset-128 grid cols 128/384/(512 clamped),
    # rows 128/(256 clamped); the clamped (256:512, 512:768) tile is already in the first grid
    boxes = selo.tile_boxes(512, 768, [256])
    cols0 = [(0, 256), (256, 512), (512, 768)]
    rows0 = [(0, 256), (256, 512)]
    cols1 = [(128, 384), (384, 640), (512, 768)]
    rows1 = [(128, 384), (256, 512)]
    expected = {(r0, r1, c0, c1) for (c0, c1) in cols0 for (r0, r1) in rows0}
    expected |= {(r0, r1, c0, c1) for (c0, c1) in cols1 for (r0, r1) in rows1}
    assert len(boxes) == len(set(boxes)) == 11
    assert set(boxes) == expected


def test_tile_boxes_cover_the_image_at_every_scale() -> None:
    boxes = selo.tile_boxes(768, 1024, [256, 512, 768])
    assert len(boxes) == 30
    for s in (256, 512, 768):
        cover = np.zeros((768, 1024), bool)
        for r0, r1, c0, c1 in boxes:
            if r1 - r0 == s:
                assert c1 - c0 == s and r0 >= 0 and c0 >= 0 and r1 <= 768 and c1 <= 1024
                cover[r0:r1, c0:c1] = True
        assert cover.all()


def test_tile_boxes_reject_small_images() -> None:
    with pytest.raises(ValueError, match="smaller"):
        selo.tile_boxes(500, 1000, [256, 512])


def test_tile_image_is_resized_jpeg() -> None:
    src = np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)
    tile = selo.tile_image(src, (0, 512, 88, 600))
    assert tile.size == (256, 256) and tile.format == "JPEG"
    ref = cv2.resize(src[0:512, 88:600], (256, 256), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", ref)
    assert np.array_equal(np.asarray(tile), np.asarray(Image.open(io.BytesIO(buf.tobytes()))))


def test_heat_map_is_mean_of_covering_tiles() -> None:
    heat = selo.heat_map((2, 4), [(0, 2, 0, 2), (0, 2, 1, 4), (0, 1, 0, 4)], np.array([1.0, 4.0, 7.0]))
    np.testing.assert_allclose(heat, [[4.0, 4.0, 5.5, 5.5], [1.0, 2.5, 4.0, 4.0]])


def test_probmap_roundtrip_range_and_flat_map() -> None:
    yy, xx = np.mgrid[0:300, 0:400]
    prob = selo.decode_probmap(selo.probmap_jpeg(np.exp(-((xx - 100) ** 2 + (yy - 150) ** 2) / 5000.0)))
    assert prob.shape == (300, 400) and prob.min() >= 0 and prob.max() <= 1
    assert prob[150, 100] > prob[150, 390]
    assert selo.decode_probmap(selo.probmap_jpeg(np.ones((300, 300)))).max() == 0


def test_evaluate_selo_on_generated_air_slt(tmp_path: Path, tiny_embedder) -> None:
    paths = write_air_slt(tmp_path, None, n_images=1, per_image=2)
    ds = SeloDataset(annotations=str(paths["annotations"]), images_dir=str(paths["images"]))
    result = selo.evaluate_selo(tiny_embedder, ds, maps_dir=tmp_path / "maps")
    assert result["n_queries"] == 2 and result["n_images"] == 1
    assert set(result["metrics"]) == {"Rsu", "Rda", "Ras", "Rmi"}
    assert all(0 <= result["metrics"][k] <= 1 for k in ("Rsu", "Rda", "Ras", "Rmi"))
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["probmap_0.jpg", "probmap_1.jpg"]


def test_load_annotations_errors(tmp_path: Path) -> None:
    bad = tmp_path / "anno.json"
    bad.write_text('{"caption": "x"}')
    with pytest.raises(ValueError, match="caption, jpg_name, points"):
        selo.load_annotations(bad)
    with pytest.raises(FileNotFoundError):
        selo.load_annotations(tmp_path / "none.json")
