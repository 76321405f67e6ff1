"""GPU check: steps/s of the BLIP-2 LoRA fine-tune for a random-init blip2-opt-2.7b-sized model.

Batch 16, bf16 (base in bf16, autocast, LoRA fp32), gradient checkpointing on, the paper's LoRA
(r 16 / alpha 16 / dropout 0.05 on the vision encoder's self_attn.qkv + self_attn.projection).
Random weights, random 224x224 pixels and 32-token captions: no downloads. Prints one JSON line.

    python bench/gpu/caption_ft.py [--steps 20] [--warmup 3] [--batch 16] [--no-ckpt]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def opt27b_config():
    """Blip2Config with blip2-opt-2.7b's shapes (ViT-g 39 layers, Q-Former 12, OPT-2.7B 32 layers)."""
    from transformers import Blip2Config

    return Blip2Config(
        vision_config=dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39,
                           num_attention_heads=16, image_size=224, patch_size=14, qkv_bias=True),
        qformer_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=3072, encoder_hidden_size=1408, vocab_size=30522),
        text_config=dict(model_type="opt", hidden_size=2560, ffn_dim=10240, num_hidden_layers=32,
                         num_attention_heads=32, vocab_size=50272, word_embed_proj_dim=2560,
                         bos_token_id=2, eos_token_id=2, pad_token_id=1),
        num_query_tokens=32, image_token_index=50265,
    )  # fmt: skip


def main() -> None:
    """Build, wrap with LoRA, time ``--steps`` optimiser steps after ``--warmup``."""
    from peft import LoraConfig, get_peft_model
    from transformers import Blip2ForConditionalGeneration

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-ckpt", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = opt27b_config()
    with torch.device("cuda"):
        model = Blip2ForConditionalGeneration(cfg).to(torch.bfloat16)
    if not a.no_ckpt:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=16, lora_alpha=16, lora_dropout=0.05, bias="none",
                      target_modules=["self_attn.qkv", "self_attn.projection"])  # fmt: skip
    model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)
    b, nq, nt = a.batch, cfg.num_query_tokens, 32
    ids = torch.randint(3, 50000, (b, nq + nt), device="cuda")
    ids[:, :nq] = cfg.image_token_index
    labels = ids.clone()
    labels[:, :nq] = -100
    batch = {"pixel_values": torch.randn(b, 3, 224, 224, device="cuda", dtype=torch.bfloat16),
             "input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}  # fmt: skip

    def step() -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(json.dumps({
        "bench": "caption_ft", "device": torch.cuda.get_device_name(), "batch": b, "steps": a.steps,
        "steps_per_s": round(a.steps / dt, 3), "images_per_s": round(a.steps * b / dt, 1),
        "grad_ckpt": not a.no_ckpt, "trainable_params": sum(p.numel() for p in params),
        "max_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "loss": round(loss, 4),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
