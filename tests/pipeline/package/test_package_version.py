"""Packaging a real sample version: round trip of both layouts, splits, manifest, plain webdataset, resume."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from rs5m.config import PackageConfig
from rs5m.core.layout import VersionLayout
from rs5m.lineage import store as lineage
from rs5m.pipeline.download.stage import iter_shard_images
from rs5m.pipeline.package.packer import image_format
from rs5m.pipeline.package.pub11 import package_pub11
from rs5m.shards import assign_split, iter_records, read_manifest, verify_manifest
from tests.pipeline.package.conftest import PKG_CFG, derive_version


def kept_sources(vdir: Path) -> dict[str, dict]:
    """uid -> {image bytes, caption, cluster}, read independently of the packager."""
    rows = (
        duckdb.connect()
        .execute(
            "SELECT d.uid, d.dup_cluster, v.key, v.shard, k.caption FROM read_parquet(?) d "
            "JOIN read_parquet(?) v USING (uid) JOIN read_parquet(?) k USING (uid) WHERE d.dup_keep",
            [
                str(vdir / "dedup/decisions.parquet"),
                str(vdir / "validity/*/*.parquet"),
                str(vdir / "keyword/*/*.parquet"),
            ],
        )
        .fetchall()
    )
    out = {}
    for uid, cluster, key, shard, caption in rows:
        out[uid] = {"cluster": cluster, "caption": caption, "key": key, "shard": shard}
    for shard in {r["shard"] for r in out.values()}:
        keys = {r["key"]: uid for uid, r in out.items() if r["shard"] == shard}
        for key, data in iter_shard_images(shard, set(keys)):
            out[keys[key]]["image"] = data
    return out


def test_every_kept_sample_once_per_layout_with_identical_bytes(v1: Path) -> None:
    kept = kept_sources(v1)
    assert len(kept) > 100
    formats = set()
    for layout in ("rs5m", "open_clip"):
        recs = list(iter_records(v1 / "package" / layout))
        assert sorted(r.key for r in recs) == sorted(kept)  # each kept uid exactly once
        for rec in recs:
            want = kept[rec.key]
            assert rec.image == want["image"] and rec.caption == want["caption"]
            real = image_format(rec.image)
            formats.add(real)
            if layout == "rs5m":
                assert rec.members["img_name"].decode() == f"{rec.key}.{real}"
            else:
                assert rec.image_ext == real  # PNG bytes stored by img2dataset as .jpg get .png here
                meta = json.loads(rec.members["json"])
                assert meta["source"] == rec.key.split("-")[0] and meta["dup_cluster"] == want["cluster"]
                assert "caption_provenance" in meta and "scores" in meta
    assert formats == {"jpg", "png"}


def test_split_by_cluster_and_deterministic(v1: Path, tmp_path: Path) -> None:
    decisions = pq.read_table(v1 / "dedup/decisions.parquet").to_pylist()
    split_of = {}
    for layout in ("rs5m", "open_clip"):
        for path in (v1 / "package" / layout).glob("*.tar"):
            for rec in iter_records(str(path)):
                split_of[(layout, rec.key)] = "val" if "-val-" in path.name else "train"
    keys = [d["dup_cluster"] or d["uid"] for d in decisions]
    flags = assign_split(keys, PKG_CFG.val_fraction, PKG_CFG.seed)
    is_val = dict(zip([d["uid"] for d in decisions], flags, strict=True))
    for (_, uid), split in split_of.items():
        assert split == ("val" if is_val[uid] else "train")
    clusters: dict[str, set[bool]] = {}
    for d in decisions:  # every member of a cluster, kept or not, falls on the same side
        if d["dup_cluster"]:
            clusters.setdefault(d["dup_cluster"], set()).add(bool(is_val[d["uid"]]))
    assert clusters and all(len(v) == 1 for v in clusters.values())
    assert 0 < sum(s == "val" for s in split_of.values()) < len(split_of) / 2
    again = derive_version(v1, "again", ("ingest", "keyword", "download", "validity", "dedup"))
    try:
        package_pub11(again, PKG_CFG)
        for layout in ("rs5m", "open_clip"):
            a, b = read_manifest(v1 / "package" / layout), read_manifest(again / "package" / layout)
            assert [(s["name"], s["sha256"]) for s in a["shards"]] == [
                (s["name"], s["sha256"]) for s in b["shards"]
            ]
    finally:
        shutil.rmtree(again)


def test_manifest_verifies_and_detects_a_flipped_byte(v1: Path, tmp_path: Path) -> None:
    for layout in ("rs5m", "open_clip"):
        src = v1 / "package" / layout
        assert verify_manifest(src, count_samples=True) == []
        manifest = read_manifest(src)
        assert manifest["keep_rule"] == {"pub11": "dedup.dup_keep"}
        assert manifest["n_samples"] == len(kept_sources(v1))
        copy = tmp_path / layout
        shutil.copytree(src, copy)
        shard = copy / manifest["shards"][0]["name"]
        data = bytearray(shard.read_bytes())
        data[700] ^= 0x01
        shard.write_bytes(bytes(data))
        assert verify_manifest(copy) == [f"{shard.name}: sha256 mismatch"]


def test_open_clip_layout_reads_with_plain_webdataset(v1: Path) -> None:
    urls = sorted(str(p) for p in (v1 / "package/open_clip").glob("*.tar"))
    ds = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("jpg;png;webp", "txt", "json")
    n = 0
    for image, text, meta in ds:
        image.load()
        assert image.size[0] > 0 and isinstance(text, str) and text and meta["uid"]
        n += 1
    assert n == read_manifest(v1 / "package/open_clip")["n_samples"]


def test_stats_load_into_lineage_and_resume(v1: Path, pkg_root: Path) -> None:
    res = package_pub11(v1, PKG_CFG)
    assert res["skipped"] and res["n_out"] == res["n_in"] == len(kept_sources(v1))
    db = pkg_root / "lineage-test.duckdb"
    lineage.load_version(db, "v1", v1)
    with lineage.connect(db, read_only=True) as con:
        got = con.execute(
            "SELECT sum(n_in), sum(n_out) FROM stage_totals WHERE version = 'v1' AND stage = 'package'"
        ).fetchone()
    assert got == (res["n_in"], res["n_out"])


def test_missing_member_changed_config_and_complete_version(v1: Path) -> None:
    vdir = derive_version(v1, "v-missing", ("ingest", "keyword", "download", "validity", "dedup"))
    try:
        key, shard = (
            duckdb.connect()
            .execute(
                "SELECT v.key, v.shard FROM read_parquet(?) v JOIN read_parquet(?) d USING (uid) "
                "WHERE d.dup_keep AND v.source = 'laion2b' ORDER BY v.uid LIMIT 1",
                [str(vdir / "validity/*/*.parquet"), str(vdir / "dedup/decisions.parquet")],
            )
            .fetchall()[0]
        )
        # the validity rows still name v1's tar: packaging must read this version's own copy
        tar_path = next((vdir / "download/laion2b").glob(f"*/{Path(shard).name}"))
        with tarfile.open(tar_path) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]
        stem_ext = [(m.name.split(".")[0], m.name.split(".")[-1]) for m, _ in members]
        victim = ".".join(next(p for p in stem_ext if p[0] == key and p[1] not in ("json", "txt")))
        with tarfile.open(tar_path, "w") as tar:
            for m, data in members:
                if m.name != victim:
                    tar.addfile(m, io.BytesIO(data))
        first = package_pub11(vdir, PKG_CFG)
        assert first["removed"] == {"image_missing": 1} and first["n_out"] == first["n_in"] - 1
        bigger = PackageConfig(**{**PKG_CFG.model_dump(), "max_samples_per_shard": 1000})
        second = package_pub11(vdir, bigger)  # a changed packaging config repackages (and drops old shards)
        assert not second["skipped"] and second["layouts"]["rs5m"]["n_shards"] == 2
        assert verify_manifest(vdir / "package/rs5m") == []
        VersionLayout.of(vdir).complete_marker.write_text("{}")
        assert package_pub11(vdir, bigger)["skipped"]
        with pytest.raises(ValueError, match="immutable"):
            package_pub11(vdir, PKG_CFG)
    finally:
        shutil.rmtree(vdir)
