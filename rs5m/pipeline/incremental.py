"""Incremental builds: seed a new version with the finished work of a base version.

For every input file of the new build that is unchanged since the base version read it (same path,
size and modification time), the per-partition outputs and stats files of each per-partition stage
are hard-linked (copied where links are impossible) into the new version, stage by stage, as long as
that stage's config section is the same in both versions. The new build then skips them (their
stats files are done markers) and runs only new or changed inputs, plus the global stages (dedup and
later), which rerun unless nothing they depend on changed (then the dedup decisions and outlier
scores are reused too and only the outlier decision reruns). A changed threshold therefore reruns
only the stages that depend on it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rs5m.config import BuildConfig
from rs5m.core.stats import read_done
from rs5m.pipeline.plan import InputFile, plan_inputs

# Per-partition stages in order, with the config sections their outputs depend on.
_STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("ingest", ("ingest",)),
    ("keyword", ("keyword",)),
    ("download", ("download",)),
    ("validity", ("validity", "dedup")),  # the validity stage also computes the dedup hashes
]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        for child in src.iterdir():
            _link(child, dst / child.name)
        return
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _unchanged(base: Path, item: InputFile) -> list[str] | None:
    """The base version's ingest outputs of ``item`` when the input file is unchanged, else None."""
    stats = read_done(base / "ingest" / "_stats" / item.source / f"{item.partition}.json")
    if stats is None:
        return None
    st = Path(item.path).stat()
    extra = stats.extra
    same = (
        extra.get("input") == item.path
        and extra.get("input_size") == st.st_size
        and extra.get("input_mtime_ns") == st.st_mtime_ns
    )
    return [Path(o).stem for o in extra.get("outputs", [])] if same else None


def _files(vdir: Path, stage: str, source: str, part: str) -> list[Path]:
    base = vdir / stage
    if stage == "ingest":
        return [
            *sorted((base / source).glob(f"{part}-*.parquet")),
            base / "_rejects" / source / f"{part}.parquet",
            base / "_stats" / source / f"{part}.json",
        ]
    stats = base / "_stats" / source / f"{part}.json"
    data = base / source / part if stage == "download" else base / source / f"{part}.parquet"
    return [data, stats]


def _seed_scores(base_dir: Path, vdir: Path, saved: dict, new: dict) -> bool:
    """Reuse the dedup barrier and the outlier scores when nothing they depend on changed.

    Safe only when every input went through validity unchanged and the base had no other inputs
    (then the dedup result is the same), and the dedup, scoring and detector settings are equal.
    Only the outlier decision (its fractions) and what follows then rerun.
    """
    if any(saved.get(s) != new.get(s) for s in ("dedup", "scoring", "detector")):
        return False
    base_parts = {
        p.relative_to(base_dir / "validity" / "_stats")
        for p in (base_dir / "validity" / "_stats").rglob("*.json")
    }
    new_parts = {
        p.relative_to(vdir / "validity" / "_stats") for p in (vdir / "validity" / "_stats").rglob("*.json")
    }
    if not base_parts or base_parts != new_parts:
        return False
    for sub in ("dedup", "outlier/scores", "outlier/embeddings", "outlier/_scores_stats"):
        if (base_dir / sub).exists():
            _link(base_dir / sub, vdir / sub)
    return True


def seed_version(base_dir: Path, cfg: BuildConfig) -> dict[str, int]:
    """Link the base version's reusable work into ``cfg``'s version folder; return counts per stage
    (``scores`` is 1 when the dedup barrier and the outlier scores were reused too)."""
    saved = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))["config"]
    new = cfg.model_dump()
    reused = {stage: 0 for stage, _ in _STAGES}
    vdir = cfg.version_dir()
    items = plan_inputs(cfg)
    for item in items:
        parts = _unchanged(base_dir, item)
        if parts is None:
            continue
        for stage, sections in _STAGES:
            if any(saved.get(s) != new.get(s) for s in sections):
                break
            names = [item.partition] if stage == "ingest" else parts
            files = [f for name in names for f in _files(base_dir, stage, item.source, name)]
            if not all(f.exists() for f in files):
                break
            for f in files:
                _link(f, vdir / f.relative_to(base_dir))
            reused[stage] += len(names)
    reused["scores"] = int(_seed_scores(base_dir, vdir, saved, new))
    return reused
