"""Benchmark: outlier scoring (``rs5m.pipeline.outlier.scores.score_partition``) vs a naive loop, and its
compute-bound rate.

One prepared call on a lent H100/H200 (``bench/gpu/check.sh``), or a dry run on the CPU::

    python bench/gpu/score.py        # ViT-B-32 and convnext_xxlarge, random init, batch 256, bf16
    python bench/gpu/score.py --device cpu --models rs5m-tiny --images 256 --batch-size 32 --workers 2 \\
        --image-px 96 --precision bf16

Data: ``--images`` generated JPEGs (``--image-px`` square, smooth noise) in ``--shards`` img2dataset-style
tars, laid out as one download partition of a version folder (validity, dedup and keyword files), so the
stage code runs unmodified. Per model (random init, loaded once per process as on a Dask worker):

1. ours: ``score_partition`` (``--workers`` decode processes, pinned uint8 batches, autocast, embeddings,
   s_vlm, s_caption, files written), wall time after a one-batch warm-up partition;
2. naive: the same model in one process that decodes each image, then runs each batch (no loader
   processes, no prefetch), computing the same s_vlm and s_caption;
3. correctness: ours vs naive scores on the same images (max abs difference) and bf16 vs fp32 image
   embeddings on one batch (min cosine);
4. model-only: the model on a resident batch (no decoding), the ceiling of the data path;
5. compute-bound: FLOPs per image (image tower + its caption's text tower, ``torch.utils.flop_counter``)
   x images/s, over a measured bf16 matmul rate (8192^3, mean of 10 after 3 warm-ups).

Targets: ours >= 3x naive; ours >= 70 % of compute-bound. Prints a Markdown table, writes ``--out``;
exits non-zero when ours and naive disagree by more than ``MAX_SCORE_DIFF`` in s_vlm.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from rs5m.config import ScoringConfig
from rs5m.core.io import write_parquet
from rs5m.pipeline.download.stage import iter_shard_images
from rs5m.pipeline.outlier.scores import (
    ClipScorer,
    embeddings_path,
    get_scorer,
    rows_to_score,
    score_partition,
    score_stats_path,
    scores_path,
)
from rs5m.shards.preprocess import ClipPreprocess

SOURCE = "bench"
MAX_SCORE_DIFF = 0.02  # ours vs naive: same model and images, other batch compositions (bf16 kernels differ)


def _shard(args: tuple[Path, int, int, int]) -> list[dict]:
    path, start, n, px = args
    rng = np.random.default_rng(start)
    rows = []
    with open(path, "wb") as fh, tarfile.open(fileobj=fh, mode="w") as tar:
        for i in range(start, start + n):
            low = rng.integers(0, 256, (max(px // 16, 2), max(px // 16, 2), 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(low).resize((px, px), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
            key, caption = (
                f"{i:09d}",
                f"an aerial image of {['farmland', 'a harbour', 'a city'][i % 3]} no. {i}",
            )
            for ext, data in ((".jpg", buf.getvalue()), (".txt", caption.encode())):
                info = tarfile.TarInfo(key + ext)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            rows.append({"uid": f"{SOURCE}-{i:09d}", "key": key, "shard": str(path), "caption": caption})
    return rows


def make_version(vdir: Path, parts: dict[str, int], px: int, n_shards: int) -> None:
    """Partitions ``{name: images}`` of generated JPEG tars + validity, dedup and keyword files."""
    jobs, start = [], 0
    for part, n in parts.items():
        k = max(1, min(n_shards, n))
        sizes = [n // k + (i < n % k) for i in range(k)]
        for i, size in enumerate(sizes):
            jobs.append((part, (vdir / "download" / SOURCE / part / f"{i:05d}.tar", start, size, px)))
            start += size
    for part, _ in jobs:
        (vdir / "download" / SOURCE / part).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor() as pool:
        results = list(pool.map(_shard, [j for _, j in jobs]))
    by_part: dict[str, list[dict]] = {}
    for (part, _), rows in zip(jobs, results, strict=True):
        by_part.setdefault(part, []).extend(rows)
    for part, rows in by_part.items():
        t = pa.Table.from_pylist(rows)
        t = t.append_column("source", pa.array([SOURCE] * len(rows))).append_column("url", t["key"])
        write_parquet(
            vdir / "validity" / SOURCE / f"{part}.parquet",
            t.append_column("valid", pa.array([True] * len(rows))),
        )
        write_parquet(
            vdir / "keyword" / SOURCE / f"{part}.parquet", t.select(["uid", "source", "url", "caption"])
        )
    uids = [r["uid"] for rows in by_part.values() for r in rows]
    kept = pa.table({"uid": uids, "source": [SOURCE] * len(uids), "dup_keep": [True] * len(uids)})
    write_parquet(vdir / "dedup" / "decisions.parquet", kept)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (timers must not stop early)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_ours(vdir: Path, part: str, cfg: ScoringConfig) -> tuple[float, dict]:
    """Seconds of one fresh ``score_partition`` run and its score columns."""
    for path in (scores_path, embeddings_path, score_stats_path):
        path(vdir, SOURCE, part).unlink(missing_ok=True)
    t0 = time.perf_counter()
    score_partition(vdir, SOURCE, part, cfg)
    sync(get_scorer(cfg).device)
    seconds = time.perf_counter() - t0
    return seconds, pq.read_table(scores_path(vdir, SOURCE, part)).to_pydict()


def run_naive(vdir: Path, part: str, scorer: ClipScorer, cfg: ScoringConfig) -> tuple[float, dict]:
    """Decode and infer in this one process, batch by batch, no prefetch: same model, same scores."""
    t0 = time.perf_counter()
    rows = rows_to_score(vdir, SOURCE, part)
    captions = dict(zip(rows["key"].to_pylist(), rows["caption"].to_pylist(), strict=True))
    pre = ClipPreprocess(scorer.size, draft=cfg.draft)
    out: dict[str, list] = {"uid": [], "s_vlm": [], "s_caption": []}
    batch: list[tuple[str, torch.Tensor]] = []

    def flush() -> None:
        feats = scorer.embed_images(torch.stack([x for _, x in batch]))
        text = scorer.embed_texts([captions[k] for k, _ in batch])
        out["uid"] += [f"{SOURCE}-{k}" for k, _ in batch]
        out["s_vlm"] += (feats @ scorer.text_feature).cpu().tolist()
        out["s_caption"] += (feats * text).sum(-1).cpu().tolist()
        batch.clear()

    for shard in sorted(set(rows["shard"].to_pylist())):
        for key, data in iter_shard_images(shard, set(captions)):
            batch.append((key, pre.decode(data).contiguous()))
            if len(batch) == cfg.batch_size:
                flush()
    if batch:
        flush()
    sync(scorer.device)
    return time.perf_counter() - t0, out


def max_diff(a: dict, b: dict, col: str) -> float:
    """Max abs difference of a score column, matched by uid."""
    ref = dict(zip(b["uid"], b[col], strict=True))
    return float(max(abs(x - ref[u]) for u, x in zip(a["uid"], a[col], strict=True)))


def model_only(scorer: ClipScorer, batch_size: int, steps: int = 10) -> tuple[float, float]:
    """(images/s of the model on a resident uint8 batch with captions, min cosine bf16-vs-fp32)."""
    x = torch.randint(
        0, 256, (batch_size, 3, scorer.size, scorer.size), dtype=torch.uint8, device=scorer.device
    )
    texts = [f"an aerial image of a city no. {i}" for i in range(batch_size)]
    for _ in range(3):
        scorer.embed_images(x), scorer.embed_texts(texts)
    sync(scorer.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        scorer.embed_images(x), scorer.embed_texts(texts)
    sync(scorer.device)
    rate = steps * batch_size / (time.perf_counter() - t0)
    fp32 = ClipScorer(**{**scorer.__dict__, "precision": "fp32"})
    cos = (scorer.embed_images(x) * fp32.embed_images(x)).sum(-1).min().item()
    return rate, cos


def flops_per_image(scorer: ClipScorer) -> float:
    """FLOPs of one image through the image tower plus one caption through the text tower."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, scorer.size, scorer.size, dtype=torch.uint8, device=scorer.device)
    with FlopCounterMode(display=False) as counter:
        scorer.embed_images(x), scorer.embed_texts(["an aerial image of farmland no. 1"])
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, n: int = 8192) -> float | None:
    """Measured bf16 matmul FLOP/s (None on the CPU)."""
    if device.type != "cuda":
        return None
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 10 * 2 * n**3 / (time.perf_counter() - t0)


def bench_model(name: str, args: argparse.Namespace, vdir: Path, peak: float | None) -> dict:
    """Every measurement of one model (see the module docstring)."""
    cfg = ScoringConfig(
        model_name=name, pretrained=None, batch_size=args.batch_size, precision=args.precision,
        cpu_precision="bf16" if args.precision == "bf16" else "fp32", device=args.device,
        num_workers=args.workers,
    )  # fmt: skip
    t0 = time.perf_counter()
    scorer = get_scorer(cfg)
    load_s = time.perf_counter() - t0
    run_ours(vdir, "warm", cfg)
    ours_s, ours = run_ours(vdir, "main", cfg)
    naive_s, naive = run_naive(vdir, "main", scorer, cfg)
    rate_only, cos = model_only(scorer, args.batch_size)
    flops = flops_per_image(scorer)
    n = len(ours["uid"])
    res = {
        "model": name,
        "images": n,
        "load_s": round(load_s, 1),
        "ours_img_s": n / ours_s,
        "naive_img_s": n / naive_s,
    }
    res.update(model_only_img_s=rate_only, gflops_per_image=flops / 1e9, min_cos_bf16_fp32=cos)
    res.update(
        max_diff_s_vlm=max_diff(ours, naive, "s_vlm"), max_diff_s_caption=max_diff(ours, naive, "s_caption")
    )
    res["speedup"] = res["ours_img_s"] / res["naive_img_s"]
    res["ours_of_compute_bound"] = flops * res["ours_img_s"] / peak if peak else None
    res["model_only_of_compute_bound"] = flops * rate_only / peak if peak else None
    return res


def _pct(v: float | None) -> str:
    return f"{100 * v:.1f} %" if v is not None else "n/a"


COLUMNS = {
    "model": lambda r: r["model"],
    "ours img/s": lambda r: f"{r['ours_img_s']:.0f}",
    "naive img/s": lambda r: f"{r['naive_img_s']:.0f}",
    "ours/naive": lambda r: f"{r['speedup']:.2f}x",
    "model-only img/s": lambda r: f"{r['model_only_img_s']:.0f}",
    "GFLOPs/img": lambda r: f"{r['gflops_per_image']:.1f}",
    "ours % of compute-bound": lambda r: _pct(r["ours_of_compute_bound"]),
    "model-only %": lambda r: _pct(r["model_only_of_compute_bound"]),
    "max diff s_vlm": lambda r: f"{r['max_diff_s_vlm']:.2e}",
    "min cos bf16/fp32": lambda r: f"{r['min_cos_bf16_fp32']:.4f}",
}


def print_table(results: list[dict], device: str, peak: float | None) -> None:
    """Markdown table of every model, then the targets met or not."""
    print(f"\ndevice: {device}" + (f"; measured bf16 matmul: {peak / 1e12:.0f} TFLOP/s" if peak else ""))
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for r in results:
        print("| " + " | ".join(f(r) for f in COLUMNS.values()) + " |")
    for r in results:
        bound = r["ours_of_compute_bound"]
        met = "n/a" if bound is None else "yes" if bound >= 0.7 else "NO"
        fast = "yes" if r["speedup"] >= 3 else "NO"
        print(f"{r['model']}: >= 3x naive: {fast}; >= 70 % of compute-bound: {met}")


def main() -> None:
    """Generate the partition, measure every model, print the table and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["ViT-B-32", "convnext_xxlarge"])
    p.add_argument("--images", type=int, default=8192)
    p.add_argument("--image-px", type=int, default=384)
    p.add_argument("--shards", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--workers", type=int, default=14, help="decode processes of our loader")
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, default=Path("bench/out/score_gpu.json"))
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rs5m-bench-score-"))
    t0 = time.perf_counter()
    make_version(work, {"warm": args.batch_size, "main": args.images}, args.image_px, args.shards)
    print(f"generated {args.images} images in {time.perf_counter() - t0:.1f} s under {work}", flush=True)
    device = torch.device(args.device)
    peak = matmul_peak(device)
    results = []
    for name in args.models:
        results.append(bench_model(name, args, work, peak))
        print(json.dumps(results[-1]), flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print_table(results, name, peak)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": name,
        "torch": torch.__version__,
        "peak_bf16_flops": peak,
        "args": vars(args) | {"out": str(args.out)},
    }
    args.out.write_text(json.dumps({**meta, "results": results}, indent=2), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    wrong = [r["model"] for r in results if not r["max_diff_s_vlm"] <= MAX_SCORE_DIFF]  # NaN fails too
    if wrong:
        raise SystemExit(f"ours and naive disagree (> {MAX_SCORE_DIFF} in s_vlm) for {wrong}")


if __name__ == "__main__":
    main()
