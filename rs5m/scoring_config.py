"""The outlier scoring stage's config and RS5M's 33 prompts, importable without torch (``rs5m.config``
composes it; the stage itself lives in ``rs5m.scoring``)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RS_NOUNS = ("remote sensing image", "aerial image", "satellite image")
RS_ADJECTIVES = (
    "low resolution", "bad", "cropped", "bright", "dark",
    "close-up", "black and white", "jpeg corrupted", "blurry", "good",
)  # fmt: skip


def rs_prompts() -> list[str]:
    """RS5M's 33 prompts: per noun, ``a(n) <noun>.`` then ``a <adjective> <noun>.`` for the 10 adjectives."""
    out = []
    for noun in RS_NOUNS:
        out.append(f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}.")
        out += [f"a {adj} {noun}." for adj in RS_ADJECTIVES]
    return out


class ScoringConfig(BaseModel):
    """The scoring model and how it runs. Default: CLIP-ConvNeXt-XXL as in RS5M (tag: our choice)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = "convnext_xxlarge"
    pretrained: str | None = "laion2b_s34b_b82k_augreg_soup"
    checkpoint: str | None = None
    prompts: list[str] = Field(default_factory=rs_prompts, min_length=1)
    batch_size: int = Field(default=256, ge=1, le=65536)
    precision: Literal["fp32", "bf16", "fp16"] = Field(default="bf16", description="autocast on CUDA")
    cpu_precision: Literal["fp32", "bf16"] = Field(default="fp32", description="autocast on the CPU")
    device: str = "auto"
    num_workers: int = Field(default=4, ge=0, le=256, description="decode processes per scoring task")
    draft: bool = Field(default=True, description="fast DCT-scaled JPEG decode (~1 grey level off)")
    embedding_dtype: Literal["float16", "float32"] = "float16"
    dask_gpu: Literal["auto", "always", "never"] = Field(
        default="auto", description="ask Dask for GPU=1: when a worker has it / always / never"
    )

    def fingerprint(self) -> str:
        """Hash of what decides the loaded model and text feature (not batch or loader settings)."""
        keys = ("model_name", "pretrained", "checkpoint", "prompts", "device", "precision", "cpu_precision")
        return hashlib.sha256(
            json.dumps(self.model_dump(include=set(keys)), sort_keys=True).encode()
        ).hexdigest()
