"""Sampling: kept and audit populations, stratification, determinism, image locators, bad input."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from rs5m.rating.images import ImageUnavailable, TarIndex, browser_image, read_image
from rs5m.rating.sampling import (
    EmptySample,
    SampleSpec,
    allocate,
    allocate_nested,
    draw_sample,
    find_version_dir,
)
from tests.rating.conftest import KEPT, jpeg


def test_allocate_equal_shares_capped_and_redistributed() -> None:
    assert allocate({"a": 100, "b": 100}, 10) == {"a": 5, "b": 5}
    assert allocate({"a": 2, "b": 100, "c": 100}, 10) == {"a": 2, "b": 4, "c": 4}
    assert allocate({"a": 2, "b": 3}, 100) == {"a": 2, "b": 3}
    odd = allocate({"a": 10, "b": 10, "c": 10}, 4, seed=1)
    assert sum(odd.values()) == 4 and sorted(odd.values()) == [1, 1, 2]
    assert allocate({"a": 0, "b": 5}, 3) == {"a": 0, "b": 3}


def test_allocate_nested_splits_decisions_first() -> None:
    counts = {("kept", "a"): 50, ("kept", "b"): 50, ("removed", "a"): 3, ("removed", "b"): 50}
    alloc = allocate_nested(counts, 20)
    assert alloc[("removed", "a")] + alloc[("removed", "b")] == 10
    assert alloc[("removed", "a")] == 3 and alloc[("kept", "a")] == 5


def test_kept_sample_is_the_kept_set_with_locators(rating_root: Path) -> None:
    vdir = rating_root / "versions" / "v1"
    items = draw_sample(vdir, SampleSpec("v1", n=50))
    assert {it["uid"] for it in items} == KEPT
    assert [it["pos"] for it in items] == list(range(len(items)))
    first = items[0]
    assert (
        first["image_kind"] == "tar"
        and first["image_ref"] == f"download/{first['source']}/part-00000/00000.tar"
    )
    assert set(first["info"]) >= {"url", "keywords", "s_vlm", "c_rs"}
    data = read_image(vdir, first["image_kind"], first["image_ref"], first["image_key"], TarIndex())
    assert browser_image(data)[1] == "image/jpeg"


def test_sample_is_stratified_and_deterministic(rating_root: Path) -> None:
    vdir = rating_root / "versions" / "v1"
    a = draw_sample(vdir, SampleSpec("v1", n=4, seed=3))
    assert Counter(it["source"] for it in a) == {"cc12m": 2, "laion2b": 2}
    assert a == draw_sample(vdir, SampleSpec("v1", n=4, seed=3))
    orders = {tuple(it["uid"] for it in draw_sample(vdir, SampleSpec("v1", n=6, seed=s))) for s in range(6)}
    assert len(orders) > 1


def test_audit_samples_kept_and_removed_of_one_stage(rating_root: Path) -> None:
    vdir = rating_root / "versions" / "v1"
    items = draw_sample(vdir, SampleSpec("v1", audit="outlier", n=50))
    decided = {it["uid"]: it["decision"] for it in items}
    assert decided == {**dict.fromkeys(KEPT, "kept"), "cc12m-1": "removed", "laion2b-1": "removed"}
    assert {it["stage"] for it in items} == {"outlier"}
    dedup = draw_sample(vdir, SampleSpec("v1", audit="dedup", source="cc12m", n=50))
    assert {it["uid"]: it["decision"] for it in dedup}["cc12m-2"] == "removed"
    validity = draw_sample(vdir, SampleSpec("v1", audit="validity", n=2))
    assert Counter(it["decision"] for it in validity) == {"kept": 1, "removed": 1}


def test_rs3_sample_finds_image_files(rating_root: Path) -> None:
    vdir = rating_root / "versions" / "v1"
    items = {it["uid"]: it for it in draw_sample(vdir, SampleSpec("v1", subset="rs3", n=10))}
    assert items["ben-0"]["image_kind"] == "file" and items["ben-0"]["image_ref"] == "rs3/images/ben_0.jpg"
    assert items["ben-1"]["image_kind"] == "file" and Path(items["ben-1"]["image_ref"]).is_absolute()
    assert items["ben-2"]["image_kind"] == "none" and "missing.jpg" in items["ben-2"]["image_ref"]
    info = items["ben-0"]["info"]
    assert info["caption_model"] == "Salesforce/blip2-opt-6.7b + rsitmd-lora"
    assert (info["score_a"], info["score_b"], info["rotation_var"]) == (0.31, 0.29, 1e-4)
    assert "provenance" not in info and "score_a" not in items["ben-1"]["info"]
    with pytest.raises(ImageUnavailable, match="missing.jpg"):
        it = items["ben-2"]
        read_image(vdir, it["image_kind"], it["image_ref"], it["image_key"], TarIndex())


def test_package_shards_are_a_fallback(rating_root: Path) -> None:
    vdir = rating_root / "versions" / "v1"
    pkg = vdir / "package" / "rs3-train-0000.tar"
    pkg.parent.mkdir(parents=True)
    with tarfile.open(pkg, "w") as tar:
        for name, data in {
            "k0.img_name": b"ben-2.jpg",
            "k0.img_content": jpeg((1, 2, 3)),
            "k0.caption": b"x",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    items = {it["uid"]: it for it in draw_sample(vdir, SampleSpec("v1", subset="rs3", n=10))}
    it = items["ben-2"]
    assert (it["image_kind"], it["image_ref"], it["image_key"]) == ("tar", "package/rs3-train-0000.tar", "k0")
    assert read_image(vdir, "tar", it["image_ref"], "k0", TarIndex()).startswith(b"\xff\xd8")


def test_bad_input_is_a_clear_error(rating_root: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown version 'nope'.*known: v1"):
        find_version_dir(rating_root, "nope")
    with pytest.raises(ValueError, match="unknown version"):
        find_version_dir(rating_root, "../v1")
    vdir = rating_root / "versions" / "v1"
    with pytest.raises(EmptySample, match="no keyword or download output for source 'vg'"):
        draw_sample(vdir, SampleSpec("v1", source="vg"))
    with pytest.raises(ValueError, match="only for the pub11 subset"):
        draw_sample(vdir, SampleSpec("v1", subset="rs3", audit="dedup"))
    with pytest.raises(ValueError, match="at least 1"):
        draw_sample(vdir, SampleSpec("v1", n=0))
    empty = rating_root / "versions" / "v2"
    empty.mkdir()
    with pytest.raises(EmptySample, match="no RS3 captions"):
        draw_sample(empty, SampleSpec("v2", subset="rs3"))
    (vdir / "outlier" / "decisions.parquet").unlink()
    with pytest.raises(EmptySample, match="stage 'outlier' has not run"):
        draw_sample(vdir, SampleSpec("v1", audit="outlier"))


def test_browser_image_converts_or_refuses() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="TIFF")
    assert browser_image(buf.getvalue())[1] == "image/png"
    with pytest.raises(ImageUnavailable, match="empty"):
        browser_image(b"")
    with pytest.raises(ImageUnavailable, match="undecodable"):
        browser_image(b"<html>not an image</html>")
