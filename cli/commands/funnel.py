"""``rs5m funnel``: the PUB11 table (or removal reasons, keyword hits, failing hosts) of a dataset version."""

from __future__ import annotations

import argparse

from cli.commands._common import format_table
from rs5m.core.layout import DataRoot
from rs5m.lineage import store as lineage
from rs5m.lineage.compare import DEFAULT_FLAG_POINTS, compare_funnel, flagged
from rs5m.rs3.report import geometa_rows, rs3_funnel_rows


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``funnel`` sub-command."""
    p = sub.add_parser("funnel", help="print the PUB11 funnel of a dataset version")
    p.add_argument("--root", default="data", help="data root (default: ./data)")
    p.add_argument("--version", help="dataset version (default: the latest)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reasons", action="store_true", help="removal reasons per source and stage")
    group.add_argument("--keywords", action="store_true", help="hit counts per keyword")
    group.add_argument("--hosts", action="store_true", help="image hosts with the most failed downloads")
    group.add_argument("--rs3", action="store_true", help="the RS3 table (files read, captioned, failed)")
    group.add_argument("--geometa", action="store_true", help="PUB11 meta-caption and place-name coverage")
    p.add_argument("--top", type=int, default=20, help="with --hosts: how many hosts (default 20)")
    group.add_argument(
        "--compare", choices=["rs5m"], help="stage rates beside RS5M's published ones, difference in points"
    )
    p.add_argument(
        "--flag-points", type=float, default=DEFAULT_FLAG_POINTS,
        help=f"with --compare: flag differences beyond this many points (default {DEFAULT_FLAG_POINTS:g})",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the requested table from the lineage database (read-only)."""
    rs3: list = []
    db = DataRoot.of(args.root).lineage_db
    with lineage.named_errors(db), lineage.connect(db, read_only=True) as con:
        version = args.version or lineage.latest_version(con)
        lineage.require_version(con, version, str(args.root))  # never an empty table for a typo
        if args.reasons:
            rows = lineage.reason_rows(con, version)
        elif args.keywords:
            rows = lineage.keyword_rows(con, version)
        elif args.hosts:
            rows = lineage.host_rows(con, version, args.top)
        elif args.rs3:
            rows = rs3_funnel_rows(con, version)
        elif args.geometa:
            rows = geometa_rows(con, version)
        elif args.compare:
            rows = compare_funnel(lineage.funnel_rows(con, version), args.flag_points)
        else:
            rows = lineage.funnel_rows(con, version)
            rs3 = rs3_funnel_rows(con, version) if args.format == "table" else []
    if args.format == "table":
        print(f"version {version}")
    print(format_table(rows, args.format))
    if args.compare and args.format == "table":
        print(
            f"\n{len(flagged(rows))} rates differ from RS5M's by more than {args.flag_points:g} points "
            "(flag !); rates and their denominators: rs5m/lineage/compare.py"
        )
    if (
        args.format == "table"
        and not (args.reasons or args.keywords or args.hosts or args.rs3 or args.geometa or args.compare)
        and rs3
    ):
        print(f"\nRS3, version {version}")
        print(format_table(rs3, "table"))
    return 0
