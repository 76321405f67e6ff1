"""Benchmark: RS5M reference data loader vs ``rs5m.shards.make_loader`` on the same shards, same run.

Builds ``--images`` real-sized JPEGs into rs5m-layout shards (WHU-RS19 600x600 from ../shared/data when
present, else generated 500x400), then times, each in a fresh DataLoader with ``--workers`` workers:

- ``reference``: the RS5M ``dataloader.py`` design (rs5m-reference section 8.3):
  ``wds.WebDataset(urls).shuffle(10000).decode(decoder)`` where the decoder PIL-opens ``.img_content``
  and applies the OpenAI CLIP transform, then ``torch DataLoader(batch_size=400)`` default collate;
- ``ours``: ``make_loader`` defaults (JPEG draft decoding on);
- ``ours-exact``: ``make_loader(draft=False)``, bit-identical to the reference tensors;
- ``ours-uint8``: ``make_loader(normalize=False)``, uint8 batches to be normalised on the GPU.

Images/s per core = images/s / workers ("wall", as the issue defines it; "first" is the time to the
first batch, worker start-up included, and "steady" excludes it) and images per CPU-second of the main
process plus workers (robust when other jobs share the cores).

Usage: ``python bench/loader.py [--images N] [--workers W] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import gc
import glob
import io
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader

from rs5m.config import PackageConfig
from rs5m.shards import Sample, expand_urls, make_loader, reference_clip_transform, write_shards

VARIANTS: dict[str, dict[str, bool]] = {
    "ours": {},
    "ours-exact": {"draft": False},
    "ours-uint8": {"normalize": False},
}
SHARED = Path(os.environ.get("RS5M_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def source_images(n_distinct: int = 200) -> tuple[list[bytes], str]:
    """Encoded JPEGs to cycle through: WHU-RS19 if present, else generated 500x400 scenes."""
    files = sorted(glob.glob(str(SHARED / "whu-rs19" / "*" / "*.jpg")))
    if files:
        return [Path(f).read_bytes() for f in files], f"WHU-RS19 ({len(files)} real 600x600 JPEGs)"
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(n_distinct):
        low = rng.integers(0, 256, (25, 20, 3), dtype=np.uint8)
        img = Image.fromarray(low).resize((500, 400), Image.BICUBIC)
        noisy = np.clip(np.asarray(img, np.int16) + rng.integers(-20, 20, (400, 500, 3)), 0, 255)
        buf = io.BytesIO()
        Image.fromarray(noisy.astype(np.uint8)).save(buf, "JPEG", quality=90)
        blobs.append(buf.getvalue())
    return blobs, f"generated ({n_distinct} distinct 500x400 JPEGs)"


def build_shards(out: Path, n_images: int, n_shards: int) -> str:
    """Write ``n_images`` samples into ``n_shards`` rs5m-layout shards; return a description."""
    blobs, what = source_images()
    samples = (
        Sample(f"bench-{i:07d}", "bench", f"an aerial image number {i}", blobs[i % len(blobs)], "jpg")
        for i in range(n_images)
    )
    cfg = PackageConfig(n_shards=n_shards, fsync=False, layouts=["rs5m"])
    write_shards(samples, out, "pub11", "train", "rs5m", cfg, n_total=n_images)
    return what


def reference_loader(urls: list[str], workers: int, batch_size: int) -> DataLoader:
    """The RS5M reference design, as in its dataloader.py."""
    preprocess = reference_clip_transform(224)

    def my_decoder(key: str, value: bytes) -> object:
        if key.endswith(".img_content"):
            return preprocess(Image.open(io.BytesIO(value)))
        if key.endswith(".img_name") or key.endswith(".caption"):
            return value.decode("utf-8")
        return None

    dataset = wds.WebDataset(urls, shardshuffle=False).shuffle(10000).decode(my_decoder)
    return DataLoader(dataset, num_workers=workers, batch_size=batch_size)


def batch_len(batch: object) -> int:
    """Number of images in a batch of either loader."""
    images = batch["img_content"] if isinstance(batch, dict) else batch[0]
    return int(images.shape[0])


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished (joined) children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_loader(make: Callable[[], DataLoader]) -> dict[str, float]:
    """Iterate one loader to the end; return images, first-batch and total wall seconds, CPU seconds.

    CPU seconds cover the main process and the DataLoader workers (joined when iteration ends), so
    images per CPU-second is a per-core rate that other load on the machine does not distort.
    """
    c0, t0 = cpu_seconds(), time.perf_counter()
    it: Iterator[object] = iter(make())
    first = next(it)
    t_first = time.perf_counter() - t0
    n_first = n = batch_len(first)
    for batch in it:
        n += batch_len(batch)
    total = time.perf_counter() - t0
    del it
    gc.collect()
    return {
        "images": n,
        "first_s": t_first,
        "total_s": total,
        "n_first": n_first,
        "cpu_s": cpu_seconds() - c0,
    }


def report(name: str, r: dict[str, float], workers: int) -> dict[str, float]:
    """Print one result line and return its derived rates."""
    steady_imgs = r["images"] - r["n_first"]
    steady = steady_imgs / max(r["total_s"] - r["first_s"], 1e-9) if steady_imgs else float("nan")
    overall = r["images"] / r["total_s"]
    per_cpu = r["images"] / r["cpu_s"]
    print(
        f"{name:11s} n={int(r['images'])} first={r['first_s']:5.2f}s total={r['total_s']:6.2f}s "
        f"wall/core: overall={overall / workers:6.1f}/s steady={steady / workers:6.1f}/s | "
        f"per CPU-s={per_cpu:6.1f} (cpu {r['cpu_s']:.1f}s)"
    )
    return {"overall": overall, "steady": steady, "per_cpu": per_cpu, "first": r["first_s"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=400)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1, help="timing rounds (configs interleaved)")
    ap.add_argument("--dir", type=Path, default=None, help="shard folder (default: a temp folder)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", module="webdataset")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="rs5m-bench-loader-") as tmp:
        out = args.dir or Path(tmp)
        t0 = time.perf_counter()
        what = build_shards(out, args.images, args.shards)
        urls = expand_urls(out)
        print(f"shards: {len(urls)} x ~{args.images // len(urls)} samples from {what}, "
              f"built in {time.perf_counter() - t0:.1f}s; workers={args.workers} batch={args.batch_size} "
              f"cpus={os.cpu_count()} torch={torch.__version__}")  # fmt: skip
        w, bs = args.workers, args.batch_size
        configs: dict[str, Callable[[], DataLoader]] = {"reference": lambda: reference_loader(urls, w, bs)}
        for name, extra in VARIANTS.items():
            configs[name] = partial(
                make_loader, urls, batch_size=bs, num_workers=w, shuffle_buffer=10000, **extra
            )
        for rnd in range(args.repeat):
            rates = {name: report(name, time_loader(make), w) for name, make in configs.items()}
            ref = rates["reference"]
            for name in VARIANTS:
                r = rates[name]
                print(
                    f"round {rnd + 1}: {name} / reference per core: wall overall "
                    f"{r['overall'] / ref['overall']:.2f}x, wall steady {r['steady'] / ref['steady']:.2f}x, "
                    f"per CPU-s {r['per_cpu'] / ref['per_cpu']:.2f}x; "
                    f"first batch {r['first']:.2f}s vs {ref['first']:.2f}s"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
