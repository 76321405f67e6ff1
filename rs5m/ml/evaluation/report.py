"""The results table in the layout of the RS5M README "All tasks" table, with the published rows.

Columns: ``model``, then the README's 21 metric columns in its order, then columns for datasets the
README does not have (e.g. ``WHU-RS19_acc``). Accuracies and recalls carry 2 decimals, SeLo metrics
6 (as in the README). Missing values are empty in CSV and ``-`` in Markdown.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rs5m.core.io import atomic_path, write_json

ZEROSHOT_COLUMNS = ["EuroSAT_acc", "RESISC45_acc", "AID_acc"]
SELO_METRICS = ["Rsu", "Rda", "Ras", "Rmi"]
RETRIEVAL_KEYS = [
    ("i2t_R@1", "retrieval-image2text-R@1"),
    ("i2t_R@5", "retrieval-image2text-R@5"),
    ("i2t_R@10", "retrieval-image2text-R@10"),
    ("t2i_R@1", "retrieval-text2image-R@1"),
    ("t2i_R@5", "retrieval-text2image-R@5"),
    ("t2i_R@10", "retrieval-text2image-R@10"),
    ("mean_recall", "retrieval-mean-recall"),
]


def retrieval_columns(dataset: str) -> list[str]:
    """The seven README column names of one retrieval dataset (lower-cased suffix)."""
    return [f"{col}-{dataset.lower()}" for _, col in RETRIEVAL_KEYS]


def selo_columns(dataset: str) -> list[str]:
    """``Selo_<metric>`` for AIR-SLT, ``Selo_<metric>-<name>`` for any other SeLo set."""
    suffix = "" if dataset == "AIR-SLT" else f"-{dataset}"
    return [f"Selo_{m}{suffix}" for m in SELO_METRICS]


TABLE_COLUMNS = [
    *ZEROSHOT_COLUMNS,
    *retrieval_columns("rsitmd"),
    *retrieval_columns("rsicd"),
    *selo_columns("AIR-SLT"),
]

# RS5M README "All tasks" (released checkpoints), reference §11.4
_PUBLISHED_VALUES = {
    "GeoRSCLIP-ViTB32 (published)": "61.40 72.74 74.42 17.92 34.96 46.02 14.12 41.46 57.52 35.33 12.17 28.45 "
    "38.61 9.31 26.51 41.28 26.06 0.755636 0.730925 0.258044 0.744670",
    "GeoRSCLIP-ViTH14 (published)": "67.47 73.83 76.33 23.45 42.92 53.32 18.01 44.60 59.96 40.38 14.27 29.55 "
    "40.44 11.38 30.80 44.41 28.48 0.759515 0.741806 0.256649 0.749430",
}
PUBLISHED_ROWS: list[dict[str, Any]] = [
    {"model": label, **dict(zip(TABLE_COLUMNS, map(float, values.split()), strict=True))}
    for label, values in _PUBLISHED_VALUES.items()
]


def result_row(label: str, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One table row from per-dataset results (``task``, ``dataset``, ``metrics``)."""
    row: dict[str, Any] = {"model": label}
    for res in results:
        name, metrics = res["dataset"], res["metrics"]
        if res["task"] == "zeroshot":
            row[f"{name}_acc"] = metrics["top1"]
        elif res["task"] == "retrieval":
            row.update(
                {
                    col: metrics[key]
                    for (key, _), col in zip(RETRIEVAL_KEYS, retrieval_columns(name), strict=True)
                }
            )
        elif res["task"] == "selo":
            row.update({col: metrics[m] for m, col in zip(SELO_METRICS, selo_columns(name), strict=True)})
        else:
            raise ValueError(f"unknown task {res['task']!r}")
    return row


def build_table(label: str, results: Sequence[dict[str, Any]], compare_published: bool = True) -> list[dict]:
    """Rows (ours first, then the published ones) over the README columns plus any extra columns."""
    ours = result_row(label, results)
    extra = [c for c in ours if c != "model" and c not in TABLE_COLUMNS]
    columns = ["model", *TABLE_COLUMNS, *extra]
    rows = [ours, *(PUBLISHED_ROWS if compare_published else [])]
    return [{c: row.get(c) for c in columns} for row in rows]


def _fmt(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6f}" if column.startswith("Selo_") else f"{value:.2f}"
    return str(value)


def table_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text of the table (header = column names)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = list(rows[0])
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_fmt(c, row[c]) for c in columns])
    return buf.getvalue()


def table_markdown(rows: Sequence[dict[str, Any]], drop_empty: bool = False) -> str:
    """Markdown table; ``drop_empty`` leaves out columns our row has no value for."""
    columns = list(rows[0])
    if drop_empty:
        columns = [c for c in columns if c == "model" or rows[0][c] is not None]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(c, row[c]) or "-" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: str | os.PathLike[str], rows: Sequence[dict[str, Any]], details: dict
) -> dict[str, str]:
    """Write ``results.csv``, ``results.md`` and ``results.json`` atomically; return their paths."""
    out = Path(out_dir)
    paths = {"csv": out / "results.csv", "markdown": out / "results.md", "json": out / "results.json"}
    for key, text in (("csv", table_csv(rows)), ("markdown", table_markdown(rows))):
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text, encoding="utf-8")
    write_json(paths["json"], _finite({**details, "columns": list(rows[0]), "table": list(rows)}))
    return {k: str(v) for k, v in paths.items()}


def _finite(obj: Any) -> Any:
    """Replace NaN/inf by ``None`` so the JSON stays standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def format_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows with every value formatted as in the CSV (for UI artifacts)."""
    return [{c: _fmt(c, v) for c, v in row.items()} for row in rows]
