"""The resumable BLIP-2 LoRA fine-tune (transformers + peft).

Contract of ``finetune(cfg)``:
- builds the base model (hub id / local dir / ``tiny-random-blip2``), wraps it with peft LoRA on
  ``cfg.lora.target_modules`` (only LoRA weights train; every base weight stays frozen and unchanged);
  on CUDA with ``precision="bf16"`` the base is held in bf16 and the forward runs under bf16 autocast
  (LoRA weights stay fp32); on CPU everything is fp32;
- optimiser steps = ``min(max_steps, epochs * ceil(ceil(pairs / batch) / grad_accum))``; epoch ``e``
  visits the pairs in a permutation seeded by ``seed + e``; AdamW, transformers scheduler;
- every ``checkpoint_every`` steps (and at the end) writes ``checkpoints/step-XXXXXXXX.pt`` (LoRA
  weights, optimiser, scheduler, RNG states, loss history), keeping the newest ``keep_checkpoints``.
  With ``resume`` a run continues from the newest one when its training settings and data fingerprint
  match (else ``ValueError``), and reaches the same weights as an uninterrupted run on the same device;
- writes ``adapter/`` (peft ``save_pretrained``) and ``finetune.json`` (config, data fingerprint,
  adapter sha256, losses, versions) and returns that record.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rs5m.config.captioner import FinetuneConfig
from rs5m.config.rs3 import TINY_BLIP2
from rs5m.ml.blip2 import resolve_device, tiny_blip2
from rs5m.ml.captioner_ft.adapter import adapter_fingerprint
from rs5m.ml.captioner_ft.data import (
    CaptionData,
    Collator,
    PairDataset,
    data_fingerprint,
    read_split,
    write_fixture,
)

RECORD = "finetune.json"
# settings that must match for a checkpoint to be resumed (out_dir, eval, workers may change)
_RESUME_KEYS = ("model", "revision", "lora", "lr", "weight_decay", "epochs", "max_steps", "batch_size")
_RESUME_KEYS += ("grad_accum", "scheduler", "warmup_steps", "max_grad_norm", "text_max_tokens", "seed")


def load_base(model: str, revision: str | None, dtype: torch.dtype) -> tuple[torch.nn.Module, Any, int]:
    """(Blip2ForConditionalGeneration, tokenizer, image size) for a hub id, local dir or the tiny name."""
    if model == TINY_BLIP2:
        net, tokenizer = tiny_blip2()
        return net, tokenizer, int(net.config.vision_config.image_size)
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    processor = Blip2Processor.from_pretrained(model, revision=revision)
    net = Blip2ForConditionalGeneration.from_pretrained(model, revision=revision, dtype=dtype)
    return net, processor.tokenizer, int(processor.image_processor.size["height"])


def image_token_id(config: Any) -> int:
    """The id BLIP-2 replaces with query embeddings (``image_token_id`` or older ``image_token_index``)."""
    value = getattr(config, "image_token_id", None)
    value = getattr(config, "image_token_index", None) if value is None else value
    if value is None:
        raise ValueError("this BLIP-2 config has no image token id (transformers >= 4.47 checkpoints do)")
    return int(value)


def add_lora(model: torch.nn.Module, cfg: FinetuneConfig) -> torch.nn.Module:
    """Wrap ``model`` with peft LoRA per ``cfg.lora``; raises ``ValueError`` when no module matches."""
    from peft import LoraConfig, get_peft_model

    names = [n for n, _ in model.named_modules()]
    for target in cfg.lora.target_modules:
        if not any(n == target or n.endswith("." + target) for n in names):
            raise ValueError(f"LoRA target {target!r} matches no module of {cfg.model}")
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        bias=cfg.lora.bias,
        target_modules=list(cfg.lora.target_modules),
    )
    return get_peft_model(model, lora)


def _resume_key(cfg: FinetuneConfig) -> dict[str, Any]:
    return cfg.model_dump(include=set(_RESUME_KEYS))


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step-*.pt"))


def _save_checkpoint(out: Path, state: dict[str, Any], keep: int) -> Path:
    path = out / "checkpoints" / f"step-{state['step']:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    for old in _checkpoints(out)[:-keep]:
        old.unlink()
    return path


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_data(cfg: FinetuneConfig) -> FinetuneConfig:
    """``cfg`` with the fixture written, its splits filled in where ``train``/``test`` are unset, and
    ``fixture`` cleared (so a second call writes nothing; the data fingerprint identifies the data)."""
    if cfg.fixture is None:
        return cfg
    train, test = write_fixture(cfg.fixture)
    return cfg.model_copy(update={"train": cfg.train or train, "test": cfg.test or test, "fixture": None})


def _versions() -> dict[str, str]:
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def finetune(cfg: FinetuneConfig, log: Any = None) -> dict[str, Any]:
    """Run (or resume) the fine-tune; return the ``finetune.json`` record (module contract)."""
    say = log or (lambda msg: None)
    cfg = resolve_data(cfg)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device)
    bf16 = cfg.precision == "bf16" and device.startswith("cuda")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data: CaptionData = read_split(cfg.train)  # type: ignore[arg-type]
    fingerprint = data_fingerprint(data)

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    base, tokenizer, size = load_base(cfg.model, cfg.revision, torch.bfloat16 if bf16 else torch.float32)
    if cfg.gradient_checkpointing:
        if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.x
            base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = add_lora(base, cfg).to(device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    collate = Collator(
        tokenizer, base.config.num_query_tokens, image_token_id(base.config), cfg.text_max_tokens
    )
    dataset = PairDataset(data, size)

    from transformers import get_scheduler

    n_batches = math.ceil(len(dataset) / cfg.batch_size)
    per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_scheduler(cfg.scheduler, opt, num_warmup_steps=cfg.warmup_steps, num_training_steps=total)
    step, losses, resumed_from = 0, [], None
    ckpts = _checkpoints(out) if cfg.resume else []
    if ckpts:
        from peft import set_peft_model_state_dict

        state = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
        if state["resume_key"] != _resume_key(cfg) or state["data_fingerprint"] != fingerprint:
            raise ValueError(
                f"{ckpts[-1]} was made with other settings or data; use a new out_dir or resume=false"
            )
        set_peft_model_state_dict(model, state["lora"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, losses, resumed_from = state["step"], state["losses"], str(ckpts[-1])
        _set_rng_state(state["rng"])
        say(f"resumed from {ckpts[-1]} at step {step}")

    def checkpoint() -> None:
        from peft import get_peft_model_state_dict

        _save_checkpoint(out, {
            "step": step, "losses": losses, "lora": get_peft_model_state_dict(model),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": _rng_state(),
            "resume_key": _resume_key(cfg), "data_fingerprint": fingerprint,
        }, cfg.keep_checkpoints)  # fmt: skip

    t0 = time.perf_counter()
    start_step = step
    while step < total:
        epoch, inner = divmod(step, per_epoch)
        perm = torch.randperm(
            len(dataset), generator=torch.Generator().manual_seed(cfg.seed + epoch)
        ).tolist()
        batches = [perm[i : i + cfg.batch_size] for i in range(0, len(perm), cfg.batch_size)]
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches[inner * cfg.grad_accum :], collate_fn=collate,
            num_workers=cfg.num_workers, persistent_workers=False,
        )  # fmt: skip
        acc, acc_loss = 0, 0.0
        group = min(cfg.grad_accum, n_batches - inner * cfg.grad_accum)
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            if bf16:
                batch["pixel_values"] = batch["pixel_values"].to(torch.bfloat16)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss / group
            loss.backward()
            acc, acc_loss = acc + 1, acc_loss + float(loss.detach())
            if acc < group:
                continue
            if cfg.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            losses.append(round(acc_loss, 6))
            acc, acc_loss = 0, 0.0
            done_batches = (step - epoch * per_epoch) * cfg.grad_accum
            group = min(cfg.grad_accum, n_batches - done_batches)
            if step % cfg.checkpoint_every == 0 or step == total:
                checkpoint()
            if step % max(1, total // 10) == 0:
                say(f"step {step}/{total} loss {losses[-1]:.4f}")
            if step >= total:
                break
    wall = time.perf_counter() - t0

    adapter_dir = out / "adapter"
    model.save_pretrained(adapter_dir)
    record = {
        "config": cfg.model_dump(mode="json"),
        "data": {"train_fingerprint": fingerprint, "pairs": len(data.pairs), "images": len(data.images)},
        "adapter": {"path": str(adapter_dir), "sha256": adapter_fingerprint(adapter_dir)},
        "steps": step,
        "steps_this_run": step - start_step,
        "resumed_from": resumed_from,
        "losses": losses,
        "trainable_params": sum(p.numel() for p in trainable),
        "device": device,
        "precision": "bf16" if bf16 else "fp32",
        "wall_s": round(wall, 3),
        "steps_per_s": round((step - start_step) / wall, 4) if wall > 0 and step > start_step else None,
        "versions": _versions(),
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
