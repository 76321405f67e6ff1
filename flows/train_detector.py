"""Flow ``train-rs-detector``: train the RS / non-RS classifier whose P(RS) is the outlier score c_rs.

RS5M trained it on 2.5 k MillionAID + 2.5 k LAION aerial images (RS) vs 5 k ImageNet images, split
7:1:2. The sample job (``deployments/detector-sample.yaml``) uses real WHU-RS19 images as RS and
generated "ordinary" pictures as non-RS, with a tiny random-init backbone: it exercises the code
path only; its accuracies and the P(RS) it later gives mean nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from prefect import flow, get_run_logger, task
from pydantic import BaseModel, ConfigDict, Field

from rs5m.config import DetectorConfig
from rs5m.ml.detector_train import write_generated_images
from tasks.scoring import publish_detector_metrics, train_rs_detector


class DetectorJob(BaseModel):
    """One training job: two labelled folders, where the checkpoint goes, and the detector config."""

    model_config = ConfigDict(extra="forbid")

    name: str = "detector"
    pos_dir: str = Field(description="folder of RS images (searched recursively)")
    neg_dir: str = Field(description="folder of non-RS images (searched recursively)")
    out_dir: str = Field(description="gets detector.pt, metrics.json, split.json")
    generate_positives: int = Field(default=0, ge=0, le=1_000_000, description="first write N generated RS")
    generate_negatives: int = Field(
        default=0, ge=0, le=1_000_000, description="first write N generated non-RS"
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)


class TrainDetectorParams(BaseModel):
    """Parameters of ``train-rs-detector``: a job YAML (or inline job) plus path overrides."""

    config: str | None = Field(default="deployments/detector-sample.yaml", description="DetectorJob YAML")
    inline: DetectorJob | None = Field(default=None, description="a full job instead of the file")
    pos_dir: str | None = Field(default=None, description="override: RS image folder")
    neg_dir: str | None = Field(default=None, description="override: non-RS image folder")
    out_dir: str | None = Field(default=None, description="override: output folder")
    device: str | None = Field(default=None, description="override: torch device (auto, cpu, cuda)")

    def resolve(self) -> DetectorJob:
        """The job to run; paths in the YAML resolve against its folder (``$VARS`` expanded)."""
        if self.inline is not None:
            data = self.inline.model_dump()
        elif self.config is not None:
            path = Path(self.config)
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            base = path.resolve().parent
            for key in ("pos_dir", "neg_dir", "out_dir"):
                if key in data:
                    data[key] = os.path.normpath(base / os.path.expandvars(data[key]))
        else:
            raise ValueError("give config (a YAML path) or inline (a DetectorJob)")
        data.update({k: v for k in ("pos_dir", "neg_dir", "out_dir") if (v := getattr(self, k)) is not None})
        if self.device is not None:
            data.setdefault("detector", {})["device"] = self.device
        return DetectorJob.model_validate(data)


@task(name="generate-images", task_run_name="generate-{look}")
def generate_images(out_dir: str, n: int, look: Literal["aerial", "ordinary"], seed: int) -> int:
    """Write ``n`` generated images of the sample world's ``look`` (kept when already there)."""
    return write_generated_images(out_dir, n, look, seed)


@flow(name="train-rs-detector")
def train_rs_detector_flow(params: TrainDetectorParams | None = None) -> dict[str, Any]:
    """Train the RS detector, save its checkpoint and publish val/test accuracy; return the metrics."""
    job = (params or TrainDetectorParams()).resolve()
    logger = get_run_logger()
    if job.generate_positives:
        generate_images(job.pos_dir, job.generate_positives, "aerial", job.detector.seed)
    if job.generate_negatives:
        generate_images(job.neg_dir, job.generate_negatives, "ordinary", job.detector.seed)
    metrics = train_rs_detector(job.pos_dir, job.neg_dir, job.out_dir, job.detector)
    publish_detector_metrics(metrics, job.name)
    logger.info(
        "val accuracy %.4f, test accuracy %.4f; checkpoint %s",
        metrics["val_accuracy"], metrics["test_accuracy"], metrics["checkpoint"],
    )  # fmt: skip
    if job.detector.pretrained is None and job.detector.checkpoint is None:
        logger.warning("random-init backbone: these accuracies and its P(RS) scores are not meaningful")
    return metrics


if __name__ == "__main__":
    train_rs_detector_flow()
