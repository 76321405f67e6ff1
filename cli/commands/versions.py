"""``rs5m versions list`` and ``rs5m versions diff A B``: dataset versions and what changed between two."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.commands._common import format_table
from rs5m.core.layout import DataRoot
from rs5m.lineage import store as lineage
from rs5m.lineage.versions import diff_versions, list_versions


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``versions`` sub-command with its ``list`` and ``diff`` actions."""
    p = sub.add_parser("versions", help="list dataset versions, or diff two of them")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="every version with status, config hash and counts")
    ls.add_argument("--root", default="data", help="data root (default: ./data)")
    ls.add_argument("--format", choices=["table", "csv", "json"], default="table")
    ls.set_defaults(func=run_list)
    diff = actions.add_parser("diff", help="stage counts side by side, and samples added / removed")
    diff.add_argument("a", help="the older version")
    diff.add_argument("b", help="the newer version")
    diff.add_argument("--root", default="data", help="data root (default: ./data)")
    diff.add_argument("--show", type=int, default=20, metavar="N", help="list up to N uids each way (20)")
    diff.add_argument("--all-rows", action="store_true", help="also show stages whose count did not change")
    diff.add_argument("--format", choices=["table", "json"], default="table")
    diff.set_defaults(func=run_diff)


def run_list(args: argparse.Namespace) -> int:
    """Print one row per version."""
    with lineage.named_errors(DataRoot.of(args.root).lineage_db):
        rows = list_versions(args.root)
    if not rows and args.format == "table":
        print(f"no versions under {args.root}")
        return 0
    print(format_table(rows, args.format))
    return 0


def _side(title: str, side: dict[str, Any], why: str) -> list[str]:
    by_source = ", ".join(f"{s} {n}" for s, n in sorted(side["by_source"].items()))
    lines = [f"{title}: {side['n']}" + (f" ({by_source})" if by_source else "")]
    if side["uids"]:
        rows = [{"uid": u["uid"], "source": u["source"], why: u["reason"]} for u in side["uids"]]
        lines.append(format_table(rows))
        if side["n"] > len(rows):
            lines.append(f"... {side['n'] - len(rows)} more (use --show)")
    return lines


def run_diff(args: argparse.Namespace) -> int:
    """Print the count table, then the added and removed samples with why the other version dropped them."""
    if args.show < 0:
        raise ValueError(f"--show must be >= 0, got {args.show}")
    with lineage.named_errors(DataRoot.of(args.root).lineage_db):
        res = diff_versions(args.root, args.a, args.b, limit=args.show)
    if args.format == "json":
        print(json.dumps(res, indent=2, default=str))
        return 0
    a, b = args.a, args.b
    print(f"versions {a} -> {b}   keep rule: {res['keep_rule'][a]} -> {res['keep_rule'][b]}")
    counts = [r for r in res["counts"] if args.all_rows or r["delta"] != 0]
    table = [{"subset": r["subset"], "stage": r["stage"], "source": r["source"], f"{a} n_out": r["a"],
              f"{b} n_out": r["b"], "delta": r["delta"]} for r in counts]  # fmt: skip
    print(format_table(table) if table else "(no stage count changed)")
    print()
    print("\n".join(_side(f"added (kept in {b}, not in {a})", res["added"], f"dropped in {a} by")))
    print("\n".join(_side(f"removed (kept in {a}, not in {b})", res["removed"], f"dropped in {b} by")))
    return 0
