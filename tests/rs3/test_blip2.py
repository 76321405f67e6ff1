"""BLIP-2 loading from a local directory (the hub-id code path) and with a LoRA adapter (peft)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from rs5m.config.rs3 import CaptionerConfig
from rs5m.ml.blip2 import load_blip2, tiny_blip2


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import Blip2Processor, BlipImageProcessor

    root = tmp_path_factory.mktemp("blip2")
    model, tokenizer = tiny_blip2(seed=3)
    processor = Blip2Processor(
        image_processor=BlipImageProcessor(size={"height": 224, "width": 224}),
        tokenizer=tokenizer,
        num_query_tokens=4,
    )
    processor.save_pretrained(root / "model")
    model.save_pretrained(root / "model")
    # The RS5M LoRA targets the vision encoder's attention (reference §7.4); random, non-zero B here.
    lora = LoraConfig(
        r=4, lora_alpha=4, target_modules=["self_attn.qkv", "self_attn.projection"], init_lora_weights=False
    )
    get_peft_model(tiny_blip2(seed=3)[0], lora).save_pretrained(root / "adapter")
    return root


def test_local_dir_and_adapter(saved):
    images = [Image.new("RGB", (64, 64), (200, 30, 30)), Image.new("RGB", (64, 64), (20, 90, 200))]
    base = load_blip2(CaptionerConfig(model=str(saved / "model"), n_samples=3, max_length=8), "cpu")
    assert base.dtype == torch.float32 and base.image_size == 224  # fp16 requested, CPU runs fp32
    plain = base.sample(images, seed=5)
    assert len(plain) == 2 and all(len(s) == 3 for s in plain)
    assert plain == load_blip2(base.cfg, "cpu").sample(images, seed=5)
    tuned = load_blip2(base.cfg.model_copy(update={"adapter": str(saved / "adapter")}), "cpu")
    assert type(tuned.model).__name__ == "Blip2ForConditionalGeneration"  # merged, no peft wrapper
    qkv = "vision_model.encoder.layers.0.self_attn.qkv.weight"
    assert not torch.equal(tuned.model.state_dict()[qkv], base.model.state_dict()[qkv])


def test_prompt_is_prepended(saved):
    cfg = CaptionerConfig(model=str(saved / "model"), n_samples=2, max_length=6, prompt="an aerial view of")
    out = load_blip2(cfg, "cpu").sample([Image.new("RGB", (32, 32))], seed=1)
    assert len(out[0]) == 2 and all(isinstance(t, str) for t in out[0])
