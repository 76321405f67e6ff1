"""The scoring model loads only for a partition with rows to score, and a model that cannot load says
which config keys to set (issue #17 item 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import rs5m.ml.models as models
from rs5m.config import ScoringConfig
from rs5m.pipeline.outlier import scores
from rs5m.pipeline.outlier.scores import (
    ScoringModelError,
    embeddings_path,
    score_partition,
    scores_path,
)
from tests.pipeline.outlier.world import TinyVersion, add_partition, plain_rows, write_dedup

KEYS = ("scoring.model_name", "scoring.pretrained", "scoring.checkpoint")


@pytest.fixture
def empty_version(tmp_path: Path) -> TinyVersion:
    """One partition whose every row was found invalid: nothing is left to score."""
    version = TinyVersion(tmp_path / "versions" / "t")
    rows = plain_rows("laion2b", "p0", 3)
    for row in rows:
        row.valid = False
    add_partition(version, "laion2b", "p0", rows)
    write_dedup(version)
    return version


def test_a_partition_with_nothing_to_score_loads_no_model(
    empty_version: TinyVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded for a partition with no rows")

    monkeypatch.setattr(scores, "_build_scorer", no_model)
    monkeypatch.setattr(models, "load_clip", no_model)
    cfg = ScoringConfig(device="cpu")  # the default: ConvNeXt-XXL, weights from the hub
    stats = score_partition(empty_version.root, "laion2b", "p0", cfg, detector="/no/such/detector.pt")
    assert stats.n_in == stats.n_out == 0
    assert stats.extra["device"] == "cpu" and stats.extra["unscored"] == 0
    emb = np.load(embeddings_path(empty_version.root, "laion2b", "p0"))
    assert emb.shape == (0, 1024) and emb.dtype == np.float16  # ConvNeXt-XXL's width, from its config
    assert pq.read_table(scores_path(empty_version.root, "laion2b", "p0")).num_rows == 0
    # a rerun finds the stats file and does nothing
    assert score_partition(empty_version.root, "laion2b", "p0", cfg).extra == stats.extra


def _one_line_naming_keys(exc: ScoringModelError) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_weights_that_cannot_be_fetched_name_the_config_keys(
    tiny_version: TinyVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            "Failed to download weights for tag 'laion2b_s34b_b82k_augreg_soup': Failed to download file\n"
            "Please check your connection and try again"
        )

    monkeypatch.setattr(models, "load_clip", offline)
    cfg = ScoringConfig(
        device="cpu", model_name="convnext_xxlarge", pretrained="laion2b_s34b_b82k_augreg_soup"
    )
    with pytest.raises(ScoringModelError) as info:
        score_partition(tiny_version.root, "laion2b", "p0", cfg)
    text = _one_line_naming_keys(info.value)
    assert all(key in text for key in KEYS), text
    assert "'convnext_xxlarge'" in text and "Failed to download weights" in text
    assert isinstance(info.value, ValueError)  # not retried: the same config fails the same way


def test_an_unknown_tag_and_a_text_checkpoint_are_one_line_errors(
    tiny_version: TinyVersion, tmp_path: Path
) -> None:
    cfg = ScoringConfig(device="cpu", model_name="rs5m-tiny", pretrained="no-such-tag")
    with pytest.raises(ScoringModelError) as info:
        score_partition(tiny_version.root, "laion2b", "p0", cfg)
    assert all(key in _one_line_naming_keys(info.value) for key in KEYS)
    text_file = tmp_path / "weights.pt"
    text_file.write_text("these are not weights\n", encoding="utf-8")
    cfg = ScoringConfig(device="cpu", model_name="rs5m-tiny", pretrained=None, checkpoint=str(text_file))
    with pytest.raises(ScoringModelError) as info:
        score_partition(tiny_version.root, "laion2b", "p0", cfg)
    text = _one_line_naming_keys(info.value)
    assert text.startswith("scoring.checkpoint: ") and str(text_file) in text
