"""``rs5m finetune-captioner``: BLIP-2 LoRA fine-tune + vanilla vs tuned METEOR/BLEU-4/CIDEr table.

rs5m finetune-captioner --config deployments/finetune-captioner-sample.yaml [--out-dir DIR] [--max-steps N]
The adapter lands in ``<out_dir>/adapter``; give it to the RS3 captioner as ``captioner.adapter``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``finetune-captioner`` sub-command."""
    p = subparsers.add_parser(
        "finetune-captioner",
        help="LoRA-tune BLIP-2 on RSITMD/RSICD-style captions and score it (METEOR, BLEU-4, CIDEr)",
        description="Fine-tune BLIP-2 with LoRA (paper preset), write adapter/ + finetune.json, evaluate.",
    )
    p.add_argument("--config", type=Path, metavar="FILE", required=True, help="FinetuneConfig YAML")
    p.add_argument("--out-dir", metavar="DIR", help="where adapter/, checkpoints/, eval/ go")
    p.add_argument("--model", metavar="NAME", help="BLIP-2 hub id, local dir or tiny-random-blip2")
    p.add_argument("--device", help="torch device: auto, cpu, cuda")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--max-steps", type=int, metavar="N")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--lr", type=float)
    p.add_argument("--precision", choices=["bf16", "fp32"])
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """CLI flags -> ``load_finetune_config`` overrides (None = keep the file's value)."""
    out: dict[str, Any] = {"out_dir": args.out_dir, "model": args.model, "device": args.device}
    out |= {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size}
    out |= {"lr": args.lr, "precision": args.precision}
    if args.no_resume:
        out["resume"] = False
    if args.no_eval:
        out["eval.enabled"] = False
    return out


def run(args: argparse.Namespace) -> int:
    """Fine-tune and evaluate through flow ``finetune-captioner`` (as a deployment would,
    ``cli.flowrun``); print the table and the output paths."""
    from cli.flowrun import run_flow
    from rs5m.config.captioner import load_finetune_config
    from rs5m.ml.captioner_ft.evaluate import table_markdown

    over = overrides(args)
    cfg = load_finetune_config(args.config, **over)  # a bad config is one line before Prefect starts
    out = Path(cfg.out_dir).resolve()
    name = re.sub(r"[^A-Za-z0-9._-]", "-", out.name).lstrip("._-")[:64] or "run"  # the flow's name rule
    params = {"name": name, "config": str(args.config), "overrides": over}
    result = run_flow("finetune_captioner:finetune_captioner_flow", out.parent, **params)
    rec = result["finetune"]
    print(json.dumps({"steps": rec["steps"], "adapter": rec["adapter"], "data": rec["data"]}, indent=2))
    if result["evaluation"]:
        print(table_markdown(result["evaluation"]["table"]), end="")
        if result["evaluation"].get("meteor_skipped"):
            print(f"METEOR skipped: {result['evaluation']['meteor_skipped']}")
        for kind, path in result["evaluation"]["files"].items():
            print(f"{kind}: {path}")
    print(f"record: {Path(cfg.out_dir) / 'finetune.json'}")
    return 0
