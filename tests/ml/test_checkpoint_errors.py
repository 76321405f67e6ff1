"""A checkpoint that is not one is a one-line ``CheckpointError`` saying what the file is instead
(issue #17 item 11): no ``IndexError``, no advice to pass ``weights_only=False``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from rs5m.ml.models import TINY_MODEL_NAME, CheckpointError, check_model, read_state_dict


def _text(path: Path) -> None:
    path.write_text("these are not weights\n", encoding="utf-8")


def _random(path: Path) -> None:
    rng = random.Random(17)
    path.write_bytes(bytes(rng.randrange(256) for _ in range(20_000)))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    torch.save({"w": torch.zeros(64, 64)}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _pickled_object(path: Path) -> None:
    torch.save({"w": torch.zeros(2), "when": Path("x")}, path)


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (_text, "is a text file, not a PyTorch checkpoint"),
        (_random, "is not a PyTorch checkpoint (damaged, or another format)"),
        (_empty, "is empty"),
        (_truncated, "is a zip archive (PyTorch's format) but cut short or damaged"),
        (_pickled_object, "holds more than tensors (only a plain state_dict loads safely)"),
    ],
    ids=["text", "random", "empty", "truncated", "pickled-object"],
)
@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mapped"])
def test_what_the_file_is(tmp_path: Path, make, what: str, mmap: bool) -> None:  # noqa: ANN001
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path, mmap=mmap)
    text = str(info.value)
    assert text.startswith(f"{path}: cannot read checkpoint: the file {what} ("), text
    assert "\n" not in text and "weights_only" not in text
    assert isinstance(info.value, ValueError)  # one CLI line (status 2), not retried


def test_a_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .* \(a folder\)$"):
        read_state_dict(tmp_path)


def test_check_model_is_the_pre_flight_of_load_clip(tmp_path: Path) -> None:
    """Name and checkpoint file are judged without building the model; both zip and legacy files pass."""
    unknown = r"^unknown open_clip model 'nosuch' \(see open_clip\.list_models\(\)\)$"
    with pytest.raises(ValueError, match=unknown):
        check_model("nosuch")
    check_model(TINY_MODEL_NAME)
    for legacy in (False, True):
        path = tmp_path / f"legacy-{legacy}.pt"
        torch.save({"w": torch.ones(3)}, path, _use_new_zipfile_serialization=not legacy)
        check_model("ViT-B/32", path)
    _text(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="text.pt: cannot read checkpoint: the file is a text file"):
        check_model(TINY_MODEL_NAME, tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        check_model(TINY_MODEL_NAME, tmp_path / "missing.pt")
