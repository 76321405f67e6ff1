"""``rs5m rate``: rate image-text pairs of a version in a local web page, or ``--report`` the ratings.

Serving draws (once) and stores a stratified sample, then serves it on 127.0.0.1 until Ctrl+C;
answers are in the lineage DuckDB store as soon as they are given. ``--report`` prints the
per-subset and per-source table, inter-rater agreement and audit shares, and saves ``report.txt``,
``report.json`` and ``ratings.csv`` under ``--out`` (default ``<root>/ratings/<version>``).
Exit status 0; bad input (unknown version or source, empty sample, busy port) is a one-line error (2).
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
from pathlib import Path

from cli.commands._common import format_table
from rs5m.core.layout import DataRoot, VersionLayout
from rs5m.core.schema import StageName
from rs5m.lineage import store as lineage
from rs5m.rating.sampling import AUDIT_STAGES, SUBSETS, SampleSpec, find_version_dir

DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``rate`` sub-command."""
    p = subparsers.add_parser(
        "rate",
        help="rate image-text pairs of a version in a browser, or print the rating report",
        description="Serve a local page for human ratings (Relevance & Detail, Hallucination, "
        "Fluency & Conciseness; 1-5) of a stratified sample of a version's pairs.",
    )
    p.add_argument("--root", type=Path, default=Path("data"), help="data root (default: ./data)")
    p.add_argument("--version", help="dataset version (default: the latest)")
    p.add_argument("--subset", choices=SUBSETS, default="pub11", help="pairs to rate (default pub11)")
    p.add_argument("--source", help="only this source (default: all, stratified by source)")
    p.add_argument("--audit", choices=AUDIT_STAGES, help="audit a filter: sample its kept and removed pairs")
    p.add_argument("--sample", type=int, default=100, dest="n", help="pairs to draw (default 100)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    p.add_argument("--report", action="store_true", help="print and save the report instead of serving")
    p.add_argument("--out", type=Path, help="report folder (default <root>/ratings/<version>)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="report print format")
    p.add_argument("--good-min", type=float, default=4.0, help="audit: good when every scale mean >= this")
    p.add_argument("--bad-max", type=float, default=2.0, help="audit: bad when any scale mean <= this")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve the rating page, or print and save the report."""
    from rs5m.rating.store import StoreBusy

    version = args.version or _latest(args.root)
    try:
        return _report(args, version) if args.report else _serve(args, version)
    except StoreBusy as exc:
        raise ValueError(str(exc)) from exc


def _latest(root: Path) -> str:
    db = DataRoot.of(root).lineage_db
    with lineage.named_errors(db), lineage.connect(db, read_only=True) as con:
        return lineage.latest_version(con)


def _check_source(vdir: Path, subset: str, source: str | None) -> None:
    if source is None:
        return
    stage = StageName.KEYWORD if subset == "pub11" else StageName.RS3_CAPTION
    known = sorted({src for src, _, _ in VersionLayout.of(vdir).outputs(stage)})
    if source not in known:
        raise ValueError(
            f"unknown source {source!r} for {subset} in version {vdir.name} "
            f"(known: {', '.join(known) or 'none'})"
        )


def _check_port(port: int) -> None:
    if not 1024 <= port <= 65535:
        raise ValueError(f"--port {port} is outside 1024..65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(f"port {port} on 127.0.0.1 is in use; pass another --port") from exc
            raise


def _serve(args: argparse.Namespace, version: str) -> int:
    import uvicorn

    from rs5m.rating import sessions
    from rs5m.rating.app import create_app
    from rs5m.rating.sampling import draw_sample
    from rs5m.rating.store import RatingStore

    vdir = find_version_dir(args.root, version)
    _check_source(vdir, args.subset, args.source)
    spec = SampleSpec(version, args.subset, args.source, args.audit, args.n, args.seed)
    spec.validate()
    _check_port(args.port)
    store = RatingStore(DataRoot.of(args.root).ratings_db)
    try:
        items = store.call(sessions.ensure_sample, spec, lambda: draw_sample(vdir, spec))
        note = f" (only {len(items)} available)" if len(items) < args.n else ""
        print(
            f"version {version}: {len(items)} pairs{note}, {spec.describe()}, seed {args.seed}, "
            f"sample {spec.sample_id}"
        )
        print(f"rate at http://127.0.0.1:{args.port}/ — answers are saved as you go; Ctrl+C stops the server")
        print(f"then: rs5m rate --report --root {args.root} --version {version}")
        uvicorn.run(
            create_app(store, spec, vdir, items), host="127.0.0.1", port=args.port, log_level="warning"
        )
    finally:
        store.close()
    return 0


def _report(args: argparse.Namespace, version: str) -> int:
    from rs5m.rating import report

    find_version_dir(args.root, version)
    db = DataRoot.of(args.root).ratings_db
    if not db.exists():
        raise ValueError(f"no ratings for version {version!r} yet (no {db})")
    with lineage.named_errors(db), lineage.open_waiting(db, read_only=True, wait_s=None) as con:
        data = report.build_report(con, version, args.good_min, args.bad_max)
        out = args.out or args.root / "ratings" / version
        n_csv = report.write_csv(con, version, out / "ratings.csv")
    text = _report_text(data, "table")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.txt").write_text(text + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    print(
        json.dumps(data, indent=2, default=str) if args.format == "json" else _report_text(data, args.format)
    )
    print(f"\nsaved {out / 'report.txt'}, {out / 'report.json'} and {out / 'ratings.csv'} ({n_csv} ratings)")
    return 0


def _report_text(data: dict, fmt: str) -> str:
    from rs5m.rating.report import display_rows, display_summary

    counts = f"{data['ratings']} ratings of {data['pairs']} pairs by {len(data['raters'])} rater(s)"
    head = f"version {data['version']}: {counts}"
    parts = [
        head,
        "",
        "Ratings (mean ± sample std, 1-5, 5 best)",
        format_table(display_summary(data["summary"]), fmt),
    ]
    parts += [
        "",
        "Inter-rater agreement (pairs with two or more raters)",
        format_table(display_rows(data["agreement"]), fmt),
    ]
    if data["audit"]:
        t = data["thresholds"]
        parts += ["", f"Filter audit (good: every scale mean >= {t['good_min']}; bad: any <= {t['bad_max']})"]
        parts.append(format_table(display_rows(data["audit"]), fmt))
    return "\n".join(parts)
