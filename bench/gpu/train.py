"""Benchmark: our training loop vs open_clip_train on the same open_clip-layout shards, same run.

One prepared call on a lent H100/H200 (defaults), or on CPU with the tiny model for a dry run::

    python bench/gpu/train.py                                   # ViT-B-32, random init, batch 256, bf16
    python bench/gpu/train.py --device cpu --model rs5m-tiny --batch-size 16 --precision fp32 \\
        --steps 30 --skip 5 --samples 1024 --workers 2 --image-px 64

Both engines start from the same random-init model (``--model``, no pretrained weights), read the same
shards (``--shards``, else ``--samples`` generated ``--image-px`` JPEGs in ``--n-shards`` shards), use
the same batch, precision, AdamW settings and DataLoader worker count, each in its own fresh process
(torchrun-free, one GPU). Speed = median samples/s over optimizer steps after the first ``--skip``, as
each engine logs every step (both time the whole step including waiting for data); with ``--rounds``
the engines alternate order each round and the ratio is the median of per-round ratios. Model FLOPs
utilisation = (training FLOPs per sample x samples/s) / peak dense bf16 (or fp32) FLOP/s of the device;
training FLOPs per sample = 3 x forward FLOPs (forward + backward), counted by
``torch.utils.flop_counter`` on one image-text pair. Prints a Markdown table and writes ``--out``
(JSON). Target: ours >= 1.0x open_clip_train.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from rs5m.config import PackageConfig
from rs5m.config.train import TrainConfig
from rs5m.ml.training.metrics import read_metrics
from rs5m.ml.training.openclip_train import command, openclip_argv, parse_openclip_log
from rs5m.shards import Sample, write_manifest, write_shards

# Peak dense tensor-core FLOP/s (NVIDIA datasheets; SXM parts); CPU has no meaningful peak here.
PEAK_FLOPS = {"H100": {"bf16": 989.4e12, "fp32": 66.9e12}, "H200": {"bf16": 989.4e12, "fp32": 66.9e12}}


def make_shards(out: Path, n: int, px: int, n_shards: int) -> Path:
    """``n`` generated smooth-noise JPEGs with varied captions, as open_clip-layout shards."""
    rng = np.random.default_rng(0)
    low = max(px // 16, 2)

    def sample(i: int) -> Sample:
        img = Image.fromarray(rng.integers(0, 256, (low, low, 3), dtype=np.uint8)).resize((px, px))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        caption = f"an aerial image of {['farmland', 'a harbour', 'a city', 'forest'][i % 4]} number {i}"
        return Sample(f"bench-{i:07d}", "bench", caption, buf.getvalue(), "jpg")

    cfg = PackageConfig(max_samples_per_shard=-(-n // n_shards), fsync=False)
    write_shards((sample(i) for i in range(n)), out, "pub11", "train", "open_clip", cfg)
    write_manifest(out, "bench")
    return out


def config(args: argparse.Namespace, shards: Path, out: Path) -> TrainConfig:
    """The TrainConfig both engines run (open_clip_train gets it through ``openclip_argv``)."""
    return TrainConfig.model_validate(
        {
            "model": {"name": args.model, "pretrained": None},
            "data": {"shards": str(shards), "workers": args.workers, "shuffle_buffer": 1000},
            "batch_size": args.batch_size,
            "max_steps": args.steps,
            "precision": args.precision,
            "optim": {"lr": 5e-4, "weight_decay": 0.2, "warmup_steps": 10},
            "log_every": 1,
            "checkpoint_every": 10**9,
            "device": args.device,
            "output_dir": str(out),
        }
    )


def run_ours(cfg: TrainConfig) -> list[float]:
    """Our loop in a fresh process; samples/s of every logged step."""
    path = Path(cfg.output_dir) / "train-config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cfg.model_dump_json(), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "rs5m.ml.training", "--config-json", str(path)], check=True)
    return [r["samples_per_s"] for r in read_metrics(Path(cfg.output_dir) / "metrics.jsonl")]


def run_openclip(cfg: TrainConfig, urls: list[str]) -> list[float]:
    """open_clip_train in a fresh process for one epoch of ``steps`` batches; samples/s per step."""
    logs = Path(cfg.output_dir) / "logs"
    argv = openclip_argv(cfg, urls, cfg.batch_size * int(cfg.max_steps or 1), logs)
    argv += ["--save-frequency", "0"]
    subprocess.run(command(argv), check=True, stdout=subprocess.DEVNULL)
    rows = parse_openclip_log(logs / "open_clip_train" / "out.log", cfg.batch_size)
    return [r["samples_per_s"] for r in rows]


def train_flops_per_sample(model_name: str) -> float:
    """3 x the forward FLOPs of one image-text pair (fp32 count; precision does not change it)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from rs5m.ml.models import load_clip

    model, _, tok = load_clip(model_name, init_seed=0)
    size = model.visual.image_size
    size = size[0] if isinstance(size, tuple | list) else int(size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size), tok(["a flop count"]))
    return 3.0 * counter.get_total_flops()


def device_info(device: str) -> tuple[str, dict[str, float] | None]:
    """Device name and its peak FLOP/s table (``None`` when unknown, e.g. CPU)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return name, next((v for k, v in PEAK_FLOPS.items() if k in name), None)
    return "cpu", None


def main() -> None:
    """Build or take shards, run both engines once each, print and write the comparison."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", type=Path, help="existing open_clip-layout shard folder")
    p.add_argument("--samples", type=int, default=30_000)
    p.add_argument("--image-px", type=int, default=256)
    p.add_argument("--n-shards", type=int, default=32)
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--precision", default="amp_bf16", choices=["fp32", "amp", "amp_bf16"])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--skip", type=int, default=20, help="warm-up steps left out of the median")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--device", default="cuda")
    p.add_argument("--rounds", type=int, default=1, help="alternating-order repetitions")
    p.add_argument("--out", type=Path, default=Path("bench/out/train_gpu.json"))
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rs5m-bench-train-"))
    shards = args.shards or make_shards(work / "shards", args.samples, args.image_px, args.n_shards)
    urls = sorted(str(u) for u in Path(shards).glob("*.tar"))
    runners = {"open_clip_train": lambda c: run_openclip(c, urls), "ours": run_ours}
    per_round: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(args.rounds):
        for name in list(runners)[:: 1 if r % 2 == 0 else -1]:  # alternate order: same share of drift
            t0 = time.perf_counter()
            per_step = runners[name](config(args, shards, work / f"{name}-{r}"))
            per_round[name].append(statistics.median(per_step[args.skip :] or per_step))
            secs = time.perf_counter() - t0
            speed = per_round[name][-1]
            print(f"round {r} {name}: {speed:.1f} samples/s ({len(per_step)} steps, {secs:.0f} s)")
    speeds = {k: statistics.median(v) for k, v in per_round.items()}
    ratios = [o / c for o, c in zip(per_round["ours"], per_round["open_clip_train"], strict=True)]
    dev, peak = device_info(args.device)
    flops = train_flops_per_sample(args.model)
    key = "fp32" if args.precision == "fp32" else "bf16"
    mfu = {k: (flops * v / peak[key] if peak else None) for k, v in speeds.items()}
    ratio = statistics.median(ratios)
    result = {"device": dev, "args": {k: str(v) for k, v in vars(args).items()}, "samples_per_s": speeds}
    result.update(mfu=mfu, train_gflops_per_sample=flops / 1e9, ratio_ours_vs_open_clip_train=ratio)
    result.update(per_round=per_round, per_round_ratio=ratios)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print("| engine | samples/s | MFU | vs open_clip_train |\n|---|---|---|---|")
    for k, v in speeds.items():
        m = f"{100 * mfu[k]:.1f} %" if mfu[k] is not None else "n/a"
        print(f"| {k} | {v:.1f} | {m} | {ratio if k == 'ours' else 1.0:.2f}x |")
    print(f"device: {dev}; {flops / 1e9:.2f} training GFLOPs per sample; written {args.out}")


if __name__ == "__main__":
    main()
