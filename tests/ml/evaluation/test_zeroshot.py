"""Zero-shot protocol pieces (reference §11.1): templates, class names, classifier, metrics, ImageFolder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rs5m.ml.evaluation.templates import TEMPLATES, class_name, fill
from rs5m.ml.evaluation.zeroshot import (
    classification_metrics,
    scan_image_folder,
    zeroshot_classifier,
    zeroshot_logits,
)

# sha256 of "\n".join(templates) of RS5M inference/classname_and_prompt/RSAID.py (same in EuroSAT/RESISC45)
TEMPLATES_SHA256 = "5d81961f1eed8ff0ee90778d056e695ba6fd396da877a4d7d8eb9d991a2916ff"


def test_templates_are_the_105_of_the_reference() -> None:
    assert len(TEMPLATES) == 105 and len(set(TEMPLATES)) == 105
    assert all(t.count("{}") == 1 and t.endswith(".") for t in TEMPLATES)
    assert TEMPLATES[0] == "a remote sensing image of many {}."
    assert "a jpeg corrupted aerial image of a {}." in TEMPLATES
    assert "a satellite image of the weird {}." in TEMPLATES
    assert hashlib.sha256("\n".join(TEMPLATES).encode()).hexdigest() == TEMPLATES_SHA256


def test_class_names_lowercase_fused_camelcase() -> None:
    assert class_name("HerbaceousVegetation") == "herbaceousvegetation"
    assert class_name("Sea_Lake") == "sea lake"
    assert class_name("baseball_diamond") == "baseball diamond"
    assert fill("an aerial image of a {}.", "sea lake") == "an aerial image of a sea lake."


def _protocol_case() -> tuple[np.ndarray, np.ndarray]:
    # class 0: prompts of very different norms; class 1: one direction
    text = np.array([[[10.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [0.6, 0.8]]], dtype=np.float32)
    image = np.array([[0.8, 0.6]], dtype=np.float32)
    return text, image


def test_georsclip_averages_raw_embeddings_then_normalises() -> None:
    text, image = _protocol_case()
    w = zeroshot_classifier(text, "georsclip")
    assert w.shape == (2, 2)
    np.testing.assert_allclose(w[:, 0].numpy(), np.array([5.0, 0.5]) / np.hypot(5.0, 0.5), rtol=1e-6)
    assert int(zeroshot_logits(image, w).argmax()) == 1  # 0.96 vs 0.856


def test_clip_benchmark_normalises_each_prompt_first() -> None:
    text, image = _protocol_case()
    w = zeroshot_classifier(text, "clip_benchmark")
    np.testing.assert_allclose(w[:, 0].numpy(), [2**-0.5, 2**-0.5], rtol=1e-6)
    assert int(zeroshot_logits(image, w).argmax()) == 0  # 0.99 vs 0.96


def test_logits_are_100_times_cosine() -> None:
    w = zeroshot_classifier(np.array([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=np.float32))
    np.testing.assert_allclose(zeroshot_logits(np.array([[3.0, 4.0]]), w).numpy(), [[60.0, 80.0]], rtol=1e-6)


def test_top1_and_mean_per_class_recall_hand_computed() -> None:
    logits = torch.tensor([[2.0, 1.0], [3.0, 0.0], [0.0, 1.0], [0.0, 5.0]])
    labels = np.array([0, 0, 0, 1])
    assert classification_metrics(logits, labels) == {"top1": 75.0, "mean_per_class_recall": 83.33}


def test_ties_go_to_the_lowest_class_index() -> None:
    tie = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    assert classification_metrics(tie, np.array([0, 1]))["top1"] == 50.0


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path)


def test_scan_image_folder_like_torchvision(tmp_path: Path) -> None:
    for name in ["b/2.jpg", "b/1.png", "b/sub/0.jpg", "a/x.JPG", "a/notes.txt"]:
        _img(tmp_path / name) if not name.endswith(".txt") else (tmp_path / name).write_text("x")
    (tmp_path / "LICENSE.txt").write_text("ignored: files at the root are not classes")
    index = scan_image_folder(tmp_path)
    assert index.classes == ["a", "b"]
    assert [Path(p).relative_to(tmp_path).as_posix() for p in index.paths] == [
        "a/x.JPG",
        "b/1.png",
        "b/2.jpg",
        "b/sub/0.jpg",
    ]
    assert index.labels.tolist() == [0, 1, 1, 1]
    assert scan_image_folder(tmp_path, max_per_class=1).labels.tolist() == [0, 1]


def test_scan_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class folders"):
        scan_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="without images"):
        scan_image_folder(tmp_path)
