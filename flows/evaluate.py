"""Flow ``evaluate-georsclip``: zero-shot, retrieval and SeLo evaluation of one model, table as artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from rs5m.config.evaluate import EvalConfig, load_eval_config
from rs5m.ml.evaluation.run import dataset_jobs
from tasks.evaluate import evaluate_dataset, publish_eval_table, write_eval_report


class EvaluateParams(BaseModel):
    """Parameters of ``evaluate-georsclip``: a config (file or inline) plus common overrides."""

    config: str | None = Field(default="deployments/evaluate-sample.yaml", description="EvalConfig YAML")
    inline: EvalConfig | None = Field(default=None, description="a full EvalConfig instead of the file")
    model: str | None = Field(default=None, description="open_clip model name, e.g. ViT-B-32")
    pretrained: str | None = Field(default=None, description="open_clip pretrained tag")
    checkpoint: str | None = Field(default=None, description="GeoRSCLIP / open_clip state_dict file")
    device: str | None = Field(default=None, description="torch device: cpu, cuda, cuda:1")
    batch_size: int | None = Field(default=None, ge=1, le=8192)
    output_dir: str | None = Field(default=None, description="where results.{csv,json,md} go")

    def resolve(self) -> EvalConfig:
        """The EvalConfig to run: ``inline`` (with overrides) or the ``config`` file (with overrides)."""
        over = {
            "model_name": self.model,
            "model_pretrained": self.pretrained,
            "model_checkpoint": self.checkpoint,
        }
        top = {"device": self.device, "batch_size": self.batch_size, "output_dir": self.output_dir}
        if self.inline is None:
            if self.config is None:
                raise ValueError("give config (a YAML path) or inline (an EvalConfig)")
            return load_eval_config(self.config, **over, **top)
        model = {k[len("model_") :]: v for k, v in over.items() if v is not None}
        data = self.inline.model_dump()
        data["model"].update(model)
        data.update({k: v for k, v in top.items() if v is not None})
        return EvalConfig.model_validate(data)


@flow(name="evaluate-georsclip")
def evaluate_georsclip(params: EvaluateParams | None = None) -> dict[str, Any]:
    """Evaluate every configured dataset, write the report, publish the table; return table and files."""
    cfg = (params or EvaluateParams()).resolve()
    get_run_logger().info("evaluating %s on %d datasets", cfg.model.row_label(), len(dataset_jobs(cfg)))
    results = [evaluate_dataset(cfg, kind, name) for kind, name in dataset_jobs(cfg)]
    report = write_eval_report(cfg, results)
    publish_eval_table(report)
    return {"table": report["table"], "files": report["files"]}
