"""Incremental builds: seed a new version with the finished work of a base version.

For every planned input of the new build that is unchanged since the base version read it (same path,
size and modification time), the files of each partition stage (``rs5m.pipeline.registry``, in order, the
outlier scores included) are hard-linked (copied where links are impossible) into the new version, stage by
stage, as long as that stage's config sections are the same in both versions. The new build then skips them
(their stats files are done markers) and runs only new or changed inputs, plus the barriers, which rerun
unless nothing they depend on changed: then the dedup decisions are reused too and only the outlier
decision reruns. A changed threshold therefore reruns only the stages that depend on it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rs5m.config import BuildConfig
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import read_done
from rs5m.pipeline import registry
from rs5m.pipeline.plan import InputFile, plan_inputs

# Reused when every input went through validity unchanged: the dedup barrier (its result is then the same).
_WHOLE_STAGES = (StageName.DEDUP,)


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


def _unchanged(base: VersionLayout, item: InputFile) -> bool:
    """Whether the base version read ``item`` as it is now (same path, size and modification time)."""
    stats = read_done(base.stats(StageName.INGEST, item.source, item.partition))
    if stats is None:
        return False
    st = Path(item.path).stat()
    extra = stats.extra
    return (
        extra.get("input") == item.path
        and extra.get("input_size") == st.st_size
        and extra.get("input_mtime_ns") == st.st_mtime_ns
    )


def _seed_whole(base: VersionLayout, new: VersionLayout, saved: dict, cfg: dict) -> bool:
    """Reuse the dedup barrier when nothing it depends on changed.

    Safe only when every input went through validity unchanged and the base had no other inputs (then the
    dedup result is the same) and the dedup settings are equal. Only the outlier decision and what follows
    then rerun (the scores were reused per partition).
    """
    sections = {s for stage in _WHOLE_STAGES for s in registry.stage(stage).config}
    if any(saved.get(s) != cfg.get(s) for s in sections):
        return False
    base_parts = [p.relative_to(base.dir) for p in base.stats_files(StageName.VALIDITY)]
    new_parts = [p.relative_to(new.dir) for p in new.stats_files(StageName.VALIDITY)]
    if not base_parts or base_parts != new_parts:
        return False
    for stage in _WHOLE_STAGES:
        if base.stage_dir(stage).exists():
            _link(base.stage_dir(stage), new.stage_dir(stage))
    return True


def seed_version(base: VersionLayout, cfg: BuildConfig) -> dict[str, int]:
    """Link the base version's reusable work into ``cfg``'s version; return counts per partition stage
    (``dedup`` is 1 when the dedup barrier was reused too).

    ``ValueError`` naming the base's folder when it is not a complete version."""
    if not base.complete_marker.exists():
        raise ValueError(f"base version {base.name!r} is not a complete version (looked in {base.dir})")
    saved = json.loads(base.config_file.read_text(encoding="utf-8"))["config"]
    new_cfg, new = cfg.model_dump(), cfg.layout()
    chain = registry.partition_stages("pub11")
    reused = {stage.name.value: 0 for stage in chain}
    for item in plan_inputs(cfg):
        if not _unchanged(base, item):
            continue
        for stage in chain:
            if any(saved.get(s) != new_cfg.get(s) for s in stage.config if s != "sources"):
                break
            files = [
                f for name in stage.records for f in base.partition_files(name, item.source, item.partition)
            ]
            if not files or any(
                not base.stats(n, item.source, item.partition).exists() for n in stage.records
            ):
                break
            for f in files:
                _link(f, new.dir / f.relative_to(base.dir))
            reused[stage.name.value] += 1
    reused["dedup"] = int(_seed_whole(base, new, saved, new_cfg))
    return reused
