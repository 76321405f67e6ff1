"""``rs5m sample --out DIR``: write the embedded sample PUB11 world (see ``rs5m.sample``).

Prints one line per source (amount, rows rejected at ingest, keyword hits, files) and the build config
to run next. Exit status 0 on success; a bad ``--real-data`` or ``--port`` is a one-line error (2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rs5m.core.schema import DISPLAY_NAMES
from rs5m.sample import DEFAULT_PORT, write_world
from rs5m.sample.rs3 import write_rs3_world


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``sample`` sub-command."""
    p = subparsers.add_parser(
        "sample",
        help="write the sample PUB11 world (real metadata formats, local images, expected counts)",
        description="Write a miniature PUB11 world: metadata of all 11 sources in their official formats, "
        "images served from 127.0.0.1, build.yaml and expected.json (the planted answers).",
    )
    p.add_argument("--out", required=True, type=Path, help="folder to write the world into")
    p.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same bytes; default 0)")
    p.add_argument(
        "--real-data",
        type=Path,
        default=None,
        help="optional folder like ../shared/data: real WHU-RS19 images and RSITMD/RS3 captions",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of the local image server written into the URLs (default {DEFAULT_PORT})",
    )
    p.set_defaults(func=run)


def _n(entry: object) -> str:
    if isinstance(entry, dict) and "listed" in entry:
        return f"{entry['listed']} items ({entry.get('ok', '?')} readable)"
    return "written"


def run(args: argparse.Namespace) -> int:
    """Write the world and print the per-source summary."""
    if args.real_data is not None and not args.real_data.is_dir():
        raise FileNotFoundError(f"--real-data {args.real_data} is not a folder")
    if not 1024 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is outside 1024..65535")
    expected = write_world(args.out, seed=args.seed, real_data=args.real_data, port=args.port)
    row = "{:<10} {:>6} {:>8} {:>5} {:>5}  {}"
    print(row.format("source", "amount", "rejected", "kept", "hits", "files"))
    for name, e in expected["sources"].items():
        rejected = sum(e["rejected"].values())
        print(
            row.format(
                DISPLAY_NAMES[name],
                e["amount"],
                rejected,
                e["kept"],
                e["keyword_hits"],
                ", ".join(e["files"]),
            )
        )
    t = expected["totals"]
    images = f"({t['images']} images under {args.out / 'images'})"
    print(row.format("Total", t["amount"], sum(t["rejected"].values()), t["kept"], t["keyword_hits"], images))
    rs3 = write_rs3_world(args.out / "rs3", seed=args.seed, real_data=args.real_data)
    counts = {k: v for k, v in rs3.items() if k in ("fmow", "ben", "millionaid")}
    print(f"RS3 world under {args.out / 'rs3'}: " + ", ".join(f"{k} {_n(v)}" for k, v in counts.items()))
    print(f"wrote {args.out / 'build.yaml'} and {args.out / 'expected.json'}")
    return 0
