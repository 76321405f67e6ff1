"""``rs5m loader-check``: smoke-check a version's shards with the training loader, layout by layout.

For each layout under ``versions/<v>/package/`` it optionally verifies the manifest (sizes and sha256),
then reads up to ``--batches`` batches of ``<subset>-<split>-*.tar`` with ``rs5m.shards.make_loader``
and prints batch shapes and images/s. Exit status 1 when a layout yields no batch or fails to verify.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rs5m.core.layout import DataRoot, VersionLayout
from rs5m.lineage import store as lineage
from rs5m.lineage.versions import version_dir
from rs5m.shards import LAYOUTS, read_manifest, verify_manifest


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``loader-check`` sub-command."""
    p = sub.add_parser("loader-check", help="read a few batches of each packaged layout with the loader")
    p.add_argument("--root", default="data", help="data root (default: ./data)")
    p.add_argument("--version", help="dataset version (default: the latest)")
    p.add_argument("--subset", default="pub11")
    p.add_argument("--split", default="train", choices=["train", "val"])
    p.add_argument("--batches", type=int, default=4, help="batches to read per layout (4)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (2)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--verify", action="store_true", help="re-hash every shard against the manifest first")
    p.set_defaults(func=run)


def check_layout(shard_dir: Path, pattern: str, args: argparse.Namespace) -> dict[str, Any]:
    """Read up to ``args.batches`` batches from ``shard_dir/pattern``; return counts, shapes, speed."""
    from rs5m.shards import make_loader  # torch loads only when a check actually runs

    loader = make_loader(
        str(shard_dir / pattern),
        batch_size=args.batch_size,
        num_workers=args.workers,
        shuffle_buffer=0,
        image_size=args.image_size,
        pin_memory=False,
    )
    start = time.perf_counter()
    n_batches = n_images = 0
    shapes: set[tuple[int, ...]] = set()
    first_s = None
    for images, texts in loader:
        if first_s is None:
            first_s = time.perf_counter() - start
        if len(texts) != images.shape[0]:
            raise ValueError(f"{shard_dir.name}: batch of {images.shape[0]} images has {len(texts)} captions")
        n_batches += 1
        n_images += images.shape[0]
        shapes.add(tuple(images.shape))
        if n_batches >= args.batches:
            break
    wall = time.perf_counter() - start
    return {"batches": n_batches, "images": n_images, "shapes": sorted(shapes), "wall_s": wall,
            "first_batch_s": first_s, "images_per_s": n_images / wall if wall > 0 else 0.0}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Check every layout of the version's package folder; print one line per layout."""
    if args.batches < 1 or args.batch_size < 1 or args.workers < 0:
        raise ValueError("--batches and --batch-size must be >= 1, --workers >= 0")
    version = args.version
    if version is None:
        db = DataRoot.of(args.root).lineage_db
        with lineage.named_errors(db), lineage.connect(db, read_only=True) as con:
            version = lineage.latest_version(con)
    package = VersionLayout.of(version_dir(args.root, version)).package_dir()
    layouts = [name for name in LAYOUTS if (package / name / "manifest.json").is_file()]
    if not layouts:
        raise ValueError(f"version {version!r} has no packaged shards under {package}")
    pattern = f"{args.subset}-{args.split}-*.tar"
    failed = False
    print(f"version {version}: {pattern}, batch size {args.batch_size}, {args.workers} workers")
    for layout in layouts:
        shard_dir = package / layout
        n_shards = sum(
            1
            for s in read_manifest(shard_dir)["shards"]
            if s["subset"] == args.subset and s["split"] == args.split
        )
        if args.verify:
            problems = verify_manifest(shard_dir)
            if problems:
                print(f"{layout}: manifest check FAILED: " + "; ".join(problems[:5]))
                failed = True
                continue
        if n_shards == 0:
            print(f"{layout}: no {pattern} shards")
            failed = True
            continue
        r = check_layout(shard_dir, pattern, args)
        shapes = ", ".join("x".join(map(str, s)) for s in r["shapes"])
        print(
            f"{layout}: {n_shards} shards, {r['batches']} batches, {r['images']} images [{shapes}] in "
            f"{r['wall_s']:.2f} s = {r['images_per_s']:.0f} img/s "
            f"(first batch {r['first_batch_s'] or 0:.2f} s)" + (", manifest verified" if args.verify else "")
        )
        failed |= r["batches"] == 0
    return 1 if failed else 0
