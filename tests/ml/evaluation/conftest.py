"""Fixtures of the evaluation tests: one tiny random-init model and one generated demo data set."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs5m.config.evaluate import EvalConfig
from rs5m.ml.evaluation.embed import Embedder
from rs5m.ml.evaluation.fixtures import write_demo_eval_data
from rs5m.ml.models import load_clip
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the session: the same tiny model recurs, so tests share vectors."""
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(scope="session")
def tiny_embedder(eval_cache: Path) -> Embedder:
    """``rs5m-tiny`` (seed 0) with the session cache, batch 16, no DataLoader workers."""
    model, preprocess, tokenizer = load_clip("rs5m-tiny", init_seed=0)
    return Embedder(model, preprocess, tokenizer, cache_root=eval_cache, batch_size=16, workers=0)


@pytest.fixture(scope="session")
def demo_cfg(tmp_path_factory: pytest.TempPathFactory, eval_cache: Path) -> EvalConfig:
    """Demo data in the real layouts (real WHU-RS19 / RSITMD captions / AIR-SLT polygons when present)."""
    out: Path = tmp_path_factory.mktemp("eval-demo")
    cfg = write_demo_eval_data(out, SHARED_DATA if SHARED_DATA.is_dir() else None, max_per_class=1)
    return cfg.model_copy(update={"cache_dir": str(eval_cache)})
