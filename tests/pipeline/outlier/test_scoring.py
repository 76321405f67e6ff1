"""Scoring stage on a tiny version folder with the tiny random-init open_clip model (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rs5m.config import ScoringConfig
from rs5m.config.stages import rs_prompts
from rs5m.ml.detector import load_detector
from rs5m.pipeline.outlier.scores import (
    SCORE_STAGE,
    embeddings_path,
    get_scorer,
    score_partition,
    score_stats_path,
    scores_path,
)
from tests.pipeline.outlier.world import TinyVersion, image_bytes

TINY = {"model_name": "rs5m-tiny", "pretrained": None, "batch_size": 4, "device": "cpu"}


def test_rs_prompts_are_the_33_of_rs5m() -> None:
    prompts = rs_prompts()
    assert len(prompts) == 33 == len(set(prompts))
    assert prompts[:2] == ["a remote sensing image.", "a low resolution remote sensing image."]
    assert "an aerial image." in prompts and "a jpeg corrupted satellite image." in prompts
    assert "a black and white aerial image." in prompts and "a good satellite image." in prompts
    assert ScoringConfig().prompts == prompts


def _read(version: TinyVersion, source: str, part: str) -> tuple[dict, np.ndarray, np.ndarray]:
    scores = pq.read_table(scores_path(version.root, source, part)).to_pydict()
    emb_file = embeddings_path(version.root, source, part)
    return scores, np.load(emb_file), np.load(emb_file.with_suffix(".uids.npy"))


def test_score_partition_rows_embeddings_and_scores(tiny_version: TinyVersion, tiny_detector: Path) -> None:
    cfg = ScoringConfig(**TINY, num_workers=0, embedding_dtype="float32")
    stats = score_partition(tiny_version.root, "laion2b", "p0", cfg, detector=str(tiny_detector))
    expected = tiny_version.expected("laion2b", "p0")
    scores, emb, uids = _read(tiny_version, "laion2b", "p0")
    assert scores["uid"] == [r.uid for r in expected] == uids.tolist()  # invalid left out
    assert emb.shape == (len(expected), 64)
    unscored = [r.corrupt or not r.in_tar for r in expected]
    norms = np.linalg.norm(emb, axis=1)
    np.testing.assert_allclose(norms[~np.array(unscored)], 1.0, atol=1e-5)
    assert [s is None for s in scores["s_vlm"]] == unscored == [c is None for c in scores["c_rs"]]
    assert stats.stage == SCORE_STAGE and stats.n_in == stats.n_out == len(expected)
    assert stats.extra["unscored"] == 2 and stats.removed == {}
    # s_vlm is the cosine with the normalised mean prompt embedding
    text = get_scorer(cfg).text_feature.numpy()
    ok = [i for i, u in enumerate(unscored) if not u]
    np.testing.assert_allclose(np.array(scores["s_vlm"], dtype=float)[ok], emb[ok] @ text, atol=1e-5)
    assert all(0 <= scores["c_rs"][i] <= 1 for i in ok)
    empty_caption = [r.caption == "" for r in expected]
    assert [s is None for s in scores["s_caption"]] == [
        a or b for a, b in zip(unscored, empty_caption, strict=True)
    ]
    assert score_stats_path(tiny_version.root, "laion2b", "p0").is_file()


def test_score_partition_is_skipped_when_done(tiny_version: TinyVersion) -> None:
    cfg = ScoringConfig(**TINY, num_workers=0)
    first = score_partition(tiny_version.root, "cc3m", "p0", cfg)
    path = scores_path(tiny_version.root, "cc3m", "p0")
    mtime = path.stat().st_mtime_ns
    again = score_partition(tiny_version.root, "cc3m", "p0", cfg)
    assert again == first and path.stat().st_mtime_ns == mtime
    assert pq.read_table(path).column("c_rs").null_count == first.n_in  # no detector: c_rs is null


def test_loader_processes_and_autocast_match_inline(tiny_version: TinyVersion, tmp_path: Path) -> None:
    """The GPU configuration (worker processes, bf16 autocast, big batch) on CPU gives the same scores."""
    inline = ScoringConfig(**TINY, num_workers=0, embedding_dtype="float32")
    score_partition(tiny_version.root, "cc3m", "p0", inline)
    ref, ref_emb, _ = _read(tiny_version, "cc3m", "p0")
    for f in (scores_path, embeddings_path, score_stats_path):
        f(tiny_version.root, "cc3m", "p0").unlink()
    gpu_like = ScoringConfig(**{**TINY, "batch_size": 256}, num_workers=2, cpu_precision="bf16")
    stats = score_partition(tiny_version.root, "cc3m", "p0", gpu_like)
    got, emb, _ = _read(tiny_version, "cc3m", "p0")
    assert stats.extra["loader_workers"] == 1 and stats.extra["precision"] == "bf16"  # one shard: one process
    assert emb.dtype == np.float16 and got["uid"] == ref["uid"]
    np.testing.assert_allclose(got["s_vlm"], ref["s_vlm"], atol=0.03)
    np.testing.assert_allclose(emb.astype(np.float32), ref_emb, atol=0.05)


def test_detector_scores_match_predict_proba(tiny_version: TinyVersion, tiny_detector: Path) -> None:
    cfg = ScoringConfig(**TINY, num_workers=0, draft=False)
    score_partition(tiny_version.root, "cc3m", "p0", cfg, detector=load_detector(tiny_detector, "cpu"))
    scores = pq.read_table(scores_path(tiny_version.root, "cc3m", "p0")).to_pydict()
    planted = {r.uid: (i, r) for i, r in enumerate(tiny_version.rows[("cc3m", "p0")])}
    images = [image_bytes(planted[u][1].aerial, 2 + planted[u][0]) for u in scores["uid"]]  # seed 2 + index
    direct = load_detector(tiny_detector, "cpu").predict_proba(images)
    np.testing.assert_allclose(scores["c_rs"], direct, atol=1e-5)


def test_unusable_device_fails_loudly(tiny_version: TinyVersion) -> None:
    with pytest.raises((RuntimeError, AssertionError, ValueError)):
        score_partition(tiny_version.root, "cc3m", "p0", ScoringConfig(**{**TINY, "device": "cuda:7"}))
    assert not score_stats_path(tiny_version.root, "cc3m", "p0").exists()
