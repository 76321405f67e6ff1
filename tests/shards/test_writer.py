"""Shard writer: round trip of both layouts, byte determinism, rollover, safe names, atomicity."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from rs5m.config import PackageConfig
from rs5m.shards import Sample, iter_records, make_key, write_shards
from rs5m.shards.manifest import ENTRY_DIR, file_sha256, read_entries

CFG = PackageConfig(max_samples_per_shard=4, fsync=False)


def _by_uid(out: Path, layout: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for rec in iter_records(out):
        assert rec.layout == layout
        if layout == "rs5m":
            uid = rec.members["img_name"].decode().rsplit(".", 1)[0]
        else:
            uid = json.loads(rec.members["json"])["uid"]
        assert uid not in found, f"{uid} twice"
        found[uid] = rec
    return found


@pytest.mark.parametrize("layout", ["rs5m", "open_clip"])
def test_round_trip_every_sample_once_bytes_identical(tmp_path: Path, samples, layout: str) -> None:
    src = samples(11)
    infos = write_shards(src, tmp_path, "pub11", "train", layout, CFG)
    assert [i.name for i in infos] == [f"pub11-train-{k:04d}.tar" for k in range(3)]
    assert [i.n_samples for i in infos] == [4, 4, 3]
    found = _by_uid(tmp_path, layout)
    assert set(found) == {s.uid for s in src}
    for s in src:
        rec = found[s.uid]
        assert rec.image == s.image
        assert rec.caption == s.caption
        if layout == "open_clip":
            assert rec.image_ext == s.ext
            meta = json.loads(rec.members["json"])
            assert meta == {**s.meta, "uid": s.uid, "source": s.source}
        else:
            assert rec.members["img_name"] == f"{s.uid}.{s.ext}".encode()


def test_real_jpegs_round_trip(tmp_path: Path, whu_jpegs: list[bytes]) -> None:
    src = [Sample(f"rs3-whu-{i}", "rs3", f"scene {i}", b, "jpeg") for i, b in enumerate(whu_jpegs)]
    write_shards(src, tmp_path, "rs3", "val", "open_clip", CFG)
    assert {r.image for r in iter_records(tmp_path)} == set(whu_jpegs)
    assert all(p.name.endswith(".tar") for p in tmp_path.glob("rs3-val-*"))


def test_identical_inputs_give_identical_bytes(tmp_path: Path, samples) -> None:
    for layout in ("rs5m", "open_clip"):
        a = write_shards(samples(9), tmp_path / f"a-{layout}", "pub11", "val", layout, CFG)
        b = write_shards(samples(9), tmp_path / f"b-{layout}", "pub11", "val", layout, CFG)
        assert a == b
        assert [file_sha256(tmp_path / f"a-{layout}" / i.name) for i in a] == [i.sha256 for i in a]


def test_member_headers_are_fixed(tmp_path: Path, samples) -> None:
    write_shards(samples(2), tmp_path, "pub11", "train", "rs5m", CFG.model_copy(update={"tar_mtime": 5}))
    with tarfile.open(tmp_path / "pub11-train-0000.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members][:3] == [
        "laion2b-00000.img_name",
        "laion2b-00000.img_content",
        "laion2b-00000.caption",
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(5, 0, 0, "", "", 0o444)}


def test_rollover_by_bytes_and_by_shard_count(tmp_path: Path, samples) -> None:
    src = samples(10, exts=("png",))
    budget = 40 * 1024
    cfg_bytes = PackageConfig(max_bytes_per_shard=budget, fsync=False)
    by_bytes = write_shards(src, tmp_path / "b", "pub11", "train", "rs5m", cfg_bytes)
    assert len(by_bytes) > 1 and sum(i.n_samples for i in by_bytes) == 10
    assert all(i.bytes <= budget for i in by_bytes)
    assert all(i.bytes == (tmp_path / "b" / i.name).stat().st_size for i in by_bytes)
    cfg = PackageConfig(n_shards=3, fsync=False)
    by_count = write_shards(src, tmp_path / "c", "pub11", "train", "rs5m", cfg, start_index=5, n_total=10)
    assert [(i.name, i.n_samples) for i in by_count] == [
        ("pub11-train-0005.tar", 4),
        ("pub11-train-0006.tar", 4),
        ("pub11-train-0007.tar", 2),
    ]


def test_unsafe_uids_get_safe_distinct_keys(tmp_path: Path, encoder) -> None:
    uids = ["../../etc/passwd", "a/b", "a.b", "a_b", "__meta__", "x" * 200]
    keys = [make_key(u) for u in uids]
    assert len(set(keys)) == len(uids)
    assert all("/" not in k and "." not in k and len(k) <= 64 and not k.startswith("_") for k in keys)
    assert make_key("laion2b-0123abcd") == "laion2b-0123abcd"
    src = [Sample(u, "wit", f"c{i}", encoder(ext="png", seed=i), "png") for i, u in enumerate(uids)]
    write_shards(src, tmp_path, "pub11", "train", "open_clip", CFG)
    assert set(_by_uid(tmp_path, "open_clip")) == set(uids)
    for tar_path in tmp_path.glob("*.tar"):
        with tarfile.open(tar_path) as tar:
            assert all("/" not in n and ".." not in n for n in tar.getnames())


def test_bad_inputs_are_refused(tmp_path: Path, samples) -> None:
    src = samples(2)
    with pytest.raises(ValueError, match="twice"):
        write_shards([src[0], src[0]], tmp_path / "d", "pub11", "train", "rs5m", CFG)
    tiff = Sample("u1", "wit", "c", b"II*\x00", "tiff")
    with pytest.raises(ValueError, match="open_clip"):
        write_shards([tiff], tmp_path / "t", "pub11", "train", "open_clip", CFG)
    with pytest.raises(ValueError):
        write_shards(src, tmp_path / "s", "PUB/11", "train", "rs5m", CFG)
    with pytest.raises(ValueError):
        write_shards(src, tmp_path / "l", "pub11", "train", "tfrecord", CFG)


def test_failure_leaves_only_complete_shards(tmp_path: Path, samples) -> None:
    src = samples(6)

    def failing():
        yield from src
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        write_shards(failing(), tmp_path, "pub11", "train", "rs5m", CFG)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ENTRY_DIR) == ["pub11-train-0000.tar"]
    assert [e.name for e in read_entries(tmp_path)] == ["pub11-train-0000.tar"]
    assert not list(tmp_path.glob(".*.tmp"))
