"""Each dedup method on the sample build's own images and embeddings (issue #20): the build runs ``both``
(pHash first, then embeddings over what pHash kept), so its planted re-encoded copies leave as
``near_duplicate``; ``embedding`` alone finds the same copies as ``semantic_duplicate``, with the same
keepers; ``phash`` alone never writes a semantic reason. The dedup barrier is rerun in a copy of the
version's validity and scoring outputs, never in the shared build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from rs5m.config import DedupConfig
from rs5m.core.layout import DataRoot
from rs5m.pipeline.dedup.stage import run_dedup
from tests.faults._builds import Built


def _decisions(vdir: Path) -> dict[str, tuple[str | None, str | None]]:
    """uid -> (reason, keeper uid) of every row the dedup stage removed."""
    rows = pq.read_table(vdir / "dedup" / "decisions.parquet").to_pylist()
    return {r["uid"]: (r["dup_reason"], r["dup_keeper_uid"]) for r in rows if not r["dup_keep"]}


def _rerun(built: Built, root: Path, method: str) -> dict[str, tuple[str | None, str | None]]:
    vdir = DataRoot.of(root).versions_dir / method
    for stage in ("validity", "outlier_score"):
        shutil.copytree(built.vdir / stage, vdir / stage)
    sources = sorted(p.name for p in (vdir / "validity").iterdir() if not p.name.startswith("_"))
    stats = run_dedup(vdir, sources, DedupConfig(method=method, embedding_threshold=0.999))
    assert sum(s.n_in for s in stats) > 100  # every valid image took part
    return _decisions(vdir)


def test_each_dedup_method_on_the_sample_build(sample_build: Built, tmp_path: Path) -> None:
    built = _decisions(sample_build.vdir)
    near = {u: keeper for u, (reason, keeper) in built.items() if reason == "near_duplicate"}
    assert len(near) >= 3 and "semantic_duplicate" not in {r for r, _ in built.values()}

    phash = _rerun(sample_build, tmp_path, "phash")
    assert phash == built  # nothing was left for the embeddings to find in the build

    embedding = _rerun(sample_build, tmp_path, "embedding")
    semantic = {u: keeper for u, (reason, keeper) in embedding.items() if reason == "semantic_duplicate"}
    assert near.items() <= semantic.items()  # the same copies, the same keepers (priority rule)
    assert "near_duplicate" not in {r for r, _ in embedding.values()}
    url = {u for u, (reason, _) in built.items() if reason == "url_duplicate"}
    assert url == {u for u, (reason, _) in embedding.items() if reason == "url_duplicate"}
