"""``rs5m fetch-metadata``: download the PUB11 metadata from where each source lives today.

rs5m fetch-metadata --dest pub11-metadata [--sources laion2b,wit] [--workers 4] [--dry-run]

Files land in the folders deployments/full.yaml reads; a rerun resumes and fetches nothing twice.
Gated Hugging Face repos (Re-LAION) need their terms accepted and ``HF_TOKEN`` set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.main import CliError

COLUMNS = ("source", "status", "size", "file", "from")


def register(subparsers: Any) -> None:
    """Add the ``fetch-metadata`` sub-command."""
    p = subparsers.add_parser(
        "fetch-metadata",
        help="download the PUB11 metadata files (HF hub / resumable HTTP) into the folders the build reads",
        description="Download the metadata of PUB11 sources from where they live today (see "
        "rs5m/fetch/catalogue.yaml); files are size/checksum-checked and recorded in "
        "<dest>/fetch-manifest.json.",
    )
    p.add_argument("--dest", type=Path, required=True, metavar="DIR", help="e.g. pub11-metadata")
    p.add_argument("--sources", metavar="A,B", help="comma-separated source names (default: all 11)")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="files fetched at once (default 4)")
    p.add_argument("--dry-run", action="store_true", help="list what would be fetched, with sizes")
    p.add_argument("--verify", action="store_true", help="re-hash files already present")
    p.add_argument(
        "--catalogue", type=Path, metavar="FILE", help="a catalogue YAML instead of the packaged one"
    )
    p.add_argument("--retries", type=int, metavar="N", help="resumed attempts after a dropped transfer (5)")
    p.set_defaults(func=run)


def human(n: int | None) -> str:
    """``n`` bytes as B/KB/MB/GB/TB with 3 significant digits; empty for unknown."""
    if n is None:
        return "?"
    value, unit = float(n), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{int(value)} B" if unit == "B" else f"{value:.3g} {unit}"


def _config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from rs5m.config.fetch import FetchConfig

    raw: dict[str, Any] = {"dest": str(args.dest), "workers": args.workers, "dry_run": args.dry_run}
    raw.update(verify=args.verify, catalogue=str(args.catalogue) if args.catalogue else None)
    raw["sources"] = [s.strip() for s in (args.sources or "").split(",") if s.strip()]
    if args.retries is not None:
        raw["retries"] = args.retries
    try:
        return FetchConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(f"--{first['loc'][0]}: {first['msg'].removeprefix('Value error, ')}") from exc


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as aligned text, left-aligned but for the size column."""
    cells = [[("" if r[c] is None else str(r[c])) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]

    def line(vals: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if c == "size" else v.ljust(w) for c, v, w in zip(COLUMNS, vals, widths, strict=True)
        ).rstrip()

    return "\n".join([line(list(COLUMNS)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _manual_lines(report: Any) -> list[str]:
    lines: list[str] = []
    seen: set[int] = set()
    for job in report.manual_missing:
        part = job.part
        if id(part) not in seen:
            seen.add(id(part))
            kind = "optional" if part.optional else "required"
            lines.append(f"{job.source} ({kind}, by hand): {part.instructions}: {part.page}")
        lines.append(f"  -> save as {report.dest / job.rel}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Fetch (or list), print one row per file, the manual steps and every failure as one line."""
    from rs5m.fetch.progress import make_progress
    from rs5m.fetch.run import fetch_metadata

    cfg = _config(args)
    report = fetch_metadata(cfg, progress_factory=make_progress)
    rows = [{**r, "size": human(r["size"])} for r in report.rows]
    if rows:
        print(table(rows))
    for line in _manual_lines(report):
        print(line)
    manifest = report.dest / "fetch-manifest.json"
    verb = "would fetch" if cfg.dry_run else "fetched"
    n_todo = report.count("to fetch") if cfg.dry_run else report.count("fetched")
    print(
        f"{verb} {n_todo} file(s) ({human(report.bytes_fetched) if not cfg.dry_run else 'sizes above'}), "
        f"{report.count('present')} already present, {len(report.manual_missing)} to place by hand, "
        f"{len(report.errors)} failed ({report.seconds:.1f} s); manifest {manifest}"
    )
    for line in report.errors:
        print(f"rs5m fetch-metadata: error: {line}", file=sys.stderr)
    if not report.errors and report.required_manual_missing():
        print(
            "rs5m fetch-metadata: error: required files are missing; place them as listed above",
            file=sys.stderr,
        )
    return report.exit_code()
