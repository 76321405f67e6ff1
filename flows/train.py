"""Flow ``train-georsclip``: fine-tune on one dataset version, publish curves, then evaluate the model.

Runs on the ``gpu`` work pool. The dataset version comes in as a parameter (the build flow hands over
the version it finished): with no explicit ``shards`` the flow reads that version's open_clip-layout
shards under ``data_root``. Training resumes from the run folder's latest checkpoint, so a crashed
or cancelled flow run that is started again continues where it stopped. At the end the evaluation flow
(``evaluate-georsclip``) scores the exported model and publishes its table next to ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from flows.evaluate import EvaluateParams, evaluate_georsclip
from rs5m.config.train import TrainConfig, load_train_config
from rs5m.core.layout import DataRoot
from tasks.train import evaluation_config, publish_training, train_model


class TrainParams(BaseModel):
    """Parameters of ``train-georsclip`` (the deployment form in the UI)."""

    config: str = Field(default="deployments/train-sample.yaml", description="TrainConfig YAML")
    dataset_version: str | None = Field(default=None, description="dataset version to train on")
    data_root: str = Field(default="data", description="data root holding versions/<version>/package")
    shards: str | None = Field(default=None, description="explicit shards (overrides dataset_version)")
    preset: Literal["paper", "ret2"] | None = Field(default=None, description="recipe defaults")
    engine: Literal["ours", "open_clip_train"] | None = None
    model: str | None = Field(default=None, description="open_clip model name, e.g. ViT-B-32")
    pretrained: str | None = Field(default=None, description="open_clip pretrained tag, e.g. openai")
    checkpoint: str | None = Field(default=None, description="initial state_dict file")
    batch_size: int | None = Field(default=None, ge=1, le=65536)
    epochs: int | None = Field(default=None, ge=1, le=10_000)
    max_steps: int | None = Field(default=None, ge=1)
    device: str | None = Field(default=None, description="auto, cpu, cuda")
    output_dir: str | None = Field(default=None, description="run folder (checkpoints, final model)")
    resume: str | None = Field(default=None, description="auto | never | a checkpoint path")
    nproc: int | None = Field(default=None, ge=1, le=64, description="GPUs (default: all visible)")
    evaluate: bool = Field(default=True, description="run evaluate-georsclip on the final model")
    eval_config: str = Field(default="deployments/evaluate-sample.yaml", description="EvalConfig YAML")

    def resolve(self) -> TrainConfig:
        """The TrainConfig: the YAML with these overrides; a dataset version selects its shards."""
        shards = self.shards
        if shards is None and self.dataset_version is not None:
            layout = DataRoot.of(self.data_root).version(self.dataset_version)
            shards = str(layout.package_dir("open_clip"))
        over = {
            "preset": self.preset,
            "engine": self.engine,
            "model.name": self.model,
            "model.pretrained": self.pretrained,
            "model.checkpoint": self.checkpoint,
            "data.shards": shards,
            "data.version": self.dataset_version,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "max_steps": self.max_steps,
            "device": self.device,
            "output_dir": self.output_dir,
            "resume": self.resume,
        }
        return load_train_config(self.config, over)


@flow(name="train-georsclip")
def train_georsclip(params: TrainParams | None = None) -> dict[str, Any]:
    """Train (or resume), publish the loss curve and metrics, evaluate the final model; return both."""
    params = params or TrainParams()
    cfg = params.resolve()
    version = cfg.data.version or "unversioned"
    label = f"{cfg.model.name} on {version} (ours)"
    get_run_logger().info("training %s, output %s", label, cfg.output_dir)
    result = train_model(cfg, params.nproc)
    publish_training(result, label)
    out: dict[str, Any] = {"train": result, "evaluation": None}
    if params.evaluate:
        eval_cfg = evaluation_config(params.eval_config, result, label)
        out["evaluation"] = evaluate_georsclip(EvaluateParams(config=None, inline=eval_cfg))
    get_run_logger().info("final model %s", Path(result["files"]["model"]))
    return out
