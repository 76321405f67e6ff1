"""``rs5m inputs check``: the pre-flight check of a build config's inputs (no Prefect, no Dask)."""

from __future__ import annotations

import argparse
import json
import os

from cli.commands._common import format_table
from rs5m.config import load_build_config
from rs5m.pipeline.preflight import InputsReport, check_inputs


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``inputs`` sub-command (``inputs check``)."""
    p = sub.add_parser("inputs", help="check a build's input files before building")
    actions = p.add_subparsers(dest="inputs_command", required=True)
    c = actions.add_parser(
        "check",
        help="open every input file, recognise its layout, check options and paths; exit 2 on problems",
    )
    c.add_argument("--config", required=True, help="build config YAML (e.g. deployments/full.yaml)")
    c.add_argument("--format", choices=["table", "json"], default="table")
    c.add_argument(
        "--rows-per-piece",
        type=int,
        help="rows per partition when splitting big files (default: the config's ingest.rows_per_partition)",
    )
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 when every input is usable, 2 when any problem was found."""
    cfg = load_build_config(args.config)
    report = check_inputs(cfg, args.rows_per_piece)
    print(json.dumps(report.to_dict(), indent=2) if args.format == "json" else render(report))
    return 0 if report.ok else 2


def render(report: InputsReport) -> str:
    """The report as text: a table per source, then every problem."""
    out: list[str] = []
    for s in report.sources:
        rows = s.rows()
        head = f"{s.name}: {len(s.files)} file(s), layout {', '.join(s.layouts()) or '-'}"
        head += f", {rows:,} rows" if rows is not None else ""
        out.append(head)
        if s.files:
            table = [
                {
                    "file": os.path.basename(f.path),
                    "layout": f.layout or "-",
                    "rows": f"~{f.rows:,}" if f.estimated and f.rows is not None else f.rows,
                    "size": _size(f.size),
                    "pieces": f.pieces,
                    "problem": f.problem or "",
                }
                for f in s.files
            ]
            out.append("  " + format_table(table).replace("\n", "\n  "))
        out.append("")
    if report.problems:
        out.append(f"{len(report.problems)} problem(s):")
        out += [f"  - {p}" for p in report.problems]
    else:
        out.append(f"all inputs ok ({report.seconds:.1f} s)")
    return "\n".join(out)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""
