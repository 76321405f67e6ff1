"""The ``rs3`` flow under Prefect on a Dask cluster whose worker advertises a GPU resource."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.rs3.conftest import tiny_config


def _client(resources: list[dict]) -> SimpleNamespace:
    workers = {f"w{i}": {"resources": r} for i, r in enumerate(resources)}
    return SimpleNamespace(scheduler_info=lambda n_workers=-1: {"workers": workers})


def test_caption_resources_rule():
    from tasks.rs3 import caption_resources

    cfg = tiny_config()
    assert caption_resources(cfg, _client([{}, {"GPU": 1}])) == {"GPU": 1}
    assert caption_resources(cfg, _client([{}])) is None
    assert caption_resources(cfg.model_copy(update={"dask_gpu": "never"}), _client([{"GPU": 1}])) is None
    assert caption_resources(cfg.model_copy(update={"dask_gpu": "always"}), _client([{}])) == {"GPU": 1}


def test_flow_and_deployment_config_import():
    from flows.rs3 import rs3
    from rs5m.config.rs3 import load_rs3_config

    assert rs3.name == "rs3"
    cfg = load_rs3_config("deployments/rs3-sample.yaml")
    assert cfg.captioner.model == "tiny-random-blip2" and cfg.captioner.n_samples == 20
    assert [s.name for s in cfg.sources] == ["fmow", "ben", "millionaid"]


@pytest.mark.timeout(300)
def test_rs3_flow_on_gpu_worker(prefect_harness, rs3_world, tmp_path):
    from prefect_dask import DaskTaskRunner

    from flows.rs3 import rs3
    from rs5m.config import BuildConfig, SourceInput

    cluster = {"n_workers": 1, "processes": False, "threads_per_worker": 2, "resources": {"GPU": 1}}
    rs3_cfg = tiny_config(rs3_world, dask_gpu="always")
    cfg = BuildConfig(
        version="sample",
        root=str(tmp_path),
        sources=[SourceInput(name="cc12m", files=["unread.tsv"])],
        rs3=rs3_cfg,
    )
    vdir = cfg.version_dir()
    results = rs3.with_options(task_runner=DaskTaskRunner(cluster_kwargs=cluster))(cfg)
    expected = json.loads((rs3_world / "expected.json").read_text())
    captioned = {}
    for r in results:
        if r["stage"] == "caption":
            captioned[r["source"]] = captioned.get(r["source"], 0) + r["n_out"]
    assert captioned == {s: expected[s]["ok"] for s in ("fmow", "ben", "millionaid")}
    assert (vdir / "rs3" / "geo" / "world_map.png").is_file()
