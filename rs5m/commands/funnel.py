"""``rs5m funnel``: the PUB11 table (or removal reasons / keyword hits) of a dataset version."""

from __future__ import annotations

import argparse
from pathlib import Path

from rs5m import lineage
from rs5m.commands._common import format_table


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``funnel`` sub-command."""
    p = sub.add_parser("funnel", help="print the PUB11 funnel of a dataset version")
    p.add_argument("--root", default="data", help="data root (default: ./data)")
    p.add_argument("--version", help="dataset version (default: the latest)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reasons", action="store_true", help="removal reasons per source and stage")
    group.add_argument("--keywords", action="store_true", help="hit counts per keyword")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the requested table from the lineage database (read-only)."""
    with lineage.connect(Path(args.root) / "lineage.duckdb", read_only=True) as con:
        version = args.version or lineage.latest_version(con)
        if args.reasons:
            rows = lineage.reason_rows(con, version)
        elif args.keywords:
            rows = lineage.keyword_rows(con, version)
        else:
            rows = lineage.funnel_rows(con, version)
    if args.format == "table":
        print(f"version {version}")
    print(format_table(rows, args.format))
    return 0
