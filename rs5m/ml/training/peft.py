"""LoRA on both towers of an open_clip CLIP through the ``peft`` library; base weights frozen.

What peft can target in open_clip's ``ResidualAttentionBlock`` (checked with peft 0.21):

- ``attn`` is a ``torch.nn.MultiheadAttention``. Its q/k/v projection is the raw Parameter
  ``in_proj_weight`` (no module to wrap) and MHA never calls ``out_proj.forward``, so targeting
  ``out_proj`` alone would silently do nothing. peft's LoRA ``MultiheadAttention`` layer wraps the whole
  module instead: one adapter on ``in_proj`` (q, k and v together) and one on ``out_proj``, merged into
  the weights for each forward call and unmerged after it. We therefore target ``attn``, never
  ``attn.out_proj``. Its unmerge computes ``(w + d) - d``, which is not ``w`` in floating point, so
  the "frozen" base weights would drift by rounding at every forward; ``apply_lora`` hooks each such
  layer to put the exact original tensors back after the call.
- ``mlp.c_fc`` and ``mlp.c_proj`` are ``nn.Linear``: ordinary LoRA layers.
- ``visual.proj``, ``text_projection``, embeddings and LayerNorms are Parameters or not worth adapting;
  they stay frozen, as does ``logit_scale`` unless ``train_logit_scale``.

Export: ``merged_state_dict`` folds the adapters into a plain open_clip ``state_dict`` (the released
GeoRSCLIP format); ``save_adapter`` writes the unmerged adapter (``adapter_model.safetensors`` +
``adapter_config.json``) that ``load_adapter`` puts back on a fresh base model.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any

import torch
from torch import nn

from rs5m.config.train import PeftConfig

_BLOCK = re.compile(r"^(visual\.)?transformer\.resblocks\.\d+\.(attn|mlp\.c_fc|mlp\.c_proj)$")
_SUFFIX = {"attn": "attn", "c_fc": "mlp.c_fc", "c_proj": "mlp.c_proj"}


def lora_target_names(model: nn.Module, targets: list[str]) -> list[str]:
    """Full names of the modules to adapt in both towers (``attn``, ``mlp.c_fc``, ``mlp.c_proj``)."""
    wanted = tuple(_SUFFIX[t] for t in targets)
    names = [n for n, _ in model.named_modules() if _BLOCK.match(n) and n.endswith(wanted)]
    towers = {n.startswith("visual.") for n in names}
    if towers != {True, False}:
        raise ValueError("LoRA targets not found in both towers: not an open_clip CLIP with resblocks?")
    return names


def apply_lora(model: nn.Module, cfg: PeftConfig) -> Any:
    """Wrap ``model`` in a ``peft.PeftModel`` with LoRA adapters; only adapter weights stay trainable.

    The adapters are injected in place, so ``model`` itself keeps working (with LoRA) for forward
    passes; keep the returned PeftModel for merging and saving.
    """
    from peft import LoraConfig, get_peft_model

    names = lora_target_names(model, cfg.targets)
    lora = LoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=names, bias="none"
    )
    peft_model = get_peft_model(model, lora)
    for module in model.modules():
        if type(module).__name__ == "MultiheadAttention" and hasattr(module, "lora_A"):
            module.register_forward_pre_hook(_keep_base_weights)
            module.register_forward_hook(_restore_base_weights)
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name or (cfg.train_logit_scale and name == "logit_scale")
    return peft_model


def _base_weights(layer: Any) -> tuple[Any, Any]:
    base = layer.get_base_layer()
    return base, base.out_proj.get_base_layer()


def _keep_base_weights(layer: Any, args: Any) -> None:
    if layer.merged or layer.disable_adapters:
        layer._rs5m_base = None
        return
    mha, out_proj = _base_weights(layer)
    layer._rs5m_base = (mha.in_proj_weight.data, out_proj.weight.data)


def _restore_base_weights(layer: Any, args: Any, output: Any) -> None:
    saved = getattr(layer, "_rs5m_base", None)
    if saved is not None:
        mha, out_proj = _base_weights(layer)
        mha.in_proj_weight.data, out_proj.weight.data = saved
        layer._rs5m_base = None


def parameter_counts(model: nn.Module) -> dict[str, Any]:
    """``{"trainable", "total", "trainable_pct"}`` over unique parameters of ``model``."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return {"trainable": trainable, "total": total, "trainable_pct": round(100.0 * trainable / total, 4)}


def merged_state_dict(peft_model: Any) -> dict[str, torch.Tensor]:
    """A plain open_clip ``state_dict`` with the adapters folded in; ``peft_model`` is left unchanged."""
    merged = copy.deepcopy(peft_model).merge_and_unload()
    return {k: v.detach().clone() for k, v in merged.state_dict().items()}


def save_adapter(peft_model: Any, folder: str | os.PathLike[str]) -> None:
    """Write the unmerged adapter weights and config (peft's own format) into ``folder``."""
    peft_model.save_pretrained(str(folder))


def load_adapter(model: nn.Module, folder: str | os.PathLike[str], merge: bool = False) -> nn.Module:
    """Put a saved adapter on a fresh base ``model``; with ``merge`` return the merged plain model."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(folder))
    return peft_model.merge_and_unload() if merge else peft_model
