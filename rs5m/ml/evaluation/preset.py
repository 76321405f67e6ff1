"""Presets of ``rs5m evaluate --preset``: a released GeoRSCLIP checkpoint, its test data, its numbers.

``presets.yaml`` is data: which hub repo and files, the layout of the test-data zip, the published
headline numbers. ``prepare_preset`` fetches (or finds) the files, writes an ordinary ``EvalConfig`` YAML
for them, and returns its path, so the evaluation itself is exactly ``rs5m evaluate --config``;
``compare_published`` then puts our numbers beside the published ones.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rs5m.config.evaluate import RetrievalDataset, SeloDataset, ZeroShotDataset
from rs5m.core.io import atomic_path

PACKAGED = "presets.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class CompareItem(_Model):
    """One headline number: a results-table column, its label, and the factor that makes it points."""

    column: str
    label: str
    scale: float = Field(default=1.0, gt=0)


class TestData(_Model):
    """The test-data zip on the hub and the datasets inside it (paths relative to its top ``folder``)."""

    repo_path: str
    approx_size: str
    folder: str
    zeroshot: list[ZeroShotDataset]
    retrieval: list[RetrievalDataset]
    selo: list[SeloDataset]

    def required(self) -> list[str]:
        """Every path (relative to the top folder) the evaluation reads."""
        paths = [d.root for d in self.zeroshot]
        paths += [p for d in self.retrieval for p in (d.csv, d.images_dir) if p]
        paths += [p for d in self.selo for p in (d.annotations, d.images_dir)]
        return paths


class Preset(_Model):
    """A released checkpoint: where it lives, which open_clip model it fits, its published numbers."""

    repo_id: str
    repo_type: Literal["model", "dataset"] = "model"
    revision: str = "main"
    checkpoint: str
    approx_size: str
    model: str
    label: str
    published: dict[str, float]


class PresetFile(_Model):
    """The whole ``presets.yaml``."""

    test_data: TestData
    compare: list[CompareItem] = Field(min_length=1)
    tolerance_points: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    workers: int = Field(ge=0)
    presets: dict[str, Preset]


def load_presets(path: str | os.PathLike[str] | None = None) -> PresetFile:
    """Read and validate the presets (default: the packaged ``presets.yaml``); one-line ``ValueError``."""
    if path is None:
        text, where = resources.files("rs5m.ml.evaluation").joinpath(PACKAGED).read_text("utf-8"), PACKAGED
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        return PresetFile.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"presets {where}: {str(exc).splitlines()[0]}") from exc


def get_preset(presets: PresetFile, name: str) -> Preset:
    """The preset ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in presets.presets:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(presets.presets))}")
    return presets.presets[name]


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def write_eval_config(
    presets: PresetFile, name: str, checkpoint: Path, data_root: Path, out: Path, device: str | None = None
) -> Path:
    """Write the ``EvalConfig`` YAML of preset ``name`` (paths relative to ``out``'s folder); return ``out``.

    Results go to ``<out folder>/results-<name>``; ``device`` defaults to cuda when there is one.
    """
    preset, td = get_preset(presets, name), presets.test_data
    base = out.parent.resolve()

    def rel(p: Path | str) -> str:
        return os.path.relpath(Path(p).resolve(), base)

    def under(ds: BaseModel, keys: tuple[str, ...]) -> dict[str, Any]:
        data = ds.model_dump(exclude_unset=True)
        return {**data, **{k: rel(data_root / data[k]) for k in keys if k in data}}

    cfg = {
        "model": {"name": preset.model, "checkpoint": rel(checkpoint), "label": preset.label},
        "zeroshot": [under(d, ("root",)) for d in td.zeroshot],
        "retrieval": [under(d, ("csv", "images_dir")) for d in td.retrieval],
        "selo": [under(d, ("annotations", "images_dir")) for d in td.selo],
        "batch_size": presets.batch_size,
        "workers": presets.workers,
        "device": device or _default_device(),
        "output_dir": f"results-{name}",
    }
    with atomic_path(out) as tmp:
        tmp.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return out


def compare_published(row: dict[str, Any], presets: PresetFile, name: str) -> list[dict[str, Any]]:
    """Our headline numbers beside the published ones, in points, flagged beyond the tolerance.

    ``row`` is our row of the results table. A metric we did not compute has ``ours`` = ``None``.
    """
    preset, out = get_preset(presets, name), []
    for item in presets.compare:
        ours, published = row.get(item.column), preset.published.get(item.column)
        diff = None
        if ours is not None and published is not None:
            diff = round((float(ours) - published) * item.scale, 2)
        flag = diff is not None and abs(diff) > presets.tolerance_points
        out.append(
            {
                "metric": item.label,
                "ours": None if ours is None else round(float(ours) * item.scale, 2),
                "published": None if published is None else round(published * item.scale, 2),
                "diff_points": diff,
                "flag": "!" if flag else "",
            }
        )
    return out


def comparison_markdown(rows: list[dict[str, Any]], tolerance: float) -> str:
    """The comparison as a Markdown table, with a note on what the flag means."""
    lines = ["| metric | ours | published | diff (points) | |", "|---|---|---|---|---|"]
    for r in rows:
        cells = ["-" if r[k] is None else f"{r[k]:.2f}" for k in ("ours", "published", "diff_points")]
        lines.append(f"| {r['metric']} | {' | '.join(cells)} | {r['flag']} |")
    flagged = sum(1 for r in rows if r["flag"])
    lines.append(f"\n{flagged} of {len(rows)} differ by more than {tolerance} points (flagged !).")
    return "\n".join(lines) + "\n"
