"""open_clip model loading shared by evaluation (and later stages): model, eval preprocess, tokenizer.

GeoRSCLIP checkpoints are plain fp32 open_clip ``state_dict`` files (reference §10); they load with
strict key checking and fail with a one-line :class:`CheckpointError` naming missing, unexpected and
mis-shaped keys. Cheap unwrapping is also accepted: ``{"state_dict": ...}`` / ``{"model": ...}``
wrappers, a ``module.`` (DataParallel) prefix, and ITRA key names (``image_backbone.`` ->
``visual.``, ``text_backbone.`` stripped), i.e. what the RS5M authors' ``convert_weight.py`` undid.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision import transforms

from rs5m.config.models import NORM_PRESETS, PRECISIONS

# GeoRSCLIP models fine-tuned from OpenAI weights keep OpenAI's QuickGELU (ViT-H-14 came from LAION: GELU).
OPENAI_INIT_MODELS = frozenset({"ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336"})
TINY_MODEL_NAME = "rs5m-tiny"
TINY_MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model; the message is one line."""


def canonical_model_name(name: str) -> str:
    """open_clip spelling of a model name: ``ViT-B/32`` -> ``ViT-B-32`` (as open_clip itself maps)."""
    return name.replace("/", "-")


def _to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def eval_preprocess(image_size: int = 224, norm: str = "clip") -> Callable[[Image.Image], torch.Tensor]:
    """GeoRSCLIP eval transform (§10): Resize(size, bicubic) -> CenterCrop -> RGB -> ToTensor -> Normalize."""
    if norm not in NORM_PRESETS:
        raise ValueError(f"unknown normalisation {norm!r}; expected one of {sorted(NORM_PRESETS)}")
    mean, std = NORM_PRESETS[norm]
    return transforms.Compose(
        [
            transforms.Resize(image_size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(image_size),
            _to_rgb,
            transforms.ToTensor(),
            transforms.Normalize(mean=mean, std=std),
        ]
    )


def register_tiny_model(name: str = TINY_MODEL_NAME) -> str:
    """Register a ~3.4 M-parameter open_clip config (vocab 49408, so the shipped BPE tokenizer works).

    Idempotent; returns ``name``. For tests and demos only: it has no pretrained weights. open_clip reads
    configs from files; the file is gone again when this returns (open_clip keeps what it read, and a
    later rescan skips a missing path), so no process leaves a folder in the temp directory.
    """
    import open_clip

    if name not in open_clip.list_models():
        with tempfile.TemporaryDirectory(prefix="rs5m-model-config-") as folder:
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(TINY_MODEL_CONFIG), encoding="utf-8")
            open_clip.add_model_config(path)
    return name


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: not a state_dict (got {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: not a state_dict ({len(bad)} non-tensor entries, e.g. {bad[0]!r})")
    out: dict[str, torch.Tensor] = {}
    for key, val in obj.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        if key.startswith("image_backbone."):
            key = "visual." + key[len("image_backbone.") :]
        elif key.startswith("text_backbone."):
            key = key[len("text_backbone.") :]
        out[key] = val
    return out


def unreadable_checkpoint(path: Path, exc: BaseException) -> CheckpointError:
    """One line saying what ``path`` is instead of a checkpoint, for ``torch.load``'s error ``exc``.

    torch's own words are left out where they mislead: for a text file or random bytes it raises
    ``IndexError`` or advises ``weights_only=False`` (unsafe, and no help for a file that is not a pickle).
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        head = b""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    detail = f"; it uses {found.group(1)[:120]}" if found else ""
    if not head:
        what = "is empty"
    elif found:
        what = "holds more than tensors (only a plain state_dict loads safely)"
    elif head[:4] == b"PK\x03\x04" or zipfile.is_zipfile(path):
        what = "is a zip archive (PyTorch's format) but cut short or damaged"
    elif all(32 <= b < 127 or b in b"\t\r\n" for b in head[:512]):
        what = "is a text file, not a PyTorch checkpoint"
    else:
        what = "is not a PyTorch checkpoint (damaged, or another format)"
    return CheckpointError(f"{path}: cannot read checkpoint: the file {what} ({type(exc).__name__}{detail})")


def read_state_dict(path: str | os.PathLike[str], mmap: bool = False) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely (``weights_only``) and return its tensor dict; ``mmap`` maps the
    tensors of a zip-format file instead of reading them (a check of a 4 GB file in a second).

    Raises ``FileNotFoundError`` when absent and :class:`CheckpointError` (one line: what the file is)
    when it is not a readable checkpoint or not a state_dict.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}" + (" (a folder)" if p.is_dir() else ""))
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(p))
    except Exception as exc:  # torch raises many types for truncated/garbled files, IndexError among them
        raise unreadable_checkpoint(p, exc) from exc
    return _unwrap(obj, str(p))


def _preview(keys: list[str], n: int = 5) -> str:
    more = f", ... (+{len(keys) - n})" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_state_dict_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; keys and shapes must match exactly, else :class:`CheckpointError`."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if own[k].shape != state[k].shape
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_preview(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {_preview(shapes, 3)}")
    if problems:
        raise CheckpointError(f"{source} does not match the model: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def _use_quick_gelu(
    name: str, pretrained: str | None, checkpoint: str | None, quick_gelu: bool | None
) -> bool:
    if quick_gelu is not None:
        return quick_gelu
    # open_clip already switches to QuickGELU for pretrained="openai"; a bare checkpoint needs the hint.
    return checkpoint is not None and pretrained is None and name in OPENAI_INIT_MODELS


def _known_model(model_name: str) -> str:
    """open_clip's name for ``model_name`` (the tiny test model registered on demand); ``ValueError``
    when open_clip does not know it."""
    import open_clip

    name = canonical_model_name(model_name)
    if name == TINY_MODEL_NAME:
        register_tiny_model(name)
    if name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {model_name!r} (see open_clip.list_models())")
    return name


def check_model(model_name: str, checkpoint: str | os.PathLike[str] | None = None) -> None:
    """Raise at once the one-line error :func:`load_clip` would raise later for an unknown model name or
    a checkpoint that is missing or not a readable state_dict, without building the model (a pre-flight
    before datasets load). Whether the checkpoint's keys fit the model is left to ``load_clip``."""
    _known_model(model_name)
    if checkpoint is not None:
        read_state_dict(checkpoint, mmap=True)


def load_clip(
    model_name: str,
    pretrained: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    quick_gelu: bool | None = None,
    image_norm: str = "clip",
    init_seed: int | None = 0,
) -> tuple[torch.nn.Module, Callable[[Image.Image], torch.Tensor], Callable[..., torch.Tensor]]:
    """Build an open_clip model in eval mode, then its §10 eval preprocess and tokenizer.

    ``pretrained`` is an open_clip tag (or file) loaded by open_clip; ``checkpoint`` is a local state_dict
    loaded strictly afterwards. ``quick_gelu=None`` picks QuickGELU for checkpoints of OpenAI-initialised
    GeoRSCLIP architectures. ``precision`` "amp" keeps fp32 weights (callers autocast). With no weights at
    all the model is random, seeded with ``init_seed``. Unknown names raise ``ValueError``.
    """
    import open_clip

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    name = _known_model(model_name)
    ckpt = str(checkpoint) if checkpoint is not None else None
    state = read_state_dict(ckpt) if ckpt is not None else None
    if pretrained is None and init_seed is not None:
        torch.manual_seed(init_seed)
    try:
        model = open_clip.create_model(
            name,
            pretrained=pretrained,
            precision="fp32" if precision == "amp" else precision,
            device="cpu",
            force_quick_gelu=_use_quick_gelu(name, pretrained, ckpt, quick_gelu),
        )
    except Exception as exc:
        if pretrained is None or not Path(pretrained).is_file():
            raise
        try:  # a local weights file open_clip could not load: say what the file is
            read_state_dict(pretrained)
        except CheckpointError as bad:
            raise bad from exc
        said = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{pretrained}: open_clip cannot load it as {name} weights ({said})") from exc
    if state is not None:
        load_state_dict_strict(model, state, ckpt or "checkpoint")
    model = model.to(device).eval()
    size = model.visual.image_size
    preprocess = eval_preprocess(size[0] if isinstance(size, tuple | list) else int(size), image_norm)
    return model, preprocess, open_clip.get_tokenizer(name)
