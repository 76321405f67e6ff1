"""Benchmark: evaluation image embedding (``rs5m.ml.evaluation.embed.encode_images``) vs a naive loop, same
run.

    python bench/eval.py [--images 512] [--size 224] [--model ViT-B-32] [--batch-size 64] [--workers 2]
                         [--rounds 1] [--naive-images 128] [--docs]

Writes ``--images`` generated ``--size`` px JPEGs, builds ``--model`` with random weights (no download),
then per round times, in alternating order:

- ``naive``: for each file: PIL open -> eval preprocess -> ``encode_image`` on a batch of one, in the
  main process, no DataLoader (the per-tile loop of the reference SeLo code); on the first
  ``--naive-images`` files only (rates are per image, so comparable);
- ``ours``: ``encode_images`` - DataLoader with ``--workers`` decoding processes, batches of
  ``--batch-size``, ``inference_mode``;
- ``ours-w0``: the same with no workers (batching alone), for context.

Prints images/s per variant and ``ours / naive`` (target >= 1.5x). ``--docs`` writes the
``## Evaluation embedding`` section of docs/benchmarks.md, leaving the other sections alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rs5m.ml.evaluation.embed import ImagePathDataset, encode_images
from rs5m.ml.models import load_clip

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Evaluation embedding"


def write_images(folder: Path, n: int, size: int) -> list[Path]:
    """``n`` distinct textured RGB JPEGs of ``size`` x ``size``."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        base = rng.integers(30, 220, 3)
        img = np.clip(base + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


@torch.no_grad()
def naive(model: torch.nn.Module, preprocess: Callable, paths: list[Path]) -> np.ndarray:
    """One image at a time in the main process."""
    out = []
    for path in paths:
        with Image.open(path) as image:
            x = preprocess(image).unsqueeze(0)
        out.append(torch.nn.functional.normalize(model.encode_image(x), dim=-1))
    return torch.cat(out).numpy()


def timed(fn: Callable[[], np.ndarray], n: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = fn()
    return n / (time.perf_counter() - start), result


def run(args: argparse.Namespace) -> dict[str, list[float]]:
    model, preprocess, _ = load_clip(args.model, init_seed=0)
    rates: dict[str, list[float]] = {"naive": [], "ours": [], "ours-w0": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.images, args.size)
        ds = ImagePathDataset(paths, preprocess)
        encode_images(
            model, ImagePathDataset(paths[: args.batch_size], preprocess), args.batch_size, 0
        )  # warm-up
        few = paths[: args.naive_images or len(paths)]
        variants = {
            "naive": lambda: naive(model, preprocess, few),
            "ours": lambda: encode_images(model, ds, args.batch_size, args.workers),
            "ours-w0": lambda: encode_images(model, ds, args.batch_size, 0),
        }
        for r in range(args.rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            results = {}
            for name in order:
                rate, results[name] = timed(variants[name], len(few) if name == "naive" else len(paths))
                rates[name].append(rate)
                print(f"round {r + 1} {name:8s} {rate:8.2f} img/s", flush=True)
            np.testing.assert_allclose(results["naive"], results["ours"][: len(few)], rtol=1e-3, atol=1e-4)
    return rates


def section(args: argparse.Namespace, rates: dict[str, list[float]]) -> str:
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratios = [o / n for o, n in zip(rates["ours"], rates["naive"], strict=True)]
    rows = [
        f"| {name} | {med[name]:.2f} | {max(rates[name]):.2f} | {med[name] / med['naive']:.2f}x |"
        for name in ("naive", "ours", "ours-w0")
    ]
    return "\n".join(
        [
            SECTION,
            "",
            f"`python bench/eval.py --images {args.images} --size {args.size} --model {args.model} "
            f"--batch-size {args.batch_size} --workers {args.workers} --rounds {args.rounds} "
            f"--naive-images {args.naive_images}`: image embedding for evaluation, {args.model} with random "
            f"weights on CPU ({torch.get_num_threads()} torch threads), {args.images} generated "
            f"{args.size}px JPEGs (naive loop: the first {args.naive_images or args.images}), "
            "eval preprocess of reference §10. "
            f"Machine: {os.cpu_count()}-core VM, shared with other jobs while measured (load average "
            f"{os.getloadavg()[0]:.1f} at the end); {date.today().isoformat()}; "
            f"Python {platform.python_version()}, torch {torch.__version__}.",
            "",
            "| variant | img/s median | img/s best | vs naive |",
            "|---|---|---|---|",
            *rows,
            "",
            "naive: PIL open -> preprocess -> `encode_image` on one image at a time, main process, no "
            "DataLoader. ours: `rs5m.ml.evaluation.embed.encode_images` (DataLoader with the given workers, "
            "batches, `inference_mode`). ours-w0: same without workers. Same images, same model, same run; "
            f"outputs checked equal. Per-round ours/naive: {', '.join(f'{r:.2f}x' for r in ratios)}. "
            "Target: ours >= 1.5x naive. Under load a batch of one suffers most (every op waits for "
            "both threads), so the ratio on an idle machine is lower.",
            "",
        ]
    )


def write_docs(text: str) -> None:
    """Replace (or append) only the ``## Evaluation embedding`` section of docs/benchmarks.md."""
    old = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt + 1 :] if nxt >= 0 else ""
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    DOCS.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--naive-images", type=int, default=128, help="images for the slow naive loop (0: all)"
    )
    parser.add_argument("--docs", action="store_true", help="write the section into docs/benchmarks.md")
    args = parser.parse_args()
    rates = run(args)
    text = section(args, rates)
    print("\n" + text)
    if args.docs:
        write_docs(text)


if __name__ == "__main__":
    main()
