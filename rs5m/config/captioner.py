"""Configuration of the BLIP-2 LoRA fine-tune (pydantic); defaults = the paper preset (reference §7.4).

Paper preset: base ``Salesforce/blip2-opt-6.7b``; peft LoRA ``r=16, lora_alpha=16, lora_dropout=0.05,
bias="none"`` on ``self_attn.qkv`` and ``self_attn.projection`` (the ViT vision encoder's attention
only); AdamW lr 5e-5, weight decay 0.01, 30 epochs (lr/wd/epochs read off the released checkpoint's
directory name: [inferred]). The schedule and batch size were not published: linear decay (the HF
Trainer default) and batch 16 are choices of this project. Sampling for the evaluation is the RS3
captioner's (``rs5m.config.rs3.CaptionerConfig``: nucleus, top-p 0.95, top-k 50, max length 50).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, model_validator

from rs5m.config.loader import ConfigModel, PathStr, load_config
from rs5m.config.rs3 import ModelRef

PAPER_TARGETS = ["self_attn.qkv", "self_attn.projection"]


class CaptionSplit(ConfigModel):
    """One split in the RSITMD/RSICD layouts.

    ``format="txt"``: line-aligned ``captions`` / ``filenames`` files (AMFMN release); when the captions
    file has k times as many lines as the filenames file (RSITMD/RSICD *train*: one name per image, k=5
    captions each), caption i belongs to image i // k. ``format="csv"``: ``csv`` with ``filename,title``
    columns. Images are ``images/<filename>``.
    """

    format: Literal["txt", "csv"] = "txt"
    captions: PathStr | None = None
    filenames: PathStr | None = None
    csv: PathStr | None = None
    images: PathStr
    encoding: str | None = Field(default=None, description="None = utf-8 (RSICD csv: gb18030)")
    limit_images: int | None = Field(default=None, ge=1, description="first N images only (smoke runs)")

    @model_validator(mode="after")
    def _files(self) -> CaptionSplit:
        if self.format == "txt" and not (self.captions and self.filenames):
            raise ValueError("format txt needs captions and filenames")
        if self.format == "csv" and not self.csv:
            raise ValueError("format csv needs csv")
        return self


class FixtureSpec(ConfigModel):
    """Generate an RSITMD-layout dataset first (sample runs and tests); ``real_captions`` = RSITMD folder."""

    out: PathStr
    n_train: int = Field(default=12, ge=1, le=100_000)
    n_test: int = Field(default=4, ge=1, le=100_000)
    image_size: int = Field(default=64, ge=8, le=2048)
    real_captions: PathStr | None = Field(default=None, description="folder with train/test_caps.txt etc.")
    seed: int = 0


class LoraSpec(ConfigModel):
    """peft ``LoraConfig`` fields (paper values)."""

    r: int = Field(default=16, ge=1, le=1024)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    bias: Literal["none", "all", "lora_only"] = "none"
    target_modules: list[str] = Field(default_factory=lambda: list(PAPER_TARGETS))


class EvalSpec(ConfigModel):
    """Test-split evaluation: RS3 sampling settings, one caption per image (the paper's METEOR protocol)."""

    enabled: bool = True
    vanilla: bool = Field(default=True, description="also score the base model without the adapter")
    n_samples: int = Field(default=1, ge=1, le=64, description="captions per image; the first is scored")
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=50, ge=0)
    max_length: int = Field(default=50, ge=2, le=512)
    prompt: str | None = None
    batch_size: int = Field(default=8, ge=1, le=1024)
    seed: int = 2023
    meteor: Literal["auto", "require", "skip"] = Field(
        default="auto", description="auto: skip METEOR with a message when java is missing"
    )


class FinetuneConfig(ConfigModel):
    """Everything ``finetune-captioner`` needs (paths may be relative to the YAML's folder)."""

    model: ModelRef = Field(default="Salesforce/blip2-opt-6.7b", description="hub id, local dir or tiny name")
    revision: str | None = None
    train: CaptionSplit | None = None
    test: CaptionSplit | None = None
    fixture: FixtureSpec | None = None
    out_dir: PathStr = "data/captioner-ft/run"
    lora: LoraSpec = Field(default_factory=LoraSpec)
    lr: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    epochs: int = Field(default=30, ge=1, le=10_000)
    max_steps: int | None = Field(default=None, ge=1, description="stop after N optimiser steps")
    batch_size: int = Field(default=16, ge=1, le=4096)
    grad_accum: int = Field(default=1, ge=1, le=1024)
    scheduler: Literal["constant", "linear", "cosine"] = "linear"
    warmup_steps: int = Field(default=0, ge=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    text_max_tokens: int = Field(default=48, ge=4, le=512, description="caption tokens incl. BOS/EOS")
    precision: Literal["bf16", "fp32"] = Field(default="bf16", description="bf16 autocast (GPU only)")
    gradient_checkpointing: bool = True
    checkpoint_every: int = Field(default=200, ge=1, description="optimiser steps between checkpoints")
    keep_checkpoints: int = Field(default=2, ge=1)
    resume: bool = Field(default=True, description="continue from the newest checkpoint in out_dir")
    seed: int = 2023
    device: str = Field(default="auto", description="auto = cuda when available, else cpu")
    num_workers: int = Field(default=2, ge=0, le=64)
    torch_threads: int | None = Field(default=None, ge=1, le=256)
    eval: EvalSpec = Field(default_factory=EvalSpec)

    @model_validator(mode="after")
    def _data(self) -> FinetuneConfig:
        if self.train is None and self.fixture is None:
            raise ValueError("give train (a caption split) or fixture (generate one)")
        return self


def paper_preset(**overrides: Any) -> FinetuneConfig:
    """The paper's settings (reference §7.4) with ``overrides`` applied on top (needs data)."""
    return FinetuneConfig.model_validate(overrides)


def load_finetune_config(path: str | os.PathLike[str], **overrides: Any) -> FinetuneConfig:
    """Load a YAML (top-level keys, or nested under ``finetune:``) with the path rule of
    ``rs5m.config.loader`` (relative to the YAML's folder, ``$VARS`` expanded); non-None ``overrides`` win
    (dotted keys reach nested fields, ``eval.enabled``; override paths are relative to the working
    directory). Raises ``FileNotFoundError`` or ``ValueError`` with a one-line message.
    """
    return load_config(path, FinetuneConfig, overrides, section="finetune")
