"""RS3 fixtures: the miniature RS3 world (real WHU-RS19 pixels when the shared data is there) and a fast
tiny-model config (fewer samples, rotations and tokens than the paper, same code paths)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rs5m.config import RS3Config
from rs5m.config.rs3 import CaptionerConfig, RankerConfig, RS3SourceConfig
from rs5m.sample.rs3 import write_rs3_world
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine run ~20x faster on one thread than on two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def rs3_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RS3 sample world; ``expected.json`` inside."""
    out = tmp_path_factory.mktemp("rs3-world")
    write_rs3_world(out, seed=0, real_data=SHARED_DATA if SHARED_DATA.is_dir() else None)
    return out


def tiny_config(world: Path | None = None, **over) -> RS3Config:
    """A fast tiny-model RS3Config over ``world`` (n_samples 6, keep 4 then 2, 4 rotations, 12 tokens)."""
    sources = []
    if world is not None:
        sources = [
            RS3SourceConfig(name="fmow", root=str(world / "fmow-rgb"), files_per_partition=7),
            RS3SourceConfig(name="ben", root=str(world / "BigEarthNet-v1.0")),
            RS3SourceConfig(name="millionaid", root=str(world / "millionaid")),
        ]
    data = {
        "sources": sources,
        "captioner": CaptionerConfig(model="tiny-random-blip2", dtype="fp32", n_samples=6, max_length=12),
        "ranker_a": RankerConfig(model="rs5m-tiny", precision="fp32", keep=4),
        "ranker_b": RankerConfig(model="rs5m-tiny", precision="fp32", init_seed=1, keep=2),
        "rotations": 4,
        "device": "cpu",
    }
    return RS3Config(**(data | over))
