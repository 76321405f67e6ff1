"""Loading the tiny open_clip model leaves no ``rs5m-model-config-*`` folder in the temp directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import open_clip
import pytest
import torch

from rs5m.ml.models import TINY_MODEL_NAME, load_clip, register_tiny_model


def test_registering_the_tiny_model_leaves_no_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delitem(open_clip.factory._MODEL_CONFIGS, TINY_MODEL_NAME, raising=False)
    assert TINY_MODEL_NAME not in open_clip.list_models()
    register_tiny_model()
    assert TINY_MODEL_NAME in open_clip.list_models()
    assert list(tmp_path.iterdir()) == []
    # open_clip keeps what it read: a later rescan (another config added) does not lose the model
    other = tmp_path / "other"
    other.mkdir()
    open_clip.add_model_config(other)
    model, _, _ = load_clip(TINY_MODEL_NAME)
    assert model.text_projection.shape == torch.Size([64, 64])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]
