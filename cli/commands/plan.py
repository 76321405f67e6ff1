"""``rs5m plan``: forecast a build before it starts, or compare a built version's forecast with actuals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.commands._common import format_table
from rs5m.config import load_build_config
from rs5m.core.layout import DataRoot, VersionLayout
from rs5m.pipeline import forecast
from rs5m.pipeline.timing import actual_rates, timeline


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plan`` sub-command."""
    p = sub.add_parser("plan", help="forecast rows, hits, images, disk and hours of a build (or vs. actuals)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", help="a build config YAML to forecast")
    what.add_argument("--version", help="a built version: its forecast beside what it measured")
    p.add_argument("--root", default="data", help="data root of --version (default: ./data)")
    p.add_argument(
        "--workers", type=int, default=None, help="CPU workers (default: the config's dask.n_workers)"
    )
    p.add_argument("--gpus", type=int, default=1, help="GPUs scoring (default 1)")
    p.add_argument("--nodes", type=int, default=1, help="machines downloading (default 1)")
    p.add_argument("--rates", help="a rates YAML (default: the one shipped, see rs5m/pipeline/rates.yaml)")
    p.add_argument(
        "--timeline", action="store_true", help="with --version: when each partition of each stage ran"
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the forecast tables (per source, per stage)."""
    if min(args.workers or 1, args.gpus, args.nodes) < 0 or args.workers == 0 or args.nodes == 0:
        raise ValueError("--workers and --nodes must be >= 1, --gpus >= 0")
    rates = forecast.load_rates(args.rates)
    if args.config:
        if not Path(args.config).is_file():
            raise FileNotFoundError(f"config file {args.config} does not exist")
        cfg = load_build_config(args.config)
        workers = args.workers or cfg.dask.n_workers
        fc = forecast.forecast(forecast.count_rows(cfg), rates, workers, args.gpus, args.nodes)
        actual = None
    else:
        layout = DataRoot.of(args.root).version(args.version)
        if args.timeline:
            return _timeline(layout, args.format)
        if not layout.forecast_file.is_file():
            raise ValueError(f"version {args.version!r} has no forecast ({layout.forecast_file} is missing)")
        fc, actual = json.loads(layout.forecast_file.read_text(encoding="utf-8")), actual_rates(layout)
    sources, stages = forecast.source_rows(fc), forecast.stage_rows(fc, actual)
    if args.format == "json":
        print(json.dumps({"sources": sources, "stages": stages, "forecast": fc}, indent=2, default=str))
        return 0
    print(f"forecast for {fc['workers']} CPU workers, {fc['gpus']} GPUs, {fc['nodes']} download node(s); "
          f"rates: {rates.get('machine', 'shipped')}")  # fmt: skip
    print(format_table(sources))
    print()
    print(format_table(stages))
    return 0


def _timeline(layout: VersionLayout, fmt: str) -> int:
    events = timeline(layout)
    if not events:
        raise ValueError(
            f"version {layout.name!r} has no timing records (built before they existed, or reused)"
        )
    t0 = min(e["start"] for e in events)
    rows = [{"stage": e["stage"], "source": e["source"], "partition": e["partition"],
             "start s": round(e["start"] - t0, 1), "end s": round(e["end"] - t0, 1), "rows in": e["n_in"]}
            for e in events]  # fmt: skip
    print(json.dumps(rows, indent=2) if fmt == "json" else format_table(rows))
    return 0
