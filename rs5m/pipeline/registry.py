"""The stage registry: every stage of a build, in order, with its kind, config sections and entry point.

The one contract of a stage:

- a **partition** stage: ``run(layout, source, partition, cfg) -> PartitionStats`` over one partition of
  the build's plan (every partition stage of a subset maps over the same ``(source, partition)`` list);
- a **barrier**: ``run(layout, sources, cfg) -> list[PartitionStats]`` over every partition at once (one
  stats row per source).

``layout`` is the version's ``rs5m.core.layout.VersionLayout``, ``cfg`` the whole ``BuildConfig`` (a stage
reads its own sections, listed in ``config``). A stage is resumable: its stats file, written last, marks a
partition done, and a rerun returns it without redoing the work. Entry points are ``"module:function"``
strings resolved on first use, so importing the registry (the funnel, ``versions``, ``why``, the CLI) loads
no stage code and no torch. Flows, incremental builds, the funnel's columns, ``versions`` and ``why`` read
this list: adding a stage is one entry here plus its module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats
from rs5m.pipeline.timing import timed

Kind = Literal["partition", "barrier"]


@dataclass(frozen=True)
class Stage:
    """One registered stage.

    ``config``: the ``BuildConfig`` sections its outputs depend on (an incremental build reuses its work only
    while they are unchanged). ``gpu``: the dotted config field naming its GPU placement mode ("auto",
    "always", "never"), None for CPU stages. ``retries``: how often the orchestrator retries a failed unit
    (format errors are never retried: they raise ``ValueError``).
    """

    name: StageName
    kind: Kind
    subset: str
    config: tuple[str, ...]
    entry: str
    gpu: str | None = None
    retries: int = 1
    writes: tuple[StageName, ...] = ()

    @property
    def records(self) -> tuple[StageName, ...]:
        """The stage names whose stats files this stage writes (itself, and any it does in the same pass)."""
        return (self.name, *self.writes)

    def run(self, *args: Any) -> Any:
        """Call the stage's entry point (imported on first use)."""
        return resolve(self.entry)(*args)

    def run_partition(self, layout: VersionLayout, source: str, partition: str, cfg: Any) -> PartitionStats:
        """Run this partition stage on one partition, recording its timing when it did the work."""
        return timed(self.name, layout, source, partition, lambda: self.run(layout, source, partition, cfg))


def resolve(entry: str) -> Callable[..., Any]:
    """The function named by ``"package.module:function"``."""
    module, _, func = entry.partition(":")
    return getattr(importlib.import_module(module), func)


PUB11: tuple[Stage, ...] = (
    # one pass: read + validate + keyword-filter; writes the ingest and the keyword stats
    Stage(
        StageName.INGEST,
        "partition",
        "pub11",
        ("sources", "ingest", "keyword"),
        "rs5m.pipeline.ingest:run",
        writes=(StageName.KEYWORD,),
    ),  # fmt: skip
    Stage(StageName.DOWNLOAD, "partition", "pub11", ("download",), "rs5m.pipeline.download.stage:run"),
    # the validity stage also computes the dedup hashes, so it depends on the dedup section too
    Stage(
        StageName.VALIDITY, "partition", "pub11", ("validity", "dedup"), "rs5m.pipeline.validity.stage:run"
    ),
    Stage(
        StageName.OUTLIER_SCORE,
        "partition",
        "pub11",
        ("scoring", "detector"),
        "rs5m.pipeline.outlier.scores:run",
        gpu="scoring.dask_gpu",
    ),  # fmt: skip
    # scores are columns: every valid image is scored as soon as its partition is valid (GPU workers),
    # and the decision pools the dedup-kept rows only (RS5M's quantiles are over the post-dedup pool)
    # dedup can link images by the scoring stage's embeddings (dedup.method), so it depends on scoring too
    Stage(StageName.DEDUP, "barrier", "pub11", ("dedup", "scoring"), "rs5m.pipeline.dedup.stage:run"),
    Stage(StageName.OUTLIER, "barrier", "pub11", ("outlier",), "rs5m.pipeline.outlier.decision:run"),
    Stage(StageName.PACKAGE, "barrier", "pub11", ("package",), "rs5m.pipeline.package.pub11:run", retries=0),
)

RS3: tuple[Stage, ...] = (
    Stage(StageName.RS3_READ, "partition", "rs3", ("rs3",), "rs5m.rs3.stage:run_read"),
    Stage(
        StageName.RS3_CAPTION, "partition", "rs3", ("rs3",), "rs5m.rs3.stage:run_caption", gpu="rs3.dask_gpu"
    ),
    # PUB11 geo metadata over the keyword candidates; writes the places stats too (subset "geometa")
    Stage(StageName.META_CAPTION, "partition", "geometa", ("rs3", "keyword"), "rs5m.rs3.pub11:run"),
    Stage(
        StageName.PACKAGE, "barrier", "rs3", ("package", "rs3"), "rs5m.pipeline.package.rs3:run", retries=0
    ),
)

ALL: tuple[Stage, ...] = PUB11 + RS3


def stage(name: str | StageName, subset: str = "pub11") -> Stage:
    """The registered stage ``name`` of ``subset``; ``KeyError`` naming the known ones otherwise."""
    for s in ALL:
        if s.name == name and s.subset == subset:
            return s
    raise KeyError(f"no stage {name!r} in subset {subset!r}; known: {[s.name.value for s in ALL]}")


def partition_stages(subset: str = "pub11") -> list[Stage]:
    """The partition stages of a subset, in order."""
    return [s for s in ALL if s.subset == subset and s.kind == "partition"]


def order() -> list[str]:
    """Every stage name once, in pipeline order (the order of reasons, versions and ``why``)."""
    return [s.value for s in StageName]
