"""Training metrics: one JSON line per logged step, and the loss-curve PNG drawn from them.

``metrics.jsonl`` rows hold ``step``, ``epoch``, ``loss``, ``lr``, ``samples_per_s``, ``logit_scale``
and ``time``. A resumed run first drops rows past its checkpoint's step, so the file always
describes one continuous run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rs5m.core.io import atomic_path

METRICS_NAME = "metrics.jsonl"


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a metrics file (missing file = no rows; a torn last line is ignored)."""
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class MetricsLog:
    """Append-only metrics file of one run (rank 0 writes it)."""

    def __init__(self, output_dir: str | os.PathLike[str], resume_step: int = 0) -> None:
        self.path = Path(output_dir) / METRICS_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        """Append one row."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def plot_loss_curve(rows: list[dict[str, Any]], out: str | os.PathLike[str], title: str = "") -> Path:
    """Draw loss (left axis) and learning rate (right axis) against step into a PNG; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        ax.plot(steps, [r["loss"] for r in rows], color="tab:blue", label="loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("InfoNCE loss", color="tab:blue")
        lr_ax = ax.twinx()
        lr_ax.plot(steps, [r["lr"] for r in rows], color="tab:orange", alpha=0.6, label="lr")
        lr_ax.set_ylabel("learning rate", color="tab:orange")
        ax.set_title(title or "training loss")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """First/last loss, last lr and the median samples/s of the logged steps."""
    if not rows:
        return {}
    speeds = sorted(r["samples_per_s"] for r in rows if r.get("samples_per_s"))
    return {
        "first_loss": rows[0]["loss"],
        "last_loss": rows[-1]["loss"],
        "last_lr": rows[-1]["lr"],
        "steps": rows[-1]["step"],
        "median_samples_per_s": speeds[len(speeds) // 2] if speeds else None,
    }
