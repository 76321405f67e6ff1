"""Benchmark dedup: pHash throughput vs imagededup, near-duplicate search recall, clustering at scale.

    python bench/dedup.py [--images DIR] [--rounds R] [--sizes 100000,1000000,5000000,1000000:10]
                          [--thresholds 8] [--recall-size 20000] [--imagededup-sizes 20000,100000]
                          [--imagededup-timeout 600] [--write-doc]
    python bench/dedup.py --method embedding [--emb-size 5000000] [--emb-subset 50000] [--emb-dim 512]
                          [--emb-parts synthetic,whu] [--write-doc]

``--method embedding`` runs bench/_dedup_embedding.py (see its docstring) and writes the ``## Dedup by
image embeddings`` section instead; the parts below are the pHash method's.

1. Hashing: images per CPU second in one process (so per core) on the same folder (WHU-RS19 from
   ../shared/data when present, else generated JPEGs): ours (``phash_bytes`` with JPEG draft decoding,
   exact mode, and draft + SHA-256) vs imagededup ``PHash().encode_images(num_enc_workers=0)``, which
   hashes in one Pool worker (its CPU time is counted). Best of R.
2. Recall: ``near_pairs`` vs brute force on ``--recall-size`` synthetic hashes with planted near pairs.
3. imagededup's own search: ``find_duplicates(encoding_map, num_dist_workers=0)`` (brute_force_cython)
   on the same kind of hashes, run in a child process killed after ``--imagededup-timeout`` seconds.
4. Clustering: ``cluster_duplicates`` on a synthetic table (uid, source, url, 64-hex sha256, phash) with
   5% URL duplicates, 5% content duplicates and 10% planted near duplicates, one child process per size
   so that peak RSS (``ru_maxrss``, input table included) belongs to that size alone.
Results go to bench/out/dedup.json; ``--write-doc`` replaces the ``## Dedup`` section of
docs/benchmarks.md with them (``--render JSON`` re-renders that section without measuring).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._dedup_report import markdown, write_section  # noqa: E402
from bench._dedup_synth import synthetic_hashes, synthetic_table  # noqa: E402
from rs5m.config import DedupConfig  # noqa: E402
from rs5m.pipeline.dedup.cluster import cluster_duplicates, phash_bytes, sha256_hex  # noqa: E402
from rs5m.pipeline.dedup.index import brute_force_pairs, near_pairs, plan_search  # noqa: E402

WHU = ROOT.parent / "shared" / "data" / "whu-rs19"
RESULTS = ROOT / "bench" / "out" / "dedup.json"


def _rss_mb() -> float:
    """Peak RSS of this process image (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process plus its reaped children (imagededup hashes in a Pool worker)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def child_cluster(n: int, threshold: int) -> dict:
    """Time ``cluster_duplicates`` at size ``n`` in this (fresh) process."""
    table = synthetic_table(n)
    rss_input = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    out = cluster_duplicates(table, DedupConfig(near_threshold=threshold))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    reasons = out.column("dup_reason").value_counts().to_pylist()
    plan = plan_search(n, threshold)
    return {
        "n": n,
        "threshold": threshold,
        "plan": f"{len(plan.widths)} blocks r={plan.radius}",
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "rss_input_mb": round(rss_input),
        "peak_rss_mb": round(_rss_mb()),
        "removed": {r["values"]: r["counts"] for r in reasons if r["values"] is not None},
    }


def child_imagededup(n: int, threshold: int) -> dict:
    """Time imagededup's ``find_duplicates`` on ``n`` synthetic hashes in this process."""
    from imagededup.methods import PHash

    logging.disable(logging.WARNING)
    h = synthetic_hashes(n, 0.10, 5)
    enc = {str(i): f"{int(v):016x}" for i, v in enumerate(h)}
    t0 = time.perf_counter()
    res = PHash(verbose=False).find_duplicates(
        encoding_map=enc, max_distance_threshold=threshold, num_dist_workers=0
    )
    wall = time.perf_counter() - t0
    theirs = {(int(a), int(b)) for a, dups in res.items() for b in dups if int(a) < int(b)}
    ours = set()
    for i, j in near_pairs(h, threshold):
        ours |= {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist(), strict=True)}
    same = [(a, b) for a, b in theirs if h[a] == h[b]]
    return {"n": n, "wall_s": round(wall, 1), "agree": ours == theirs - set(same), "pairs": len(theirs)}


def run_child(kind: str, n: int, threshold: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(n), str(threshold)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"n": n, "threshold": threshold, "timeout_s": timeout}
    return json.loads(done.stdout.strip().splitlines()[-1])


def image_folder(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if WHU.is_dir():
        return WHU
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    rng = np.random.default_rng(0)
    for i in range(300):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((600, 600), Image.Resampling.BICUBIC).save(
            folder / f"{i}.jpg", quality=90
        )
    return folder


def bench_hashing(folder: Path, rounds: int) -> dict[str, float]:
    """Images per CPU second, best of ``rounds``, for each variant on the same files."""
    from imagededup.methods import PHash

    logging.disable(logging.WARNING)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif"))
    variants = {
        "ours (draft 64)": lambda: [phash_bytes(f.read_bytes(), 64) for f in files],
        "ours (draft 64) + sha256": lambda: [
            (phash_bytes(d, 64), sha256_hex(d)) for d in map(Path.read_bytes, files)
        ],
        "ours (exact)": lambda: [phash_bytes(f.read_bytes()) for f in files],
        "imagededup encode_images": lambda: PHash(verbose=False).encode_images(
            image_dir=folder, recursive=True, num_enc_workers=0
        ),
    }
    best = dict.fromkeys(variants, 0.0)
    for _ in range(rounds):
        for name, fn in variants.items():
            c0 = _cpu_s()
            fn()
            best[name] = max(best[name], len(files) / (_cpu_s() - c0))
    return {"files": len(files), **{k: round(v, 1) for k, v in best.items()}}


def bench_variants(folder: Path, step: int = 1) -> dict:
    """Share of edited copies within t bits of their original; distinct-image pairs within t (evidence)."""
    from PIL import Image

    files = sorted(folder.rglob("*.jpg"))[::step]
    edits = {
        "JPEG q50": lambda im: im,
        "half size": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
        "2% crop": lambda im: im.crop(
            (im.width // 50, im.height // 50, im.width * 49 // 50, im.height * 49 // 50)
        ),
        "5% crop": lambda im: im.crop(
            (im.width // 20, im.height // 20, im.width * 19 // 20, im.height * 19 // 20)
        ),
    }
    orig, dists = [], {k: [] for k in edits}
    for f in files:
        img = Image.open(f).convert("RGB")
        orig.append(phash_bytes(f.read_bytes(), 64))
        for name, edit in edits.items():
            buf = io.BytesIO()
            edit(img).save(buf, "JPEG", quality=50 if name == "JPEG q50" else 90)
            dists[name].append((orig[-1] ^ phash_bytes(buf.getvalue(), 64)).bit_count())
    h = np.array(orig, dtype=np.uint64)
    pair = np.bitwise_count(h[:, None] ^ h[None, :])[np.triu_indices(len(h), 1)]
    out = {k: {t: float(np.mean(np.array(v) <= t)) for t in (4, 8, 10)} for k, v in dists.items()}
    out[f"distinct pairs (count of {len(pair)})"] = {t: int(np.sum(pair <= t)) for t in (4, 8, 10)}
    return {"images": len(files), "pairs": len(pair), "share_within": out}


def bench_recall(n: int, thresholds: list[int]) -> list[dict]:
    rows = []
    for t in thresholds:
        h = synthetic_hashes(n, 0.10, 11 + t, dists=np.arange(t + 3))  # planted up to 2 bits past t
        bi, bj = brute_force_pairs(h, t)
        truth = {(a, b) for a, b in zip(bi.tolist(), bj.tolist(), strict=True) if h[a] != h[b]}
        found = set()
        for i, j in near_pairs(h, t):
            found |= {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist(), strict=True)}
        rows.append(
            {"n": n, "threshold": t, "true_pairs": len(truth), "recall": len(found & truth) / len(truth)}
        )
    return rows


def _cases(sizes: str, thresholds: list[int]) -> list[tuple[int, int]]:
    """``N`` runs at every threshold, ``N:T`` at threshold T only."""
    out = []
    for item in filter(None, sizes.split(",")):
        n, _, t = item.partition(":")
        out += [(int(n), int(t))] if t else [(int(n), th) for th in thresholds]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="100000,1000000,5000000", help="N (every threshold) or N:T")
    ap.add_argument("--thresholds", default="8")
    ap.add_argument("--recall-size", type=int, default=20_000)
    ap.add_argument("--imagededup-sizes", default="20000,100000")
    ap.add_argument("--imagededup-timeout", type=float, default=600)
    ap.add_argument("--cluster-timeout", type=float, default=1800)
    ap.add_argument(
        "--parts", default="hashing,variants,recall,imagededup,cluster", help="which parts to run"
    )
    ap.add_argument("--write-doc", action="store_true")
    ap.add_argument("--render", help="only re-render the section from a results JSON of an earlier run")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--method", choices=["phash", "embedding"], default="phash")
    ap.add_argument("--emb-size", type=int, default=5_000_000)
    ap.add_argument("--emb-subset", type=int, default=50_000, help="partition rows = brute-force subset")
    ap.add_argument("--emb-dim", type=int, default=512)
    ap.add_argument("--emb-parts", default="synthetic,whu")
    ap.add_argument("--emb-timeout", type=float, default=1800)
    ap.add_argument("--emb-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.emb_child or args.method == "embedding":
        run_embedding(args)
        return
    if args.child:
        kind, n, t = args.child
        fn = child_cluster if kind == "cluster" else child_imagededup
        print(json.dumps(fn(int(n), int(t))))
        return
    res = json.loads(Path(args.render).read_text()) if args.render else run_all(args)
    section = markdown(res)
    print(section)
    if args.write_doc:
        write_section(ROOT / "docs" / "benchmarks.md", section)


def run_embedding(args: argparse.Namespace) -> None:
    """``--method embedding``: measure (or re-render), print the section, optionally write it."""
    from bench import _dedup_embedding as emb

    if args.emb_child:
        print(json.dumps(emb.child_synthetic(*args.emb_child)))
        return
    out = ROOT / "bench" / "out" / "dedup_embedding.json"
    if args.render:
        res = json.loads(Path(args.render).read_text())
    else:
        res = {"command": "python bench/dedup.py " + " ".join(sys.argv[1:]), "machine": _machine()}
        res["load_start"] = round(os.getloadavg()[0], 1)
        parts = set(args.emb_parts.split(","))
        if "synthetic" in parts:
            res["synthetic"] = emb.bench_synthetic(
                args.emb_size, args.emb_subset, args.emb_dim, args.emb_timeout
            )
            print(json.dumps(res["synthetic"]), flush=True)
        folder = Path(args.images) if args.images else WHU
        if "whu" in parts and folder.is_dir():
            res["whu"] = emb.bench_whu(folder, DedupConfig().near_threshold)
            print(json.dumps(res["whu"]), flush=True)
        elif "whu" in parts:
            res["whu"] = {"skipped": f"no images at {folder}"}
        res["load_end"] = round(os.getloadavg()[0], 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1))
    section = emb.markdown(res)
    print(section)
    if args.write_doc:
        write_section(ROOT / "docs" / "benchmarks.md", section, emb.TITLE)


def _machine() -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 30
    return f"{len(os.sched_getaffinity(0))} cores, {ram} GiB"


def run_all(args: argparse.Namespace) -> dict:
    """Run the selected parts; save the results to bench/out/dedup.json and return them."""
    thresholds = [int(t) for t in args.thresholds.split(",")]
    folder = image_folder(args.images)
    res: dict = {"command": "python bench/dedup.py " + " ".join(sys.argv[1:]), "rounds": args.rounds}
    res["machine"] = _machine()
    res["folder"] = "WHU-RS19 (600x600 JPEG)" if folder == WHU else str(folder)
    parts = set(args.parts.split(","))
    res["hashing"] = bench_hashing(folder, args.rounds) if "hashing" in parts else {}
    print(json.dumps(res["hashing"]), flush=True)
    res["variants"] = bench_variants(folder) if "variants" in parts else {}
    print(json.dumps(res["variants"]), flush=True)
    res["recall"] = bench_recall(args.recall_size, sorted({*thresholds, 10})) if "recall" in parts else []
    print(json.dumps(res["recall"]), flush=True)
    res["imagededup_threshold"] = thresholds[0]
    res["imagededup"], res["cluster"] = [], []
    for n in (int(s) for s in args.imagededup_sizes.split(",") if s and "imagededup" in parts):
        res["imagededup"].append(run_child("imagededup", n, thresholds[0], args.imagededup_timeout))
        print(json.dumps(res["imagededup"][-1]), flush=True)
    for n, t in _cases(args.sizes, thresholds) if "cluster" in parts else []:
        res["cluster"].append(run_child("cluster", n, t, args.cluster_timeout))
        print(json.dumps(res["cluster"][-1]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
