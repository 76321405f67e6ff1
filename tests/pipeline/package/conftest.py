"""A real small dataset version built with the library stage functions (no Prefect), and derived versions.

``pkg_root`` builds the sample world (seed 0) through ingest, keyword, download (served from
127.0.0.1), validity and dedup into version ``v1`` once per session (~10 s), then packages it.
``derive_version`` copies a version's stage outputs up to validity into a new version folder, so a
test can rerun dedup with another threshold (or plant an outlier decision) without downloading again.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import dask
import pytest

from rs5m.config import PackageConfig, load_build_config
from rs5m.core import version as build
from rs5m.pipeline.dedup import stage as dedup_stage
from rs5m.pipeline.download import stage as download_stage
from rs5m.pipeline.ingest import ingest_file
from rs5m.pipeline.keywords.stage import keyword_paths, run_keyword_stage
from rs5m.pipeline.package.pub11 import package_pub11
from rs5m.pipeline.plan import plan_inputs
from rs5m.pipeline.validity import stage as validity_stage
from rs5m.sample import serve_images, write_world

PKG_CFG = PackageConfig(val_fraction=0.2, max_samples_per_shard=25, fsync=False)
STAGE_DIRS = ("ingest", "keyword", "download", "validity")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_version(world: Path, root: Path, version: str) -> Path:
    """Run every PUB11 stage up to dedup for the world's build.yaml; return the version folder."""
    cfg = load_build_config(world / "build.yaml", root=str(root), version=version)
    vdir = build.prepare_version(cfg)
    stats = []
    for item in plan_inputs(cfg):
        src = next(s for s in cfg.sources if s.name == item.source)
        stats.append(ingest_file(src, item.path, vdir, cfg.ingest, item.partition))
    parts = [(s.source, str(vdir / o)) for s in stats for o in s.extra["outputs"]]
    with dask.config.set(scheduler="synchronous"):
        keyword = run_keyword_stage(vdir, parts, cfg.keyword)
    assert cfg.sample_server is not None
    with serve_images(world / "images", port=cfg.sample_server.port):
        for s in keyword:
            candidates, _ = keyword_paths(vdir, s.source, s.partition)
            download_stage.download_candidates(vdir, s.source, s.partition, str(candidates), cfg.download)
    for s in keyword:
        validity_stage.validate_partition(vdir, s.source, s.partition, cfg.validity, cfg.dedup)
    dedup_stage.run_dedup(vdir, sorted({s.name for s in cfg.sources}), cfg.dedup)
    return vdir


def derive_version(base: Path, name: str, stages: tuple[str, ...] = STAGE_DIRS) -> Path:
    """Copy ``stages`` of version ``base`` into sibling version ``name`` (with its own config hash)."""
    vdir = base.parent / name
    vdir.mkdir()
    for stage in stages:
        shutil.copytree(base / stage, vdir / stage)
    saved = json.loads((base / "config.json").read_text(encoding="utf-8"))
    saved["config_hash"] = f"derived-{name}"
    (vdir / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    return vdir


@pytest.fixture(scope="session")
def pkg_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data root holding version ``v1`` (sample world, default dedup), packaged with ``PKG_CFG``."""
    base = tmp_path_factory.mktemp("package")
    write_world(base / "world", seed=0, port=_free_port())
    root = base / "data"
    vdir = build_version(base / "world", root, "v1")
    package_pub11(vdir, PKG_CFG)
    return root


@pytest.fixture(scope="session")
def v1(pkg_root: Path) -> Path:
    """The packaged version folder ``v1``."""
    return pkg_root / "versions" / "v1"
