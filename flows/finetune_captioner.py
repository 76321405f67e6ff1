"""Flow ``finetune-captioner``: BLIP-2 LoRA on RSITMD/RSICD-style captions, then vanilla vs tuned scores.

Writes ``<out_dir>/adapter`` (peft) + ``finetune.json`` (config, data fingerprint, adapter sha256) and
publishes the METEOR/BLEU-4/CIDEr table as an artifact. Feed the adapter to the RS3 flow as
``captioner.adapter``. The sample job (``deployments/finetune-captioner-sample.yaml``) trains the tiny
random BLIP-2 on generated data: it exercises the code path only.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field

from rs5m.config.captioner import FinetuneConfig, load_finetune_config
from tasks.finetune_captioner import evaluate_task, finetune_task, publish_task


class FinetuneCaptionerParams(BaseModel):
    """Parameters of ``finetune-captioner``: a FinetuneConfig YAML (or inline config) plus overrides."""

    model_config = ConfigDict(extra="forbid")

    name: str = "sample"
    config: str | None = Field(
        default="deployments/finetune-captioner-sample.yaml", description="FinetuneConfig YAML"
    )
    inline: FinetuneConfig | None = Field(default=None, description="a full config instead of the file")
    out_dir: str | None = Field(default=None, description="override: output folder")
    device: str | None = Field(default=None, description="override: torch device (auto, cpu, cuda)")
    max_steps: int | None = Field(default=None, ge=1, description="override: stop after N steps")
    precision: Literal["bf16", "fp32"] | None = None
    evaluate: bool = Field(default=True, description="score vanilla vs tuned on the test split")

    def resolve(self) -> FinetuneConfig:
        """The config to run (file paths resolve against the YAML's folder)."""
        over = {"out_dir": self.out_dir, "device": self.device, "max_steps": self.max_steps}
        over["precision"] = self.precision
        if self.inline is not None:
            data = self.inline.model_dump() | {k: v for k, v in over.items() if v is not None}
            return FinetuneConfig.model_validate(data)
        if self.config is None:
            raise ValueError("give config (a YAML path) or inline (a FinetuneConfig)")
        return load_finetune_config(self.config, **over)


@flow(name="finetune-captioner")
def finetune_captioner_flow(params: FinetuneCaptionerParams | None = None) -> dict[str, Any]:
    """Fine-tune, evaluate, publish; return ``{"finetune": record, "evaluation": report or None}``."""
    from rs5m.ml.captioner_ft.train import resolve_data

    params = params or FinetuneCaptionerParams()
    cfg = resolve_data(params.resolve())
    logger = get_run_logger()
    record = finetune_task(cfg)
    report = None
    if params.evaluate and cfg.eval.enabled and cfg.test is not None:
        report = evaluate_task(cfg, record["adapter"]["path"])
    publish_task(params.name, record, report)
    logger.info("adapter %s (sha256 %s)", record["adapter"]["path"], record["adapter"]["sha256"])
    return {"finetune": record, "evaluation": report}


if __name__ == "__main__":
    finetune_captioner_flow()
