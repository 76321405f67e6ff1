"""RS3 packaging on a real miniature RS3 version (stage functions, tiny models): round trip of both layouts,
RS5M-style names, split, manifest shared with PUB11, resume, image path rules."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from rs5m.config import PackageConfig
from rs5m.core.layout import VersionLayout
from rs5m.pipeline.package.packer import Dropped, image_format, package_subset, subset_done
from rs5m.pipeline.package.rs3 import iter_rs3_samples, package_rs3, resolve_image
from rs5m.rs3 import stage
from rs5m.sample.rs3 import write_rs3_world
from rs5m.shards import Record, Sample, assign_split, iter_records, read_manifest, verify_manifest
from tests.rs3.conftest import tiny_config

CFG = PackageConfig(val_fraction=0.3, max_samples_per_shard=4, fsync=False)
PUB11_FP = {"keep_rule": "dedup.dup_keep", "fake": 1}


@pytest.fixture(scope="module")
def rs3_version(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A version folder with RS3 plan/read/captions for the sample world (~10 s on one torch thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("rs3-package")
    write_rs3_world(base / "world", seed=0)
    cfg = tiny_config(base / "world")
    vdir = base / "versions" / "built"
    parts = stage.plan_partitions(vdir, cfg)
    for source, part in parts:
        stage.read_partition(vdir, source, part, cfg)
        stage.caption_partition(vdir, source, part, cfg)
    torch.set_num_threads(before)
    yield vdir


def _copy(vdir: Path, name: str) -> Path:
    out = vdir.parent / name
    shutil.copytree(vdir, out)
    return out


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed, 2 * seed, 3)).save(buf, "PNG")
    return buf.getvalue()


def _fake_pub11(vdir: Path, fp: dict) -> dict:
    items = [Sample(f"laion2b-{i:04d}", "laion2b", f"pub11 caption {i}", _png(i), "", {}) for i in range(3)]
    return package_subset(items, vdir / "package", "pub11", CFG, version=vdir.name, fingerprint=fp)


def _captions(vdir: Path) -> dict[str, dict]:
    """uid -> captions row, read independently of the packager."""
    rows = pq.read_table(sorted((vdir / "rs3" / "caption").glob("*/*.parquet"))).to_pylist()
    return {r["uid"]: r for r in rows}


def _records(vdir: Path, layout: str, subset: str = "rs3") -> dict[str, tuple[str, Record]]:
    """key -> (split, record) of one subset's shards in one layout; a key seen twice fails."""
    out: dict[str, tuple[str, Record]] = {}
    for path in sorted((vdir / "package" / layout).glob(f"{subset}-*.tar")):
        for rec in iter_records(str(path)):
            assert rec.key not in out, f"{rec.key} written twice"
            out[rec.key] = ("val" if "-val-" in path.name else "train", rec)
    return out


@pytest.fixture(scope="module")
def packaged(rs3_version: Path) -> Path:
    """A copy of the version with a fake PUB11 packaging first, then RS3 packaged beside it."""
    vdir = _copy(rs3_version, "packaged")
    _fake_pub11(vdir, PUB11_FP)
    res = package_rs3(vdir, CFG)
    assert not res["skipped"] and res["subset"] == "rs3" and res["removed"] == {}
    assert res["n_in"] == res["n_out"] == len(_captions(vdir)) and res["not_captioned"] == []
    return vdir


def test_every_captioned_item_once_per_layout_with_identical_bytes(packaged: Path) -> None:
    caps = _captions(packaged)
    assert len(caps) == 20 and {r["source"] for r in caps.values()} == {"fmow", "ben", "millionaid"}
    by_name = {r["name"]: r for r in caps.values()}
    assert len(by_name) == len(caps)
    rs5m, oc = _records(packaged, "rs5m"), _records(packaged, "open_clip")
    assert sorted(rs5m) == sorted(oc) == sorted(by_name)  # each captioned item exactly once, keyed by name
    formats = set()
    for name, row in by_name.items():
        original = Path(row["image_path"]).read_bytes()
        real = image_format(original)
        formats.add(real)
        split_a, a = rs5m[name]
        split_b, b = oc[name]
        assert split_a == split_b
        assert a.image == b.image == original and a.caption == b.caption == row["caption"]
        assert (
            a.members["img_name"].decode() == f"{name}.{real}"
        )  # RS5M-style: fmow_..., ben_..., millionaid_...
        assert name.startswith(f"{row['source']}_") and b.image_ext == real
        meta = json.loads(b.members["json"])
        assert meta["uid"] == name and meta["rs3_uid"] == row["uid"] and meta["source"] == row["source"]
        assert meta["subset"] == "rs3" and meta["split"] == split_a and meta["image_format"] == real
        want_prov = json.loads(row["provenance"]) | {"kind": "rs3_captioner"}
        assert meta["caption_provenance"] == want_prov and meta["rule"] == row["rule"]
        assert meta["meta_caption"] == row["meta_caption"] and meta["blip2_caption"] == row["blip2_caption"]
        assert meta["meta_caption_info"] == (json.loads(row["meta"]) if row["meta"] else None)
        for col in ("lat", "lon", "country", "city", "utm_zone", "month"):
            assert meta[col] == row[col]
    assert formats == {"jpg", "png"}  # FMoW/MillionAID JPEG originals, BigEarthNet RGB PNGs


def test_split_by_uid_and_deterministic(packaged: Path, rs3_version: Path) -> None:
    caps = _captions(packaged)
    uids = sorted(caps)
    is_val = dict(zip(uids, assign_split(uids, CFG.val_fraction, CFG.seed), strict=True))
    got = {caps_uid: _records(packaged, "rs5m")[caps[caps_uid]["name"]][0] for caps_uid in uids}
    assert got == {u: "val" if v else "train" for u, v in is_val.items()}
    assert 0 < sum(s == "val" for s in got.values()) < len(got) / 2
    again = _copy(rs3_version, "again")
    try:
        package_rs3(again, CFG)  # no PUB11 here: same RS3 shards, byte for byte
        for layout in CFG.layouts:
            a = [(s["name"], s["sha256"]) for s in read_manifest(packaged / "package" / layout)["shards"]]
            b = [(s["name"], s["sha256"]) for s in read_manifest(again / "package" / layout)["shards"]]
            assert [x for x in a if x[0].startswith("rs3-")] == b
    finally:
        shutil.rmtree(again)


def test_manifest_lists_both_subsets_and_neither_deletes_the_other(packaged: Path) -> None:
    for layout in CFG.layouts:
        d = packaged / "package" / layout
        m = read_manifest(d)
        assert set(m["subsets"]) == {"pub11", "rs3"} and m["keep_rule"] == {
            "pub11": "dedup.dup_keep",
            "rs3": "rs3.captioned",
        }
        assert (
            m["totals"]["pub11"]["train"]["n_samples"]
            + m["totals"]["pub11"].get("val", {}).get("n_samples", 0)
            == 3
        )
        assert sum(t["n_samples"] for t in m["totals"]["rs3"].values()) == 20
        assert verify_manifest(d, count_samples=True) == []
    assert subset_done(packaged / "package", "pub11", CFG.layouts, PUB11_FP) is not None
    assert {p.parent.name for p in (packaged / "package" / "_stats").glob("*/*.json")} == {
        "laion2b", "fmow", "ben", "millionaid",
    }  # fmt: skip
    rs3_shards = sorted(p.name for p in (packaged / "package" / "rs5m").glob("rs3-*.tar"))
    _fake_pub11(packaged, PUB11_FP | {"fake": 2})  # repackaging PUB11 keeps the RS3 shards and entry
    assert sorted(p.name for p in (packaged / "package" / "rs5m").glob("rs3-*.tar")) == rs3_shards
    assert package_rs3(packaged, CFG)["skipped"]
    _fake_pub11(packaged, PUB11_FP)
    assert set(read_manifest(packaged / "package" / "open_clip")["subsets"]) == {"pub11", "rs3"}


def test_resume_skips_changed_config_repackages_complete_refuses(rs3_version: Path) -> None:
    vdir = _copy(rs3_version, "resume")
    try:
        first = package_rs3(vdir, CFG)
        shard = next((vdir / "package" / "rs5m").glob("rs3-train-*.tar"))
        mtime = shard.stat().st_mtime_ns
        again = package_rs3(vdir, CFG)
        assert again["skipped"] and shard.stat().st_mtime_ns == mtime
        assert {k: again[k] for k in ("n_in", "n_out", "splits")} == {
            k: first[k] for k in ("n_in", "n_out", "splits")
        }
        bigger = PackageConfig(**{**CFG.model_dump(), "max_samples_per_shard": 1000})
        second = package_rs3(vdir, bigger)
        assert not second["skipped"] and second["layouts"]["rs5m"]["n_shards"] == 2  # old shards dropped
        assert verify_manifest(vdir / "package" / "rs5m") == []
        sized = PackageConfig(**{**CFG.model_dump(), "n_shards": 2})
        assert package_rs3(vdir, sized)["layouts"]["open_clip"]["n_shards"] >= 2
        VersionLayout.of(vdir).complete_marker.write_text("{}")
        assert package_rs3(vdir, sized)["skipped"]
        with pytest.raises(ValueError, match="immutable"):
            package_rs3(vdir, CFG)
    finally:
        shutil.rmtree(vdir)


def test_image_paths_missing_images_and_ambiguous_names(rs3_version: Path, tmp_path: Path) -> None:
    vdir = _copy(rs3_version, "paths")
    try:
        path = vdir / "rs3" / "caption" / "millionaid" / "00000.parquet"
        rows = pq.read_table(path).to_pylist()
        assert len(rows) >= 6
        inside = vdir / "rs3" / "extra" / "img.jpg"
        inside.parent.mkdir(parents=True)
        shutil.copyfile(rows[0]["image_path"], inside)
        rows[0]["image_path"] = "rs3/extra/img.jpg"  # relative to the version folder: found
        rows[1]["image_path"] = "../../world/millionaid/test/" + Path(rows[1]["image_path"]).name  # escapes
        rows[2]["image_path"] = str(tmp_path / "nowhere.jpg")  # absolute, absent
        rows[3]["name"] = rows[4]["name"]  # ambiguous name: both written under their uids
        pq.write_table(pa.Table.from_pylist(rows, schema=stage.CAPTION_SCHEMA), path)
        # the BigEarthNet PNGs are version-owned: this copy reads its own, not the path stored by the original
        ben = pq.read_table(vdir / "rs3" / "caption" / "ben" / "00000.parquet").to_pylist()[0]["image_path"]
        own = resolve_image(vdir, ben)
        assert own is not None and own.is_relative_to(vdir) and own.read_bytes() == Path(ben).read_bytes()
        assert resolve_image(vdir, "rs3/images/ben/../../../../etc/passwd") is None
        items = list(iter_rs3_samples(vdir, [("millionaid", "00000")]))
        dropped = {d.uid: d.reason for d in items if isinstance(d, Dropped)}
        assert dropped == {rows[1]["uid"]: "image_missing", rows[2]["uid"]: "image_missing"}
        names = {s.uid for s in items if isinstance(s, Sample)}
        assert {rows[3]["uid"], rows[4]["uid"], rows[0]["name"]} <= names
        res = package_rs3(vdir, CFG)
        assert res["removed"] == {"image_missing": 2} and res["n_out"] == res["n_in"] - 2
        mil = [s for s in res["stats"] if s["source"] == "millionaid"][0]
        assert mil["removed"] == {"image_missing": 2} and mil["subset"] == "rs3"
        assert len(_records(vdir, "rs5m")) == len(_records(vdir, "open_clip")) == res["n_out"]
    finally:
        shutil.rmtree(vdir)


def test_nothing_planned_is_empty_and_planned_but_uncaptioned_is_an_error(tmp_path: Path) -> None:
    res = package_rs3(tmp_path, CFG)
    assert res["skipped"] and res["n_in"] == res["n_out"] == 0 and not (tmp_path / "package").exists()
    plan = stage.rs3_paths(tmp_path, "plan", "fmow", "00000")
    plan.parent.mkdir(parents=True)
    plan.write_text(json.dumps({"root": str(tmp_path), "keys": ["a.jpg"]}))
    with pytest.raises(ValueError, match="no RS3 caption partition finished yet"):
        package_rs3(tmp_path, CFG)


def test_relative_paths_stay_inside_the_version_or_the_dataset_root(
    rs3_version: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = rs3_version.parent.parent
    monkeypatch.chdir(base)  # a plan written with a relative dataset root: paths relative to the cwd
    name = sorted((base / "world" / "millionaid" / "test").glob("P0173*.jpg"))[0].name
    root = Path("world/millionaid")
    assert resolve_image(rs3_version, f"world/millionaid/test/{name}", [root]) == Path(
        f"world/millionaid/test/{name}"
    )
    assert resolve_image(rs3_version, f"test/{name}", [root]) == root / "test" / name
    assert resolve_image(rs3_version, f"test/{name}", [base / "world" / "millionaid"]) is not None
    assert (
        resolve_image(rs3_version, "world/fmow-rgb/train/airport/airport_0/airport_0_0_rgb.jpg", [root])
        is None
    )
    assert resolve_image(rs3_version, f"world/millionaid/../millionaid/test/{name}", [root]) is None
    assert resolve_image(rs3_version, f"test/{name}") is None  # no root given: only the version folder
