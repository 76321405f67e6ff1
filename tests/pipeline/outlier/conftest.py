"""Fixtures of the outlier tests: a tiny version folder and a tiny trained detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs5m.config import DetectorConfig
from rs5m.ml.detector_train import train_detector, write_generated_images
from tests.pipeline.outlier.world import TinyVersion, add_partition, image_bytes, plain_rows, write_dedup


@pytest.fixture
def tiny_version(tmp_path: Path) -> TinyVersion:
    """Two sources; laion2b/p0 plants an invalid, a duplicate, a corrupt and a missing image."""
    version = TinyVersion(tmp_path / "versions" / "t")
    rows = plain_rows("laion2b", "p0", 10)
    rows[1].valid = False
    rows[2].dup_keep = False
    rows[3].corrupt = True
    rows[4].in_tar = False
    rows[5].caption = ""
    add_partition(version, "laion2b", "p0", rows, seed=1)
    add_partition(version, "cc3m", "p0", plain_rows("cc3m", "p0", 6), seed=2)
    write_dedup(version)
    return version


@pytest.fixture(scope="session")
def tiny_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A head-only detector on the tiny model, trained on 15 aerial vs 15 generated ordinary images."""
    base = tmp_path_factory.mktemp("detector")
    pos = base / "pos"
    pos.mkdir()
    for i in range(15):
        (pos / f"rs_{i}.jpg").write_bytes(image_bytes(True, 100 + i, 64))
    write_generated_images(base / "neg", 15, "ordinary", seed=3, size=64)
    cfg = DetectorConfig(model_name="rs5m-tiny", epochs=3, batch_size=16, num_workers=0, precision="fp32")
    train_detector(pos, base / "neg", base / "out", cfg)
    return base / "out" / "detector.pt"
