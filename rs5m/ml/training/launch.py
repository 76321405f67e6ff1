"""Start a training run the right way: in this process, under torchrun on several GPUs, or through
open_clip_train; every path ends with ``<output_dir>/final/model.{pt,json}`` and a loss curve.

- ``engine: ours`` on one device (or already inside torchrun): ``rs5m.ml.training.loop.train`` here.
- ``engine: ours`` with more than one visible GPU: ``torchrun --nproc_per_node=N -m rs5m.ml.training``
  on the resolved config, written to ``<output_dir>/train-config.json``.
- ``engine: open_clip_train``: ``rs5m.ml.training.openclip_train`` (see its docstring for when).

Every path first claims the run folder (``rs5m.ml.training.identity``): a folder holding a run of other
data or settings is refused, never resumed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rs5m.config.train import TrainConfig
from rs5m.ml.training.identity import claim_run_dir
from rs5m.ml.training.loop import StepHook, TrainResult, train

CONFIG_NAME = "train-config.json"


def visible_gpus() -> int:
    """CUDA devices this process can see (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def write_resolved(cfg: TrainConfig) -> Path:
    """Write the fully resolved config into the run folder (what torchrun ranks read)."""
    path = Path(cfg.output_dir) / CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cfg.model_dump_json(indent=2), encoding="utf-8")
    return path


def result_from_export(cfg: TrainConfig) -> TrainResult:
    """The TrainResult of a run that exported its final model (read back from ``model.json``)."""
    from rs5m.ml.training.export import read_export

    doc = read_export(cfg.output_dir)
    files = dict(doc["files"])
    curve = Path(cfg.output_dir) / "loss.png"
    if curve.is_file():
        files["loss_curve"] = str(curve)
    return TrainResult(
        cfg.output_dir, int(doc.get("steps", 0)), files, doc.get("metrics", {}), doc.get("params", {}),
        doc.get("data_version"),
    )  # fmt: skip


def run_torchrun(cfg: TrainConfig, nproc: int) -> TrainResult:
    """Run our loop on ``nproc`` local GPUs with torchrun; raise ``RuntimeError`` if a rank fails."""
    path = write_resolved(cfg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "rs5m.ml.training", "--config-json", str(path)]  # fmt: skip
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun training failed with exit code {proc.returncode}")
    return result_from_export(cfg)


def run_openclip(cfg: TrainConfig, nproc: int) -> TrainResult:
    """Train with open_clip_train, then export and plot exactly as our loop does."""
    from rs5m.ml.training.data import count_samples, data_version, shard_urls
    from rs5m.ml.training.metrics import plot_loss_curve, summarize
    from rs5m.ml.training.openclip_train import (
        export_openclip_checkpoint,
        parse_openclip_log,
        run_openclip_train,
    )

    urls = shard_urls(cfg.data)
    n_samples = cfg.data.num_samples or count_samples(urls)
    last = run_openclip_train(cfg, urls, n_samples, nproc)
    rows = parse_openclip_log(last.parent.parent / "out.log", cfg.global_batch(max(1, nproc)))
    info = {"engine": "open_clip_train", "data_version": data_version(cfg.data), "metrics": summarize(rows)}
    info["steps"] = rows[-1]["step"] if rows else 0
    files = export_openclip_checkpoint(cfg, last, info)
    if rows:
        files["loss_curve"] = str(plot_loss_curve(rows, Path(cfg.output_dir) / "loss.png", "open_clip_train"))
    return TrainResult(cfg.output_dir, info["steps"], files, info["metrics"], {}, info["data_version"])


def launch(cfg: TrainConfig, nproc: int | None = None, on_step: StepHook | None = None) -> TrainResult:
    """Run ``cfg`` to completion on ``nproc`` GPUs (default: all visible); see the module docstring.

    ``on_step(step, row)`` is called after every step of an in-process run (``row`` is empty unless
    the step was logged); runs in other processes only report at the end. ``ValueError`` when
    ``output_dir`` holds another run (``rs5m.ml.training.identity``).
    """
    claim_run_dir(cfg)  # before any process trains: never resume another run's weights on this data
    n = visible_gpus() if nproc is None else nproc
    if cfg.device == "cpu":
        n = 1
    if cfg.engine == "open_clip_train":
        return run_openclip(cfg, n)
    if n > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return run_torchrun(cfg, n)
    return train(cfg, on_step)
