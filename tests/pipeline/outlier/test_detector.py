"""RS detector: seeded class-balanced 7:1:2 split, training, checkpoint round trip (tiny backbones, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rs5m.config import DetectorConfig
from rs5m.ml.detector import load_detector
from rs5m.ml.detector_train import list_images, split_balanced, train_detector
from rs5m.ml.models import load_clip
from tests.pipeline.outlier.world import image_bytes


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12 aerial-looking positives (in a class subfolder) and 10 ordinary negatives, 48 px."""
    base = tmp_path_factory.mktemp("det-data")
    (base / "pos" / "farmland").mkdir(parents=True)
    (base / "neg").mkdir()
    for i in range(12):
        (base / "pos" / "farmland" / f"{i}.jpg").write_bytes(image_bytes(True, 500 + i))
    for i in range(10):
        (base / "neg" / f"{i}.jpg").write_bytes(image_bytes(False, 700 + i))
    return base / "pos", base / "neg"


def test_split_is_seeded_balanced_7_1_2(folders: tuple[Path, Path]) -> None:
    pos, neg = list_images(folders[0]), list_images(folders[1])
    cfg = DetectorConfig()
    split = split_balanced(pos, neg, cfg)
    assert {k: len(v) for k, v in split.items()} == {"train": 14, "val": 2, "test": 4}  # 10 per class
    for items in split.values():
        labels = [label for _, label in items]
        assert labels.count(1) == labels.count(0)
    files = [f for items in split.values() for f, _ in items]
    assert len(files) == len(set(files))
    assert split == split_balanced(pos, neg, cfg)
    assert split != split_balanced(pos, neg, DetectorConfig(seed=1))
    unbalanced = split_balanced(pos, neg, DetectorConfig(balance_classes=False))
    assert sum(label for items in unbalanced.values() for _, label in items) == 12


@pytest.mark.parametrize("finetune", [False, True])
def test_train_save_load_predict(folders: tuple[Path, Path], tmp_path: Path, finetune: bool) -> None:
    cfg = DetectorConfig(model_name="rs5m-tiny", finetune=finetune, epochs=2, batch_size=8, num_workers=0)
    metrics = train_detector(*folders, tmp_path, cfg)
    assert 0 <= metrics["val_accuracy"] <= 1 and 0 <= metrics["test_accuracy"] <= 1
    assert metrics["n"] == {"train": 14, "val": 2, "test": 4}
    assert json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]
    assert set(json.loads((tmp_path / "split.json").read_text())) == {"train", "val", "test"}
    detector = load_detector(tmp_path, "cpu")
    files = list_images(folders[0])[:3] + list_images(folders[1])[:3]
    proba = detector.predict_proba(files)
    assert proba.shape == (6,) and proba.dtype == np.float32 and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(load_detector(tmp_path / "detector.pt", "cpu").predict_proba(files), proba)
    np.testing.assert_allclose(detector.predict_proba([f.read_bytes() for f in map(Path, files)]), proba)


def test_backbone_from_a_checkpoint_file_is_not_copied(folders: tuple[Path, Path], tmp_path: Path) -> None:
    model, _, _ = load_clip("rs5m-tiny", init_seed=7)
    torch.save(model.state_dict(), tmp_path / "backbone.pt")
    cfg = DetectorConfig(
        model_name="rs5m-tiny", checkpoint=str(tmp_path / "backbone.pt"), epochs=1, num_workers=0
    )
    train_detector(*folders, tmp_path / "out", cfg)
    state = torch.load(tmp_path / "out" / "detector.pt", weights_only=True)
    assert state["backbone"] is None
    visual = load_detector(tmp_path / "out", "cpu").backbone.tower.state_dict()
    for key, value in model.visual.state_dict().items():
        torch.testing.assert_close(visual[key], value)


def test_timm_backbone(folders: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = DetectorConfig(backbone="timm", model_name="test_vit", epochs=1, num_workers=0, precision="fp32")
    metrics = train_detector(*folders, tmp_path, cfg)
    assert metrics["backbone"] == "timm"
    assert load_detector(tmp_path, "cpu").predict_proba(list_images(folders[0])[:2]).shape == (2,)


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images(tmp_path)
