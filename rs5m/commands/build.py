"""``rs5m build``: run flow ``build-rs5m`` locally (Prefect's ephemeral API when no server is set)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from rs5m import lineage
from rs5m.commands._common import format_table, prefect_env
from rs5m.config import load_build_config
from rs5m.rs3.report import rs3_funnel_rows
from rs5m.stages import plan_inputs


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``build`` sub-command."""
    p = sub.add_parser("build", help="build a dataset version (runs flow build-rs5m)")
    p.add_argument("--config", required=True, help="build config YAML (e.g. deployments/sample.yaml)")
    p.add_argument("--root", help="data root (default: the config's root)")
    p.add_argument("--version", help="dataset version name (default: the config's version)")
    p.add_argument("--dask-address", help="address of an existing Dask scheduler (default: a LocalCluster)")
    p.add_argument(
        "--retry-failed", action="store_true", help="re-download only rows that failed transiently"
    )
    p.add_argument(
        "--base-version", help="incremental: reuse this version's work for unchanged inputs ('latest')"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate the config first (clear errors), then run the flow and print the funnel."""
    if not Path(args.config).is_file():
        raise FileNotFoundError(f"config file {args.config} does not exist")
    cfg = load_build_config(args.config, root=args.root, version=args.version, dask_address=args.dask_address)
    plan_inputs(cfg)  # every glob matches something: a clear error before any run starts
    prefect_env(cfg.root)
    flows = importlib.import_module("flows.build_rs5m")
    local_api = importlib.import_module("flows.local_api").local_api
    params = flows.BuildParams(
        config=args.config,
        root=args.root,
        version=args.version,
        dask_address=args.dask_address,
        retry_failed=args.retry_failed,
        base_version=args.base_version,
    )
    with local_api():
        rows = flows.build_rs5m(params)
    print(f"\nversion {cfg.version} built under {cfg.version_dir()}\n")
    print(format_table(rows))
    with lineage.connect(Path(cfg.root) / "lineage.duckdb", read_only=True) as con:
        rs3 = rs3_funnel_rows(con, cfg.version)
    if rs3:
        print(f"\nRS3, version {cfg.version}")
        print(format_table(rs3))
    return 0
