"""``rs5m train``: fine-tune an open_clip model (GeoRSCLIP recipe, full or LoRA) on shards or CSVs.

rs5m train --config deployments/train-sample.yaml [--max-steps 20] [--device cpu] [--set optim.lr=1e-4]
rs5m train --config my.yaml --preset ret2 --checkpoint ckpt/RS5M_ViT-B-32.pt   # RET-2 fine-tune

It runs flow ``train-georsclip`` (without its evaluation) in this process, like a deployment would
(``cli.flowrun``). A rerun with the same output folder resumes from its latest checkpoint (``--resume
never`` starts over in place); a folder holding a run of other data or settings (its ``run.json``) is
refused, never resumed.
With several visible GPUs the run goes through torchrun; ``--nproc 1`` keeps one process.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

# CLI flag -> dotted TrainConfig key
FLAGS: dict[str, str] = {
    "preset": "preset",
    "engine": "engine",
    "model": "model.name",
    "pretrained": "model.pretrained",
    "checkpoint": "model.checkpoint",
    "shards": "data.shards",
    "data_version": "data.version",
    "workers": "data.workers",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "max_steps": "max_steps",
    "lr": "optim.lr",
    "precision": "precision",
    "device": "device",
    "output_dir": "output_dir",
    "resume": "resume",
    "seed": "seed",
}


def register(subparsers: Any) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help="fine-tune an open_clip model on RS5M shards or retrieval CSVs (full or LoRA)",
        description="Train GeoRSCLIP; writes checkpoints, metrics.jsonl, loss.png and final/model.{pt,json}.",
    )
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="TrainConfig YAML")
    p.add_argument("--preset", choices=["paper", "ret2"], help="recipe defaults under the config's keys")
    p.add_argument("--engine", choices=["ours", "open_clip_train"])
    p.add_argument("--model", metavar="NAME", help="open_clip model name, e.g. ViT-B-32")
    p.add_argument("--pretrained", metavar="TAG", help="open_clip pretrained tag, e.g. openai")
    p.add_argument("--checkpoint", metavar="FILE", help="initial state_dict (e.g. RS5M_ViT-B-32.pt)")
    p.add_argument("--shards", metavar="PATH", help="shard folder, glob or brace pattern")
    p.add_argument("--data-version", metavar="NAME", help="dataset version recorded with the model")
    p.add_argument("--workers", type=int, metavar="N", help="DataLoader worker processes")
    p.add_argument("--batch-size", type=int, metavar="N", help="per-GPU micro-batch")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps (overrides epochs)")
    p.add_argument("--lr", type=float, metavar="X")
    p.add_argument("--precision", choices=["fp32", "amp", "amp_bf16"])
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1")
    p.add_argument("--output-dir", metavar="DIR")
    p.add_argument("--resume", metavar="auto|never|FILE")
    p.add_argument("--seed", type=int)
    p.add_argument("--nproc", type=int, metavar="N", help="GPUs to use (default: all visible)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, e.g. optim.lr=1e-5"
    )
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted-key overrides from the flags and ``--set KEY=VALUE`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {key: getattr(args, flag) for flag, key in FLAGS.items()}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set wants KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    """Check the config, train (or resume) to the end through flow ``train-georsclip``, print where the
    model and curves are."""
    from cli.flowrun import run_flow
    from rs5m.config.train import load_train_config

    over = overrides(args)
    cfg = load_train_config(args.config, over)  # a bad config is one line before Prefect starts
    out = Path(cfg.output_dir).resolve()
    params = {"config": str(args.config), "output_dir": str(out), "evaluate": False, "overrides": over}
    result = run_flow("train:train_georsclip", out.parent, nproc=args.nproc, **params)["train"]
    m = result["metrics"]
    if m:
        print(f"steps {result['steps']}: loss {m['first_loss']:.4f} -> {m['last_loss']:.4f}")
    if result["params"]:
        p = result["params"]
        print(f"trainable parameters: {p['trainable']:,} of {p['total']:,} ({p['trainable_pct']} %)")
    for kind, path in result["files"].items():
        print(f"{kind}: {path}")
    return 0
