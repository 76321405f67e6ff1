"""``rs5m build``: run flow ``build-rs5m`` locally (Prefect's ephemeral API when no server is set).

Before Prefect or Dask start, and before the version is created: the config loads, the data root is a
writable folder, every input file opens with a known layout and every path the config names is there
(``rs5m.pipeline.preflight.require_inputs``), the lineage database reads, an external Dask scheduler
answers, and the version's build lock is free; each failure is one line (status 2). A Ctrl-C stops
the build within seconds and names the version to resume (``cli.interrupt``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from cli import preflight
from cli.commands._common import format_table, prefect_env, writable_root
from cli.interrupt import quiet_resource_tracker
from rs5m.config import load_build_config
from rs5m.core.locks import Holder, version_lock, waiting_message
from rs5m.lineage import store as lineage
from rs5m.pipeline.preflight import require_inputs
from rs5m.rs3.report import rs3_funnel_rows


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
    p.add_argument(
        "--wait-lock",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="when another build of this version is running, wait up to SECONDS for it (default: refuse)",
    )
    p.set_defaults(func=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in 0..604800")
    return value


def run(args: argparse.Namespace) -> int:
    """Validate the config first (clear errors), then run the flow and print the funnel."""
    if not Path(args.config).is_file():
        what = "is not a file" if Path(args.config).exists() else "does not exist"
        raise FileNotFoundError(f"config file {args.config} {what}")
    if args.root is not None:
        writable_root(args.root)  # named as typed (the loader takes it from the working directory)
    cfg = load_build_config(args.config, root=args.root, version=args.version, dask_address=args.dask_address)
    writable_root(cfg.root)  # Prefect's home and the log go under it
    require_inputs(cfg)  # every file opened and its layout known, every path there: before anything starts
    preflight.check_lineage(cfg.layout().data_root.lineage_db)
    if cfg.dask.address:
        preflight.check_scheduler(cfg.dask.address)
    if getattr(args, "interrupts", None) is not None:
        args.interrupts.message = (
            f"rs5m build: interrupted: version {cfg.version} is not complete; run `rs5m build` again with "
            f"--version {cfg.version} to resume it (finished partitions are kept)"
        )

    def waiting(holder: Holder | None) -> None:
        print(f"rs5m build: {waiting_message(cfg.version, holder, args.wait_lock)}", file=sys.stderr)

    # Taken here, before Prefect starts, so a refused build costs nothing and writes nothing; the flow
    # takes the same lock again (re-entrant in this process).
    with version_lock(cfg.root, cfg.version, wait_s=args.wait_lock, on_wait=waiting):
        rows = _run_flow(args, cfg.root, cfg.version)
    print(f"\nversion {cfg.version} built under {cfg.version_dir()}\n")
    print(format_table(rows))
    db = cfg.layout().data_root.lineage_db
    with lineage.named_errors(db), lineage.connect(db, read_only=True) as con:
        rs3 = rs3_funnel_rows(con, cfg.version)
    if rs3:
        print(f"\nRS3, version {cfg.version}")
        print(format_table(rs3))
    return 0


def _run_flow(args: argparse.Namespace, root: str, version: str) -> list[dict]:
    # The resolved version name: a `{now:...}` template must name the version this process has locked.
    prefect_env(root)
    quiet_resource_tracker()
    _worker_preload()
    flows = importlib.import_module("flows.build_rs5m")
    local_api = importlib.import_module("flows.local_api").local_api
    params = {"config": args.config, "root": args.root, "version": version, "dask_address": args.dask_address}
    params |= {
        "retry_failed": args.retry_failed,
        "base_version": args.base_version,
        "wait_lock": args.wait_lock,
    }
    if sys.stderr.isatty():
        os.environ.setdefault("RS5M_PROGRESS", "bar")  # live bars with rate and ETA per stage
    compose = importlib.import_module("flows._compose")
    try:
        with local_api():
            return flows.build_rs5m(**params)
    finally:
        compose.stop_terminal_bar()


def _worker_preload() -> None:
    """Dask worker processes started by this run load ``cli.dask_preload`` (a Ctrl-C does not kill them)."""
    import dask

    from cli.dask_preload import PRELOAD

    preloads = list(dask.config.get("distributed.worker.preload", []) or [])
    if PRELOAD not in preloads:
        dask.config.set({"distributed.worker.preload": [*preloads, PRELOAD]})
