"""Packaging core on hand-made samples: format detection, open_clip re-encoding, drops, resume markers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rs5m.config import PackageConfig
from rs5m.pipeline.package.packer import (
    Dropped,
    image_format,
    open_clip_image,
    package_subset,
    split_of,
    subset_done,
)
from rs5m.shards import Sample, iter_records, verify_manifest

CFG = PackageConfig(val_fraction=0.3, max_samples_per_shard=4, fsync=False)


def encode(fmt: str, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode", "ext"),
    [("JPEG", "RGB", "jpg"), ("PNG", "RGBA", "png"), ("WEBP", "RGB", "webp"), ("GIF", "P", "gif"),
     ("BMP", "RGB", "bmp"), ("TIFF", "CMYK", "tif"), ("PPM", "RGB", "ppm")],
)  # fmt: skip
def test_image_format_from_bytes(fmt: str, mode: str, ext: str) -> None:
    assert image_format(encode(fmt, mode)) == ext


def test_image_format_rejects_non_images() -> None:
    assert image_format(b"") is None
    assert image_format(b"<html>404</html>") is None
    assert image_format(b"BM but not a bitmap") is None


@pytest.mark.parametrize(("fmt", "mode"), [("GIF", "P"), ("BMP", "RGB"), ("TIFF", "CMYK")])
def test_open_clip_reencodes_other_formats_to_png(fmt: str, mode: str) -> None:
    data = encode(fmt, mode)
    out, ext = open_clip_image(data, image_format(data) or "")
    assert ext == "png"
    with Image.open(io.BytesIO(out)) as img:
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (32, 24)


def test_open_clip_keeps_jpg_png_webp_bytes() -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encode(fmt)
        assert open_clip_image(data, image_format(data) or "")[0] is data


def test_open_clip_reencode_failure_raises() -> None:
    with pytest.raises(ValueError, match="cannot re-encode"):
        open_clip_image(b"GIF89a" + b"\0" * 20, "gif")


def samples() -> list[Sample | Dropped]:
    items: list[Sample | Dropped] = []
    for i, fmt in enumerate(["JPEG", "PNG", "WEBP", "GIF", "JPEG", "PNG", "BMP", "JPEG", "PNG", "JPEG"]):
        meta = {"dup_cluster": "c-shared" if i in (0, 4, 7) else None, "scores": {"s": i / 10}}
        # the ext the reader claims is deliberately wrong: the packer must look at the bytes
        items.append(Sample(f"vg-{i:03d}", "vg", f"caption {i}", encode(fmt, seed=i), "jpg", meta))
    items.append(Sample("sbu-broken", "sbu", "broken", b"GIF89a" + b"\0" * 20, "jpg", {}))
    items.append(Sample("sbu-html", "sbu", "html", b"<html>", "jpg", {}))
    items.append(Dropped("sbu-gone", "sbu", "image_missing"))
    return items


def run(out: Path, **kw: object) -> dict:
    fp = {"keep_rule": "test", "inputs": {}}
    return package_subset(samples(), out, "pub11", CFG, version="t", fingerprint=fp, sources=["wit"], **kw)


def test_package_subset_writes_every_layout_once(tmp_path: Path) -> None:
    res = run(tmp_path)
    assert res["n_in"] == 13 and res["n_out"] == 10
    assert res["removed"] == {"unreadable_image": 2, "image_missing": 1}
    originals = {s.uid: s for s in samples() if isinstance(s, Sample)}
    by_layout = {}
    for layout in ("rs5m", "open_clip"):
        assert verify_manifest(tmp_path / layout, count_samples=True) == []
        recs = list(iter_records(tmp_path / layout))
        by_layout[layout] = {r.key: r for r in recs}
        assert len(recs) == len(by_layout[layout]) == 10
    for uid, rec in by_layout["rs5m"].items():
        real = image_format(originals[uid].image)
        assert rec.image == originals[uid].image
        assert rec.members["img_name"].decode() == f"{uid}.{real}"
        oc = by_layout["open_clip"][uid]
        meta = json.loads(oc.members["json"])
        assert meta["uid"] == uid and meta["image_format"] == real and meta["scores"]["s"] >= 0
        assert oc.caption == rec.caption == originals[uid].caption
        if real in ("jpg", "png", "webp"):
            assert oc.image_ext == real and oc.image == rec.image
        else:
            assert oc.image_ext == "png" and Image.open(io.BytesIO(oc.image)).mode == "RGB"


def test_stats_and_split_rules(tmp_path: Path) -> None:
    res = run(tmp_path)
    stats = {s["source"]: s for s in res["stats"]}
    assert stats["wit"]["n_in"] == 0  # a listed source with no sample still gets its (zero) stats
    assert stats["sbu"]["removed"] == {"unreadable_image": 2, "image_missing": 1}
    assert (tmp_path / "_stats" / "vg" / "pub11.json").is_file()
    for layout in ("rs5m", "open_clip"):
        for path in sorted((tmp_path / layout).glob("*.tar")):
            want = "val" if "-val-" in path.name else "train"
            for rec in iter_records(str(path)):
                sample = next(s for s in samples() if s.uid == rec.key)
                assert isinstance(sample, Sample) and split_of(sample, CFG) == want
    shared = {split_of(s, CFG) for s in samples() if isinstance(s, Sample) and s.meta.get("dup_cluster")}
    assert len(shared) == 1  # members of one dup cluster share a split


def test_resume_marker_and_clear(tmp_path: Path) -> None:
    fp = {"keep_rule": "test", "inputs": {}}
    run(tmp_path)
    assert subset_done(tmp_path, "pub11", CFG.layouts, fp) is not None
    assert subset_done(tmp_path, "pub11", CFG.layouts, {**fp, "keep_rule": "other"}) is None
    (tmp_path / "_stats" / "vg" / "pub11.json").unlink()
    assert subset_done(tmp_path, "pub11", CFG.layouts, fp) is None
    stale = tmp_path / "rs5m" / "pub11-train-0099.tar"
    stale.write_bytes(b"left over")
    run(tmp_path)  # a rerun deletes what an earlier run left
    assert not stale.exists() and verify_manifest(tmp_path / "rs5m") == []
