"""The RS detector's training job (flow ``train-rs-detector``): two labelled folders, an output folder and
the ``DetectorConfig``; loaded from YAML with the one path rule of ``rs5m.config.loader``."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field

from rs5m.config.loader import ConfigModel, PathStr, load_config
from rs5m.config.stages import DetectorConfig


class DetectorJob(ConfigModel):
    """One training job: two labelled folders, where the checkpoint goes, and the detector config."""

    name: str = "detector"
    pos_dir: PathStr = Field(description="folder of RS images (searched recursively)")
    neg_dir: PathStr = Field(description="folder of non-RS images (searched recursively)")
    out_dir: PathStr = Field(description="gets detector.pt, metrics.json, split.json")
    generate_positives: int = Field(default=0, ge=0, le=1_000_000, description="first write N generated RS")
    generate_negatives: int = Field(
        default=0, ge=0, le=1_000_000, description="first write N generated non-RS"
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)


def load_detector_job(path: str | os.PathLike[str], **overrides: Any) -> DetectorJob:
    """Load a DetectorJob YAML (paths relative to its folder, ``$VARS`` expanded); non-None ``overrides``
    (dotted keys, ``detector.device``; paths relative to the working directory) win."""
    return load_config(path, DetectorJob, overrides)
