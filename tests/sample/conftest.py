"""Fixtures for the sample-world tests: the default world's metadata (fast), and a small world with
images (file creation dominates the cost of the full 1,500-image world)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rs5m.sample import write_world
from rs5m.sample.plan import SourcePlan

SMALL_PLANS = {
    "laion2b": SourcePlan(80, 24, {"missing_url": 1, "bad_url": 1}, duplicates=1, false_positives=1,
                          ordinary_hits=1, missing_images=2, invalid_images=("zero", "truncated", "bomb"),
                          timeouts=1),
    "coyo700m": SourcePlan(30, 7, {"bad_url": 1}, near_dups=2, invalid_images=("html",), private_redirects=1),
    "laioncoco": SourcePlan(30, 6, {"missing_caption": 1}, url_dups=3),
    "wit": SourcePlan(30, 5, {"non_english": 5, "bad_encoding": 1}, near_dups_within=1),
}  # fmt: skip


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default world (seed 0): all metadata files, no image files."""
    out = tmp_path_factory.mktemp("sample-world")
    write_world(out, images=False)
    return out


@pytest.fixture(scope="session")
def expected(world: Path) -> dict[str, Any]:
    """The default world's expected.json."""
    return json.loads((world / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def small_plans() -> dict[str, SourcePlan]:
    """The plans of ``image_world``."""
    return SMALL_PLANS


@pytest.fixture(scope="session")
def image_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small world with its images (four sources, every kind of planted image and fetch fault)."""
    out = tmp_path_factory.mktemp("sample-images")
    write_world(out, plans=SMALL_PLANS)
    return out
