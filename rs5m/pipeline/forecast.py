"""Forecast a build before it starts (``rs5m plan``) and compare it with what the build measured.

``count_rows`` sizes every planned input cheaply: parquet footers and SQLite rowid ranges are exact; plain
and compressed text, and JSON documents, are estimated from a sample of the file (marked ``~``).
``forecast`` turns those rows into expected keyword hits, URLs, images, disk and hours per stage with RS5M's
own funnel shares (``rs5m.core.published``) and the throughputs of ``rates.yaml``. Actual
per-partition timings are recorded by ``rs5m.pipeline.timing``; ``compare`` puts both side by side.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.resources
import sqlite3
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from rs5m.config import BuildConfig
from rs5m.core.published import funnel_shares
from rs5m.pipeline.plan import InputFile, plan_inputs

SAMPLE_BYTES = 1 << 20


def load_rates(path: str | Path | None = None) -> dict[str, Any]:
    """The rates file: ``path``, or the one shipped with the package."""
    if path is not None:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    text = importlib.resources.files("rs5m.pipeline").joinpath("rates.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class InputSize:
    """Rows of one input: exact, or estimated from a sample (``exact`` False)."""

    source: str
    path: str
    kind: str  # parquet | sqlite | tsv | json | compressed_text
    rows: int
    exact: bool
    size: int


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".sql", ".sqlite", ".db")):
        return "sqlite"
    if name.endswith((".bz2", ".gz", ".zip", ".tar.gz", ".tgz")):
        return "compressed_text"
    if name.endswith(".json"):
        return "json"
    return "tsv"


def _sample(path: Path, size: int) -> tuple[bytes, float]:
    """The first MiB of decoded text and the decoded size of the whole file, estimated."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            with zf.open(infos[0]) as f:
                return f.read(SAMPLE_BYTES), float(sum(i.file_size for i in infos))
    opener = {".bz2": bz2.open, ".gz": gzip.open, ".tgz": gzip.open}.get(suffix)
    if opener is None:
        with open(path, "rb") as f:
            return f.read(SAMPLE_BYTES), float(size)
    with open(path, "rb") as raw, opener(raw) as f:
        data = f.read(SAMPLE_BYTES)
        return data, len(data) / max(raw.tell(), 1) * size


def _sample_rows(path: Path, kind: str, size: int) -> int:
    """Rows estimated from the newlines (or URLs in a JSON document) in the first MiB of decoded text."""
    data, decoded = _sample(path, size)
    if not data:
        return 0
    json_doc = data.lstrip()[:1] in (b"{", b"[") and b"\n" not in data[:4096]
    unit = data.count(b"http") if kind == "json" or json_doc else data.count(b"\n")
    return int(unit / len(data) * decoded)


def size_input(item: InputFile) -> InputSize:
    """Rows of one planned input (see the module docstring for which are exact)."""
    path = Path(item.path)
    kind, size = _kind(path), path.stat().st_size
    if kind == "parquet":
        return InputSize(item.source, item.path, kind, pq.ParquetFile(path).metadata.num_rows, True, size)
    if kind == "sqlite":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            table = con.execute("SELECT name FROM sqlite_master WHERE type='table' LIMIT 1").fetchone()
            lo, hi = (
                con.execute(f'SELECT min(rowid), max(rowid) FROM "{table[0]}"').fetchone()
                if table
                else (0, -1)
            )
        return InputSize(item.source, item.path, kind, (hi - lo + 1) if hi is not None else 0, False, size)
    return InputSize(item.source, item.path, kind, _sample_rows(path, kind, size), False, size)


def count_rows(cfg: BuildConfig) -> list[InputSize]:
    """The size of every planned input of ``cfg``."""
    return [size_input(item) for item in plan_inputs(cfg)]


def _hours(work: float, rate: float | None, parallel: int) -> float | None:
    return None if not rate else work / (rate * max(parallel, 1)) / 3600


def forecast(
    sizes: list[InputSize], rates: dict[str, Any], workers: int, gpus: int, nodes: int = 1
) -> dict[str, Any]:
    """Per source: rows, hits, downloads, kept; per stage: work, hours and disk, for ``workers`` CPU
    workers (cores), ``gpus`` GPUs and ``nodes`` download nodes."""
    by_source: dict[str, dict[str, float]] = {}
    cpu_s = 0.0
    for s in sizes:
        row = by_source.setdefault(s.source, {"rows": 0, "exact": True})
        row["rows"] += s.rows
        row["exact"] = row["exact"] and s.exact
        cpu_s += s.rows / rates["ingest_rows_per_cpu_s"][s.kind]
    for source, row in by_source.items():
        f = funnel_shares(source)
        row["hits"] = row["rows"] * f["hit"]
        row["downloaded"] = row["hits"] * f["download"]
        pool = row["downloaded"] * (1 - f["invalid"] - f["duplicate"])
        row["kept"] = pool * (1 - f["outlier"])
    hits = sum(r["hits"] for r in by_source.values())
    images = sum(r["downloaded"] for r in by_source.values())
    stages = [
        {
            "stage": "ingest+keyword",
            "work": sum(r["rows"] for r in by_source.values()),
            "unit": "rows",
            "hours": cpu_s / max(workers, 1) / 3600,
            "disk_gb": hits * rates["bytes_per_candidate_row"] / 1e9,
        },
        {
            "stage": "download",
            "work": hits,
            "unit": "urls",
            "hours": _hours(hits, rates["download_urls_per_s_per_node"], nodes),
            "disk_gb": images * rates["bytes_per_image"] / 1e9,
        },
        {
            "stage": "validity",
            "work": images,
            "unit": "images",
            "hours": _hours(images, rates["validity_images_per_cpu_s"], workers),
            "disk_gb": 0.0,
        },
        {
            "stage": "outlier_score",
            "work": images,
            "unit": "images",
            "hours": _hours(images, rates["scoring_images_per_gpu_s"], gpus),
            "disk_gb": images * 2048 / 1e9,
        },
    ]
    return {"sources": by_source, "stages": stages, "workers": workers, "gpus": gpus, "nodes": nodes}


def source_rows(fc: dict[str, Any]) -> list[dict[str, Any]]:
    """The forecast's per-source table (rows are ``~`` when estimated)."""
    out = []
    for source, r in fc["sources"].items():
        out.append(
            {
                "source": source,
                "rows": ("" if r["exact"] else "~") + f"{int(r['rows']):,}",
                "hits": round(r["hits"]),
                "downloaded": round(r["downloaded"]),
                "kept": round(r["kept"]),
            }
        )
    return out


def stage_rows(fc: dict[str, Any], actual: dict[str, dict[str, float]] | None = None) -> list[dict[str, Any]]:
    """The forecast's per-stage table; with ``actual`` (``rs5m.pipeline.timing.actual_rates``), beside it."""
    out = []
    for s in fc["stages"]:
        row = {
            "stage": s["stage"],
            "work": f"{int(s['work']):,} {s['unit']}",
            "hours": "not measured" if s["hours"] is None else round(s["hours"], 2),
            "disk GB": round(s["disk_gb"], 2),
        }
        if actual is not None:
            got = actual.get(s["stage"])
            row["actual hours"] = round(got["wall_s"] / 3600, 3) if got else None
            row["actual rate/s"] = round(got["rate"], 1) if got else None
        out.append(row)
    return out
