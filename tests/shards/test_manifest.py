"""Manifest: totals per subset/split, checksums verified, corruption and strays detected."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs5m.config import PackageConfig
from rs5m.core.io import write_sealed_json
from rs5m.shards import read_manifest, verify_manifest, write_manifest, write_shards

CFG = PackageConfig(max_samples_per_shard=3, fsync=False)


@pytest.fixture
def shard_dir(tmp_path: Path, samples) -> Path:
    write_shards(samples(7), tmp_path, "pub11", "train", "open_clip", CFG)
    write_shards(samples(2, prefix="rs3"), tmp_path, "rs3", "val", "open_clip", CFG)
    write_manifest(tmp_path, "v1", extra={"config_hash": "abc"})
    return tmp_path


def test_manifest_lists_every_shard_with_counts(shard_dir: Path) -> None:
    m = read_manifest(shard_dir)
    assert m["version"] == "v1" and m["config_hash"] == "abc" and m["layouts"] == ["open_clip"]
    assert [s["name"] for s in m["shards"]] == [
        "pub11-train-0000.tar",
        "pub11-train-0001.tar",
        "pub11-train-0002.tar",
        "rs3-val-0000.tar",
    ]
    assert m["totals"]["pub11"]["train"]["n_samples"] == 7
    assert m["totals"]["rs3"]["val"] == {"n_shards": 1, "n_samples": 2, "bytes": m["shards"][-1]["bytes"]}
    assert m["n_samples"] == 9
    assert all(s["bytes"] == (shard_dir / s["name"]).stat().st_size for s in m["shards"])
    assert verify_manifest(shard_dir, count_samples=True) == []


def test_manifest_is_deterministic(shard_dir: Path) -> None:
    before = (shard_dir / "manifest.json").read_bytes()
    write_manifest(shard_dir, "v1", extra={"config_hash": "abc"})
    assert (shard_dir / "manifest.json").read_bytes() == before


def test_corrupted_shard_is_detected(shard_dir: Path) -> None:
    path = shard_dir / "pub11-train-0001.tar"
    data = bytearray(path.read_bytes())
    data[700] ^= 0xFF
    path.write_bytes(bytes(data))
    assert verify_manifest(shard_dir) == ["pub11-train-0001.tar: sha256 mismatch"]


def test_truncated_missing_and_stray_shards_are_detected(shard_dir: Path) -> None:
    p = shard_dir / "pub11-train-0000.tar"
    p.write_bytes(p.read_bytes()[:-512])
    (shard_dir / "rs3-val-0000.tar").unlink()
    (shard_dir / "pub11-train-0099.tar").write_bytes(b"")
    problems = verify_manifest(shard_dir)
    assert problems[0].startswith("pub11-train-0000.tar: size")
    assert problems[1:] == ["rs3-val-0000.tar: missing", "pub11-train-0099.tar: not in manifest"]


def test_wrong_count_and_unreadable_manifest(shard_dir: Path) -> None:
    m = read_manifest(shard_dir)
    m["shards"][0]["n_samples"] += 1
    write_sealed_json(shard_dir / "manifest.json", m)  # a wrong count under a valid checksum
    assert verify_manifest(shard_dir) == []
    assert verify_manifest(shard_dir, count_samples=True) == ["pub11-train-0000.tar: 3 samples != manifest 4"]
    (shard_dir / "manifest.json").write_text("{not json")
    assert verify_manifest(shard_dir)[0].startswith("cannot read manifest")
