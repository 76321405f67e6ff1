"""Corrupted done markers are detected by their checksum and their work is redone (issue #12).

A stats file (``rs5m.core.stats.PartitionStats``) is the done marker of one partition of one stage; a shard
manifest and its per-shard entries are the package stage's. Each test copies one complete build of
the fault world, corrupts markers in ways a parse and the ``n_in == n_out + removed`` invariant cannot
see (counts shifted together, a renamed reason, a dropped checksum, a wrong shard sha256, a flipped
byte) plus a truncated file, rebuilds the same version, and checks that exactly the corrupted work was
redone (inode and mtime of every marker), that a warning named each corrupt file, and that the build
ended like the undisturbed reference.

A complete version is immutable: rebuilding it redoes corrupt upstream partitions, but its package
stage refuses to repackage (``test_complete_version_refuses_to_repackage``). So before each rebuild the
tests delete ``COMPLETE``, which is a rerun after a build interrupted before it finished.

Short form: one rebuild with every stats corruption, one with every package corruption (each also
detected on its own, without a rebuild). Long form (``RS5M_FUZZ_LONG=1``): a rebuild per package one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from rs5m.config import PackageConfig
from rs5m.core.io import CHECKSUM_KEY, write_sealed_json
from rs5m.core.layout import DataRoot
from rs5m.core.stats import PartitionStats, read_done
from rs5m.lineage import store as lineage
from rs5m.pipeline.package.packer import package_subset, subset_status
from rs5m.pipeline.package.pub11 import package_pub11
from rs5m.shards import Sample, read_manifest, verify_manifest
from rs5m.shards.manifest import entry_path, verify_subset

from . import LONG
from ._builds import VERSION, Built, Outcome, World, assert_same, outcome, run_build

LAYOUTS = ("rs5m", "open_clip")
PER_PARTITION = (
    *(f"{s}/_stats" for s in ("ingest", "keyword", "download", "validity")),
    "outlier_score/_stats",
)
BARRIERS = ("dedup/_stats", "outlier/_stats", "package/_stats")  # one run redoes every source's marker


@pytest.fixture(scope="module")
def built(sample_build: Built) -> Path:
    """A data root holding the session's complete, undisturbed build of the fault world (copied by each
    test)."""
    return sample_build.root


def _copy(built: Path, dst: Path) -> Path:
    """A private full copy of the built root (versions are movable: no path inside points at the original;
    not ``linked_copy``: these tests edit files in place)."""
    shutil.copytree(built, dst, symlinks=True)
    return dst / "versions" / VERSION


def _markers(vdir: Path) -> dict[Path, tuple[int, int]]:
    """(inode, mtime_ns) of every stats file: any rewrite changes the pair (mtime if an inode is reused)."""
    files = [p for d in (*PER_PARTITION, *BARRIERS) for p in (vdir / d).rglob("*.json")]
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    """Rewrite a JSON file in place with ``change`` applied, its stored checksum left as it was."""
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def shift_counts(path: Path) -> None:
    """n_in and n_out both up by 7: valid JSON, invariant true, checksum wrong."""
    _edit(path, lambda d: d.update(n_in=d["n_in"] + 7, n_out=d["n_out"] + 7))


def rename_reason(path: Path) -> None:
    """The first removal reason renamed: valid JSON, invariant true, checksum wrong."""
    _edit(path, lambda d: d["removed"].update(renamed=d["removed"].pop(sorted(d["removed"])[0])))


def drop_checksum(path: Path) -> None:
    """The checksum removed, counts intact: an unsealed marker (e.g. written by an older rs5m)."""
    _edit(path, lambda d: d.pop(CHECKSUM_KEY))


def truncate(path: Path) -> None:
    """The file cut in half."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _pick(vdir: Path, stage_dir: str, need_removed: bool = False) -> Path:
    """The first stats file of a stage (sorted), with a removal reason when ``need_removed``."""
    for p in sorted((vdir / stage_dir).rglob("*.json")):
        if not need_removed or PartitionStats.read(p).removed:
            return p
    raise AssertionError(f"no stats file under {vdir / stage_dir} fits")


def _rebuild(world: World, root: Path) -> None:
    """Rerun the version after an interrupted build: ``COMPLETE`` removed, then the same build again."""
    DataRoot.of(root).version(VERSION).complete_marker.unlink()
    run_build(world.config, root)


def _warned(caplog: pytest.LogCaptureFixture, path: Path) -> bool:
    return any(str(path) in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_corrupt_stats_files_are_redone(
    built: Path, faults_world: World, reference: Outcome, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vdir = _copy(built, tmp_path / "root")
    plan = {
        _pick(vdir, "ingest/_stats"): shift_counts,
        _pick(vdir, "keyword/_stats", need_removed=True): rename_reason,
        _pick(vdir, "download/_stats"): truncate,
        _pick(vdir, "validity/_stats"): drop_checksum,
        _pick(vdir, "outlier_score/_stats"): shift_counts,
        _pick(vdir, "dedup/_stats", need_removed=True): rename_reason,
        _pick(vdir, "outlier/_stats"): shift_counts,
        _pick(vdir, "package/_stats"): shift_counts,
    }
    original = {p: PartitionStats.read(p) for p in plan}
    for path, corrupt in plan.items():
        corrupt(path)
        assert read_done(path) is None, f"{corrupt.__name__} of {path} was not detected"
    before = _markers(vdir)
    caplog.set_level(logging.WARNING)
    _rebuild(faults_world, tmp_path / "root")
    after = _markers(vdir)
    assert set(after) == set(before)
    rewritten = {p for p in after if after[p] != before[p]}
    per_partition = {p for p in rewritten if any(str(vdir / d) in str(p) for d in PER_PARTITION)}
    assert per_partition == {p for p in plan if any(str(vdir / d) in str(p) for d in PER_PARTITION)}
    for d in BARRIERS:
        assert {p for p in after if str(vdir / d) in str(p)} <= rewritten, f"{d}: the barrier was not redone"
    for path, stats in original.items():
        redone = PartitionStats.read(path)
        assert (redone.n_in, redone.n_out, redone.removed) == (stats.n_in, stats.n_out, stats.removed)
        assert _warned(caplog, path), f"no warning named {path}"
    assert all(verify_manifest(vdir / "package" / layout) == [] for layout in LAYOUTS)
    assert_same(outcome(tmp_path / "root"), reference)


def flip_manifest_byte(vdir: Path) -> str:
    """A hex digit of a listed sha256 changed inside ``rs5m/manifest.json``: valid JSON, seal broken."""
    path = vdir / "package" / "rs5m" / "manifest.json"
    text = path.read_text(encoding="utf-8")
    sha = read_manifest(path.parent)["shards"][0]["sha256"]
    at = text.index(sha) + 10
    path.write_text(text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :], encoding="utf-8")
    return "checksum mismatch"


def wrong_shard_sha(vdir: Path) -> str:
    """``open_clip/manifest.json`` resealed with a wrong sha256 for its last shard: only hashing sees it."""
    d = vdir / "package" / "open_clip"
    manifest = read_manifest(d)
    manifest["shards"][-1]["sha256"] = "0" * 64
    write_sealed_json(d / "manifest.json", manifest)
    return f"{manifest['shards'][-1]['name']}: sha256 mismatch"


def flip_shard_byte(vdir: Path) -> str:
    """One byte of the last ``rs5m`` shard flipped (same size)."""
    shard = sorted((vdir / "package" / "rs5m").glob("pub11-*.tar"))[-1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0xFF
    shard.write_bytes(bytes(data))
    return f"{shard.name}: sha256 mismatch"


def corrupt_entry(vdir: Path) -> str:
    """The first ``open_clip`` shard's entry with another sample count, its checksum unchanged."""
    d = vdir / "package" / "open_clip"
    name = read_manifest(d)["shards"][0]["name"]
    _edit(entry_path(d, name), lambda e: e.update(n_samples=e["n_samples"] + 1))
    return f"{name}: entry"


def missing_shard(vdir: Path) -> str:
    """The first ``open_clip`` shard deleted."""
    shard = sorted((vdir / "package" / "open_clip").glob("pub11-*.tar"))[0]
    shard.unlink()
    return f"{shard.name}: missing"


PACKAGE_CORRUPTIONS = [flip_manifest_byte, wrong_shard_sha, flip_shard_byte, corrupt_entry, missing_shard]


@pytest.mark.parametrize("corrupt", PACKAGE_CORRUPTIONS, ids=lambda f: f.__name__)
def test_complete_version_refuses_to_repackage(
    built: Path, tmp_path: Path, corrupt: Callable[[Path], str]
) -> None:
    vdir = _copy(built, tmp_path / "root")
    cfg = PackageConfig(**json.loads((vdir / "config.json").read_text(encoding="utf-8"))["config"]["package"])
    assert package_pub11(vdir, cfg)["skipped"]  # intact: reused, nothing rewritten
    fp = read_manifest(vdir / "package" / "rs5m")["subsets"]["pub11"]["fingerprint"]
    expected = corrupt(vdir)
    done, why = subset_status(vdir / "package", "pub11", cfg.layouts, fp)
    assert done is None and expected in why
    with pytest.raises(ValueError, match=r"complete and immutable, and its pub11 packaging cannot be reused"):
        package_pub11(vdir, cfg)


def _package_corruption_rebuild(
    built: Path,
    world: World,
    reference: Outcome,
    root: Path,
    caplog: pytest.LogCaptureFixture,
    corruptions: list[Callable[[Path], str]],
) -> None:
    vdir = _copy(built, root)
    for corrupt in corruptions:
        corrupt(vdir)
    assert any(verify_subset(vdir / "package" / layout, "pub11") for layout in LAYOUTS)
    shards = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (vdir / "package").rglob("*.tar")}
    caplog.set_level(logging.WARNING)
    _rebuild(world, root)
    assert all(not p.exists() or (p.stat().st_ino, p.stat().st_mtime_ns) != v for p, v in shards.items())
    assert _warned(caplog, vdir / "package")
    for layout in LAYOUTS:
        assert verify_manifest(vdir / "package" / layout, count_samples=True) == []
    assert_same(outcome(root), reference)


def test_corrupt_package_is_repackaged(
    built: Path, faults_world: World, reference: Outcome, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _package_corruption_rebuild(
        built, faults_world, reference, tmp_path / "root", caplog, PACKAGE_CORRUPTIONS
    )


@pytest.mark.skipif(not LONG, reason="long form: set RS5M_FUZZ_LONG=1")
@pytest.mark.parametrize("corrupt", PACKAGE_CORRUPTIONS, ids=lambda f: f.__name__)
def test_each_package_corruption_is_repackaged(
    built: Path,
    faults_world: World,
    reference: Outcome,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    corrupt: Callable[[Path], str],
) -> None:
    _package_corruption_rebuild(built, faults_world, reference, tmp_path / "root", caplog, [corrupt])


def test_old_markers_without_checksum_are_not_trusted(tmp_path: Path) -> None:
    """A stats file as rs5m wrote it before checksums (same JSON, no checksum) is not a done marker."""
    stats = PartitionStats("ingest", "cc12m", "p", n_in=3, n_out=2, removed={"bad_url": 1})
    stats.write(tmp_path / "s.json")
    assert read_done(tmp_path / "s.json") == stats
    drop_checksum(tmp_path / "s.json")
    assert read_done(tmp_path / "s.json") is None
    with pytest.raises(ValueError, match="no content_sha256 checksum"):
        PartitionStats.read(tmp_path / "s.json")
    assert os.path.exists(tmp_path / "s.json")  # left for the stage to overwrite, not deleted
    vdir = tmp_path / "v"
    stats.write(vdir / "ingest" / "_stats" / "cc12m" / "p.json")
    shift_counts(vdir / "ingest" / "_stats" / "cc12m" / "p.json")
    with pytest.raises(ValueError, match="corrupt stats file .*p.json: content_sha256 checksum mismatch"):
        lineage.load_version(DataRoot.of(tmp_path).lineage_db, "v", vdir)  # never loaded silently


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i * 40 % 256, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_corrupt_entry_of_another_subset_gets_that_subset_repackaged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both subsets share each layout's manifest: packaging one must not trust, nor trip on, a corrupt
    entry of the other; the entry is deleted and the other subset's record dropped, so it repackages."""
    cfg = PackageConfig(max_samples_per_shard=2, fsync=False)
    fp = {"keep_rule": "test"}

    def pack(subset: str) -> None:
        samples = [Sample(f"{subset}{i}", "laion2b", f"caption {i}", _png(i), "png", {}) for i in range(3)]
        package_subset(samples, tmp_path, subset, cfg, version="v1", fingerprint=fp)

    pack("pub11")
    pack("rs3")
    assert subset_status(tmp_path, "rs3", cfg.layouts, fp)[0] is not None
    entry = entry_path(tmp_path / "rs5m", read_manifest(tmp_path / "rs5m")["shards"][-1]["name"])
    assert entry.name.startswith("rs3-")
    _edit(entry, lambda e: e.update(bytes=e["bytes"] + 512))
    done, why = subset_status(tmp_path, "rs3", cfg.layouts, fp)
    assert done is None and "entry" in why
    caplog.set_level(logging.WARNING)
    pack("pub11")  # repackaging pub11 rewrites the shared manifests
    assert not entry.exists() and _warned(caplog, entry)
    assert "rs3" not in read_manifest(tmp_path / "rs5m")["subsets"]
    assert subset_status(tmp_path, "rs3", cfg.layouts, fp)[0] is None
    pack("rs3")
    for layout in cfg.layouts:
        assert set(read_manifest(tmp_path / layout)["subsets"]) == {"pub11", "rs3"}
        assert verify_manifest(tmp_path / layout, count_samples=True) == []
    assert subset_status(tmp_path, "rs3", cfg.layouts, fp)[0] is not None
