"""The final model of a run, in the released GeoRSCLIP format, plus a JSON describing how it was made.

``<output_dir>/final/``:

- ``model.pt``: a plain fp32 open_clip ``state_dict`` (an ``OrderedDict``, no wrapper, no ``module.``
  prefix; LoRA adapters merged), loadable with ``strict=True`` into ``open_clip.create_model(name)``;
  ``export_final`` checks exactly that before returning.
- ``model.json``: model name, whether it uses QuickGELU (not visible in the keys, so evaluation must be
  told), the dataset version, steps, trainable-parameter counts, the metrics summary, the whole
  resolved TrainConfig and the sha256 of ``model.pt``.
- ``adapter/`` (PEFT runs only): the unmerged adapter in peft's format, to apply on the same base.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rs5m.config.train import TrainConfig
from rs5m.core.io import atomic_path, write_json
from rs5m.ml.models import load_clip

MODEL_FILE = "model.pt"
JSON_FILE = "model.json"
ADAPTER_DIR = "adapter"


def final_dir(output_dir: str | os.PathLike[str]) -> Path:
    """Folder of the exported final model of a run."""
    return Path(output_dir) / "final"


def uses_quick_gelu(model: nn.Module) -> bool:
    """Whether an open_clip model's MLPs use QuickGELU (OpenAI-initialised weights do)."""
    return any(type(m).__name__ == "QuickGELU" for m in model.modules())


def plain_state_dict(model: nn.Module, peft_model: Any | None = None) -> OrderedDict[str, torch.Tensor]:
    """fp32 CPU copy of the model's open_clip state_dict, adapters merged when ``peft_model`` is given."""
    if peft_model is not None:
        from rs5m.ml.training.peft import merged_state_dict

        state = merged_state_dict(peft_model)
    else:
        state = model.state_dict()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, val in state.items():
        val = val.detach().to("cpu")
        out[key] = (val.float() if val.is_floating_point() else val).clone()
    return out


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            sha.update(chunk)
    return sha.hexdigest()


def verify_export(path: str | os.PathLike[str], model_name: str, quick_gelu: bool) -> None:
    """Load ``path`` strictly into a fresh open_clip ``model_name``; ``CheckpointError`` on any mismatch."""
    load_clip(model_name, checkpoint=path, quick_gelu=quick_gelu, init_seed=None)


def export_final(
    model: nn.Module,
    cfg: TrainConfig,
    info: dict[str, Any],
    peft_model: Any | None = None,
) -> dict[str, str]:
    """Write ``final/model.pt`` (+ ``adapter/`` for PEFT) and ``final/model.json``; return their paths.

    ``info`` (steps, data version, parameter counts, metrics summary, ...) goes into the JSON as is.
    """
    out = final_dir(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / MODEL_FILE
    with atomic_path(path) as tmp:
        torch.save(plain_state_dict(model, peft_model), tmp)
    quick = uses_quick_gelu(model)
    verify_export(path, cfg.model.name, quick)
    files = {"model": str(path), "json": str(out / JSON_FILE)}
    if peft_model is not None:
        from rs5m.ml.training.peft import save_adapter

        save_adapter(peft_model, out / ADAPTER_DIR)
        files["adapter"] = str(out / ADAPTER_DIR)
    doc = {
        "format": "open_clip state_dict (GeoRSCLIP release format, fp32, strict keys)",
        "model": {"name": cfg.model.name, "quick_gelu": quick, "image_norm": cfg.model.image_norm},
        "data_version": info.get("data_version"),
        "sha256": _sha256(path),
        "files": files,
        **info,
        "config": json.loads(cfg.model_dump_json()),
    }
    write_json(out / JSON_FILE, doc)
    return files


def read_export(output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model.json`` of a finished run; ``FileNotFoundError`` when the run has not exported yet."""
    path = final_dir(output_dir) / JSON_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no exported model in {final_dir(output_dir)}")
    return json.loads(path.read_text(encoding="utf-8"))
