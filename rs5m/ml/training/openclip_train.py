"""Run open_clip's own trainer (``open_clip_train``, shipped with open_clip_torch) on our shards.

Decision - when the flow uses it, when our loop (``rs5m.ml.training.loop``):

- open_clip_train already does full fine-tuning well: symmetric InfoNCE, AdamW, warmup + cosine,
  AMP/bf16, gradient checkpointing, feature-cache accumulation, DDP under torchrun. We do not rewrite
  any of that for it; ``engine: open_clip_train`` maps a TrainConfig onto its argv (``openclip_argv``)
  and exports its last checkpoint in the released format, exactly like our loop's final model.
- It cannot (so our loop exists, and is the default ``engine: ours``):
  PEFT (it only locks towers; no LoRA); the released RS5M layout (``.img_name/.img_content/.caption``:
  its webdataset pipeline keys on ``jpg;png;jpeg;webp`` + ``txt``) and the legacy layout; our CSV
  retrieval sources with image folders (its ``csv`` type reads one ``filepath,title`` file; the RET-2
  union of two CSVs needs a merge step); resuming at the exact step (it checkpoints per epoch and
  restarts an interrupted epoch from its first batch, with a new data order); our image normalisation
  presets are passed through as ``--image-mean/--image-std``, so they are no reason either way.
- Speed: measured side by side on the same shards and settings in ``bench/gpu/train.py`` (GPU) and in
  docs/benchmarks.md (CPU); ``engine: ours`` stays the default while it is at least as fast.

``python -m rs5m.ml.training.openclip_train ARGS`` is ``open_clip_train.main`` with rs5m's model configs
(the tiny test model) registered first, so the same argv works in a subprocess and under torchrun.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from rs5m.config.models import NORM_PRESETS
from rs5m.config.train import TrainConfig
from rs5m.ml.models import TINY_MODEL_NAME, register_tiny_model

RUN_NAME = "open_clip_train"
_LOG_LINE = re.compile(
    r"Train Epoch: (\d+) \[\s*(\d+)/(\d+) .*?, ([\d.e+-]+)/s, .*?LR: ([\d.e+-]+) "
    r"Logit Scale: ([\d.]+) Contrastive_loss: ([\d.e+-]+)"
)


def openclip_argv(
    cfg: TrainConfig, urls: list[str], n_samples: int, logs_dir: str | os.PathLike[str]
) -> list[str]:
    """``open_clip_train.main`` arguments equivalent to ``cfg`` on the given shards."""
    o = cfg.optim
    precision = {"fp32": "fp32", "amp": "amp", "amp_bf16": "amp_bf16"}[cfg.precision]
    argv = [
        "--train-data", "::".join(urls),
        "--train-num-samples", str(n_samples),
        "--dataset-type", "webdataset",
        "--model", cfg.model.name,
        "--batch-size", str(cfg.batch_size),
        "--accum-freq", str(cfg.accum_steps),
        "--epochs", str(cfg.epochs),
        "--lr", repr(o.lr),
        "--wd", repr(o.weight_decay),
        "--beta1", repr(o.beta1),
        "--beta2", repr(o.beta2),
        "--eps", repr(o.eps),
        "--warmup", str(o.warmup_steps),
        "--lr-scheduler", o.schedule,
        "--precision", precision,
        "--workers", str(cfg.data.workers),
        "--seed", str(cfg.seed),
        "--logs", str(logs_dir),
        "--name", RUN_NAME,
        "--save-frequency", "1",
        "--save-most-recent",
        "--resume", "latest",
        "--log-every-n-steps", str(cfg.log_every),
        "--report-to", "",
        "--local-loss",
        "--gather-with-grad",
    ]  # fmt: skip
    pretrained = cfg.model.checkpoint or cfg.model.pretrained
    if pretrained:
        argv += ["--pretrained", pretrained]
    if cfg.model.quick_gelu:
        argv.append("--force-quick-gelu")
    if cfg.optim.grad_clip_norm is not None:
        argv += ["--grad-clip-norm", repr(cfg.optim.grad_clip_norm)]
    if cfg.grad_checkpointing:
        argv.append("--grad-checkpointing")
    if cfg.model.image_norm != "clip":
        mean, std = NORM_PRESETS[cfg.model.image_norm]
        argv += ["--image-mean", *map(str, mean), "--image-std", *map(str, std)]
    if cfg.device == "cpu":
        argv += ["--device", "cpu"]
    return argv


def command(argv: list[str], nproc: int = 1) -> list[str]:
    """The process command line: plain Python, or torchrun with ``nproc`` processes."""
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                "-m", "rs5m.ml.training.openclip_train", *argv]  # fmt: skip
    return [sys.executable, "-m", "rs5m.ml.training.openclip_train", *argv]


def latest_checkpoint(logs_dir: str | os.PathLike[str]) -> Path:
    """open_clip_train's newest checkpoint (``epoch_latest.pt``, else the highest ``epoch_N.pt``)."""
    folder = Path(logs_dir) / RUN_NAME / "checkpoints"
    if (folder / "epoch_latest.pt").is_file():
        return folder / "epoch_latest.pt"
    found = sorted(folder.glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if not found:
        raise FileNotFoundError(f"open_clip_train wrote no checkpoint in {folder}")
    return found[-1]


def run_openclip_train(cfg: TrainConfig, urls: list[str], n_samples: int, nproc: int = 1) -> Path:
    """Run open_clip_train to completion (resuming its own latest checkpoint); return that checkpoint.

    Raises ``RuntimeError`` with the tail of its log when it fails.
    """
    logs = Path(cfg.output_dir) / "open_clip_train_logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = openclip_argv(cfg, urls, n_samples, logs)
    proc = subprocess.run(command(argv, nproc), capture_output=True, text=True, check=False)
    (logs / "stdout.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"open_clip_train failed ({proc.returncode}): {tail[-800:]}")
    return latest_checkpoint(logs)


def export_openclip_checkpoint(cfg: TrainConfig, path: Path, info: dict[str, Any]) -> dict[str, str]:
    """Export open_clip_train's checkpoint (``{"state_dict": ...}``, maybe ``module.``) like our loop does."""
    from rs5m.ml.models import load_clip
    from rs5m.ml.training.export import export_final

    m = cfg.model
    model, _, _ = load_clip(m.name, checkpoint=path, quick_gelu=_quick_gelu(cfg), init_seed=None)
    return export_final(model, cfg, info)


def parse_openclip_log(path: str | os.PathLike[str], global_batch: int) -> list[dict[str, Any]]:
    """open_clip_train's ``out.log`` progress lines as our metrics rows (step, loss, lr, samples/s)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LOG_LINE.search(line)
        if m is None:
            continue
        epoch, seen, per_epoch = int(m[1]), int(m[2]), int(m[3])
        step = epoch * (per_epoch // global_batch) + seen // global_batch
        rows.append(
            {"step": step, "epoch": epoch, "loss": float(m[7]), "lr": float(m[5]),
             "samples_per_s": float(m[4]), "logit_scale": float(m[6])}
        )  # fmt: skip
    return rows


def _quick_gelu(cfg: TrainConfig) -> bool:
    # open_clip switches to QuickGELU itself for pretrained="openai"; mirror that for the re-load
    return bool(cfg.model.quick_gelu) or cfg.model.pretrained == "openai"


def main(argv: list[str] | None = None) -> None:
    """``open_clip_train.main`` with the rs5m tiny model registered (for tests and CPU measurements)."""
    import open_clip_train.data as oc_data
    from open_clip_train.main import main as openclip_main
    from webdataset.tariterators import tar_file_expander

    # webdataset 0.2.111 ends each shard with an empty EOF sample, which open_clip_train 3.3.0's
    # group_by_keys_nothrow indexes as a member (KeyError 'fname'); read shards without the marker.
    oc_data.tar_file_expander = functools.partial(tar_file_expander, eof_value=None)
    register_tiny_model(TINY_MODEL_NAME)
    openclip_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
