"""A real small dataset version built with the registry's stage functions (no Prefect), and derived versions.

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

import pytest

from rs5m.config import PackageConfig, load_build_config
from rs5m.core import version as build
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.lineage import store as lineage
from rs5m.pipeline import registry
from rs5m.pipeline.local import run_local
from rs5m.pipeline.package.pub11 import package_pub11
from rs5m.sample import serve_images, write_world

PKG_CFG = PackageConfig(val_fraction=0.2, max_samples_per_shard=25, fsync=False)
STAGE_DIRS = ("ingest", "keyword", "download", "validity", "plan.json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_version(world: Path, root: Path, version: str) -> Path:
    """Run every PUB11 stage up to dedup for the world's build.yaml; return the version folder."""
    cfg = load_build_config(world / "build.yaml", root=str(root), version=version)
    vdir = build.prepare_version(cfg)
    wanted = (StageName.INGEST, StageName.DOWNLOAD, StageName.VALIDITY, StageName.DEDUP)  # no scoring model
    assert cfg.sample_server is not None
    with serve_images(world / "images", port=cfg.sample_server.port):
        run_local(cfg, [s for s in registry.PUB11 if s.name in wanted])
    return vdir


def load_lineage(vdir: Path) -> None:
    """Load a version's stats files into its data root's lineage database (what ``versions`` reads)."""
    layout = VersionLayout.of(vdir)
    lineage.load_version(layout.data_root.lineage_db, layout.name, vdir)


def derive_version(base: Path, name: str, stages: tuple[str, ...] = STAGE_DIRS) -> Path:
    """Copy ``stages`` of version ``base`` into sibling version ``name`` (with its own config hash)."""
    vdir = base.parent / name
    vdir.mkdir()
    for stage in stages:
        if (base / stage).is_dir():
            shutil.copytree(base / stage, vdir / stage)
        else:
            shutil.copy2(base / stage, vdir / stage)
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
    load_lineage(vdir)
    return root


@pytest.fixture(scope="session")
def v1(pkg_root: Path) -> Path:
    """The packaged version folder ``v1``."""
    return pkg_root / "versions" / "v1"
