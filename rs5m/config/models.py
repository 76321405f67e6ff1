"""Model constants every config validates against (no torch import): normalisation presets, precisions."""

from __future__ import annotations

# Normalisation presets of GeoRSCLIP's inference_tool (reference §9.2); "clip" is the eval default.
NORM_PRESETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "rs5m": ((0.406, 0.423, 0.390), (0.188, 0.175, 0.185)),
    "pub11": ((0.445, 0.469, 0.441), (0.208, 0.193, 0.213)),
    "rs3": ((0.350, 0.356, 0.316), (0.158, 0.147, 0.143)),
    "geometa": ((0.320, 0.322, 0.285), (0.179, 0.168, 0.166)),
}


PRECISIONS = ("fp32", "fp16", "bf16", "amp")
