"""``rs5m why UID``: every recorded decision for one sample."""

from __future__ import annotations

import argparse
import json

from rs5m.core.layout import DataRoot
from rs5m.lineage import store as lineage
from rs5m.lineage.why import why


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``why`` sub-command."""
    p = sub.add_parser("why", help="show every decision recorded for one sample uid")
    p.add_argument("uid")
    p.add_argument("--root", default="data", help="data root (default: ./data)")
    p.add_argument("--version", help="dataset version (default: the latest)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the decisions as indented JSON lines, one per stage."""
    version = args.version
    if version is None:
        db = DataRoot.of(args.root).lineage_db
        with lineage.named_errors(db), lineage.connect(db, read_only=True) as con:
            version = lineage.latest_version(con)
    vdir = DataRoot.of(args.root).version(version).dir
    if not vdir.is_dir():
        raise FileNotFoundError(f"no version folder {vdir}")
    decisions = why(vdir, args.uid)
    print(f"{args.uid} in version {version}")
    for decision in decisions:
        print(json.dumps(decision, ensure_ascii=False, default=str))
    return 0
