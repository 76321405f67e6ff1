"""The plan of a build: every input file (or piece of one) of every source, as the partitions every
partition stage maps over.

``plan_inputs`` expands each source's globs (sorted, so the plan is deterministic) and splits each file into
the pieces its source adapter offers (parquet row-group ranges, SQLite rowid ranges, byte ranges of plain
text, of about ``ingest.rows_per_partition`` rows), so no single big file is the critical path. A partition
is named after its file (a base name seen twice gets a ``_`` suffix), plus ``@<piece>`` when split.
``write_plan`` saves the plan in the version folder once (``layout.plan_file``); stages find their input
through ``read_plan``, so a task only carries ``(source, partition)``. ``partitions`` lists them in order.
"""

from __future__ import annotations

import functools
import glob
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from rs5m.config import BuildConfig, SourceInput
from rs5m.core.io import write_json
from rs5m.core.layout import VersionLayout
from rs5m.sources import get_adapter


@dataclass(frozen=True)
class InputFile:
    """One input file of one source: the unit of ingest work (one partition of the build)."""

    source: str
    path: str
    partition: str
    piece: str = ""  # "" = the whole file


def partition_name(path: str) -> str:
    """A file-system-safe partition name derived from an input file's base name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).name)


def plan_inputs(cfg: BuildConfig) -> list[InputFile]:
    """Expand every source's file globs; raise ``FileNotFoundError`` naming a pattern that matched nothing."""
    plan: list[InputFile] = []
    for src in cfg.sources:
        names: set[str] = set()
        for pattern in src.files:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise FileNotFoundError(f"source {src.name}: no file matches {pattern!r}")
            for path in matches:
                name = partition_name(path)
                while name in names:  # same base name in two folders: keep both, distinctly
                    name += "_"
                names.add(name)
                for piece in _pieces(src, path, cfg.ingest.rows_per_partition):
                    part = f"{name}@{partition_name(piece)}" if piece else name
                    plan.append(InputFile(src.name, path, part, piece))
    return plan


def _pieces(src: SourceInput, path: str, rows_per_piece: int) -> list[str]:
    adapter = get_adapter(src.name)
    return adapter.pieces(path, adapter.options_model(**src.options), rows_per_piece) or [""]


def write_plan(layout: VersionLayout, items: list[InputFile]) -> list[tuple[str, str]]:
    """Save the plan in the version folder (rewritten only when it changed); return its partitions."""
    data = {"inputs": [asdict(i) for i in items]}
    path = layout.plan_file
    try:
        same = json.loads(path.read_text(encoding="utf-8")) == data
    except (OSError, ValueError):
        same = False
    if not same:
        write_json(path, data)
        _cached.cache_clear()
    return [(i.source, i.partition) for i in items]


def read_plan(layout: VersionLayout) -> dict[tuple[str, str], InputFile]:
    """``(source, partition) -> InputFile`` of a planned version (cached per process and file state)."""
    st = layout.plan_file.stat()
    return _cached(str(layout.plan_file), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, size: int) -> dict[tuple[str, str], InputFile]:
    del mtime_ns, size  # cache key only
    items = [InputFile(**d) for d in json.loads(Path(path).read_text(encoding="utf-8"))["inputs"]]
    return {(i.source, i.partition): i for i in items}


def partitions(layout: VersionLayout) -> list[tuple[str, str]]:
    """``(source, partition)`` of every planned input, in plan order."""
    return list(read_plan(layout))
