"""LoRA through peft: only adapter weights train; merged and unmerged exports load and agree."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch

from rs5m.config.train import PeftConfig
from rs5m.ml.models import load_clip
from rs5m.ml.training.checkpoint import list_checkpoints, load_checkpoint
from rs5m.ml.training.loop import train
from rs5m.ml.training.peft import apply_lora, load_adapter, lora_target_names, parameter_counts


def test_lora_targets_both_towers_attention_and_mlp() -> None:
    model, _, _ = load_clip("rs5m-tiny")
    names = lora_target_names(model, ["attn", "c_fc", "c_proj"])
    assert "visual.transformer.resblocks.0.attn" in names and "transformer.resblocks.1.mlp.c_proj" in names
    assert len(names) == 2 * 2 * 3  # two towers x two blocks x three targets
    assert not any(n.endswith("out_proj") for n in names)  # MHA never calls out_proj.forward


def test_lora_keeps_frozen_weights_exact_through_forward() -> None:
    model, _, tok = load_clip("rs5m-tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, PeftConfig(r=4))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)  # non-zero adapters: peft's MHA merge/unmerge would round otherwise
    model.train()
    model(torch.randn(2, 3, 224, 224), tok(["a", "b"]))
    after = {k.replace("base_layer.", ""): v for k, v in model.state_dict().items() if "lora_" not in k}
    assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_lora_trains_only_adapters_and_exports(make_cfg) -> None:
    cfg = make_cfg(max_steps=6, checkpoint_every=6, peft={"r": 4, "alpha": 8})
    result = train(cfg)
    counts = result.params
    assert 0 < counts["trainable"] < counts["total"] and counts["trainable_pct"] < 5
    init, _, _ = load_clip("rs5m-tiny", init_seed=0)
    init_state = init.state_dict()
    trained = load_checkpoint(list_checkpoints(cfg.output_dir)[-1])["model"]
    lora = {k: v for k, v in trained.items() if "lora_" in k}
    base = {k.replace("base_layer.", ""): v for k, v in trained.items() if "lora_" not in k}
    assert base.keys() == init_state.keys()
    assert all(torch.equal(init_state[k], base[k]) for k in base), "a frozen weight changed"
    assert any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k), "adapters did not train"
    doc = json.loads(Path(result.files["json"]).read_text())
    assert doc["params"] == counts and Path(result.files["adapter"], "adapter_config.json").is_file()
    # merged: a plain state_dict with strict keys, different from the frozen base
    merged, _, tok = load_clip("rs5m-tiny", checkpoint=result.files["model"])
    assert not torch.equal(merged.state_dict()["visual.transformer.resblocks.0.mlp.c_fc.weight"],
                           init_state["visual.transformer.resblocks.0.mlp.c_fc.weight"])  # fmt: skip
    # unmerged: the adapter on a fresh base gives the merged model's embeddings
    fresh = open_clip.create_model("rs5m-tiny")
    fresh.load_state_dict(init_state)
    adapted = load_adapter(fresh, result.files["adapter"]).eval()
    x, t = torch.randn(2, 3, 224, 224), tok(["a red field", "a blue field"])
    with torch.no_grad():
        assert torch.allclose(adapted.encode_image(x), merged.encode_image(x), atol=1e-5)
        assert torch.allclose(adapted.encode_text(t), merged.encode_text(t), atol=1e-5)


def test_parameter_counts_full_model() -> None:
    model, _, _ = load_clip("rs5m-tiny")
    counts = parameter_counts(model)
    assert counts["trainable"] == counts["total"] == sum(p.numel() for p in model.parameters())
