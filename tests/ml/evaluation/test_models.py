"""Model loading (reference §10): tiny config, eval preprocess, strict checkpoint loading, clear errors."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch
from PIL import Image

from rs5m.ml.models import CheckpointError, eval_preprocess, load_clip, read_state_dict, register_tiny_model


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A GeoRSCLIP-format file: a plain open_clip state_dict saved with torch.save (seed 7 weights)."""
    model, _, _ = load_clip("rs5m-tiny", init_seed=7)
    state = model.state_dict()
    path = tmp_path_factory.mktemp("ckpt") / "RS5M_rs5m-tiny.pt"
    torch.save(state, path)
    return path, state


def test_register_tiny_model_is_idempotent_and_small() -> None:
    assert register_tiny_model() == register_tiny_model() == "rs5m-tiny"
    assert "rs5m-tiny" in open_clip.list_models()
    model, _, tokenizer = load_clip("rs5m-tiny")
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    assert not model.training
    assert tokenizer(["a satellite image of a port."]).shape == (1, 77)


def test_eval_preprocess_matches_reference_transform() -> None:
    ours = eval_preprocess(224)
    theirs = open_clip.image_transform(224, is_train=False)  # Resize bicubic + CenterCrop + RGB + CLIP norm
    image = Image.new("L", (300, 200), color=90)  # grayscale, non-square: exercises resize, crop and RGB
    image.paste(255, (40, 30, 120, 150))
    out = ours(image)
    assert out.shape == (3, 224, 224)
    torch.testing.assert_close(out, theirs(image))


def test_unknown_model_and_norm_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown open_clip model"):
        load_clip("ViT-Z-99")
    with pytest.raises(ValueError, match="normalisation"):
        eval_preprocess(224, "sentinel")


def test_checkpoint_loads_strictly(tiny_ckpt) -> None:
    path, state = tiny_ckpt
    model, _, _ = load_clip("rs5m-tiny", checkpoint=path, init_seed=0)
    for key, val in model.state_dict().items():
        assert torch.equal(val, state[key]), key


def test_wrapped_and_prefixed_dicts_load(tiny_ckpt, tmp_path: Path) -> None:
    path, state = tiny_ckpt
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"epoch": 5, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    assert read_state_dict(wrapped).keys() == state.keys()
    load_clip("rs5m-tiny", checkpoint=wrapped)


def test_corrupt_checkpoint_fails_with_one_line(tiny_ckpt, tmp_path: Path) -> None:
    path, _ = tiny_ckpt
    broken = tmp_path / "broken.pt"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as err:
        load_clip("rs5m-tiny", checkpoint=broken)
    assert "\n" not in str(err.value) and str(broken) in str(err.value)


def test_non_state_dict_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "list.pt"
    torch.save([1, 2, 3], odd)
    with pytest.raises(CheckpointError, match="not a state_dict"):
        read_state_dict(odd)
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "absent.pt")


def test_key_mismatch_lists_missing_unexpected_and_shapes(tiny_ckpt, tmp_path: Path) -> None:
    _, state = tiny_ckpt
    bad = dict(state)
    del bad["ln_final.weight"]
    bad["extra.bias"] = torch.zeros(3)
    bad["text_projection"] = torch.zeros(5, 5)
    path = tmp_path / "mismatch.pt"
    torch.save(bad, path)
    with pytest.raises(CheckpointError) as err:
        load_clip("rs5m-tiny", checkpoint=path)
    msg = str(err.value)
    assert "1 missing keys: ln_final.weight" in msg
    assert "1 unexpected keys: extra.bias" in msg
    assert "text_projection (5, 5) vs model (64, 64)" in msg


def test_quick_gelu_rule_for_openai_initialised_checkpoints(tiny_ckpt) -> None:
    path, _ = tiny_ckpt
    gelu = load_clip("rs5m-tiny", checkpoint=path)[0].transformer.resblocks[0].mlp.gelu
    quick = load_clip("rs5m-tiny", checkpoint=path, quick_gelu=True)[0].transformer.resblocks[0].mlp.gelu
    assert type(gelu).__name__ == "GELU" and type(quick).__name__ == "QuickGELU"


@pytest.mark.slow
def test_georsclip_vit_b32_state_dict_roundtrip(tmp_path: Path) -> None:
    """A saved open_clip ViT-B-32 state_dict (the released format) loads strictly, with QuickGELU."""
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = tmp_path / "RS5M_ViT-B-32.pt"
    torch.save(model.state_dict(), path)
    loaded, preprocess, _ = load_clip("ViT-B/32", checkpoint=path)
    assert type(loaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert torch.equal(loaded.visual.conv1.weight, model.visual.conv1.weight)
    assert preprocess(Image.new("RGB", (256, 256))).shape == (3, 224, 224)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_clip("ViT-B-32", checkpoint=path)
