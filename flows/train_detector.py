"""Flow ``train-rs-detector``: train the RS / non-RS classifier whose P(RS) is the outlier score c_rs.

RS5M trained it on 2.5 k MillionAID + 2.5 k LAION aerial images (RS) vs 5 k ImageNet images, split
7:1:2. The sample job (``deployments/detector-sample.yaml``) uses real WHU-RS19 images as RS and
generated "ordinary" pictures as non-RS, with a tiny random-init backbone: it exercises the code
path only; its accuracies and the P(RS) it later gives mean nothing. Flat, typed parameters; paths given
as parameters are relative to the working directory, paths in the job file to its folder.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from pydantic import Field

from rs5m.config.detector import DetectorJob, load_detector_job
from rs5m.ml.detector_train import write_generated_images
from tasks.scoring import publish_detector_metrics, train_rs_detector

Name = Annotated[str, Field(min_length=1, max_length=4096)]  # a name or a path


@task(name="generate-images", task_run_name="generate-{look}")
def generate_images(out_dir: str, n: int, look: Literal["aerial", "ordinary"], seed: int) -> int:
    """Write ``n`` generated images of the sample world's ``look`` (kept when already there)."""
    return write_generated_images(out_dir, n, look, seed)


@flow(name="train-rs-detector")
def train_rs_detector_flow(
    config: Name = "deployments/detector-sample.yaml",
    pos_dir: Name | None = None,
    neg_dir: Name | None = None,
    out_dir: Name | None = None,
    device: Name | None = None,
) -> dict[str, Any]:
    """Train the RS detector, save its checkpoint and publish val/test accuracy; return the metrics.

    Args:
        config: DetectorJob YAML; its relative paths resolve against its own folder ($VARS expanded)
        pos_dir: folder of RS images (searched recursively)
        neg_dir: folder of non-RS images
        out_dir: output folder (detector.pt, metrics.json, split.json)
        device: torch device (auto, cpu, cuda)
    """
    over = {"pos_dir": pos_dir, "neg_dir": neg_dir, "out_dir": out_dir, "detector.device": device}
    return run_detector_job(load_detector_job(config, **over))


def run_detector_job(job: DetectorJob) -> dict[str, Any]:
    """Generate the requested images, train, publish (inside a flow run); return the metrics."""
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
