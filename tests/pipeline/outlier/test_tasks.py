"""Prefect tasks of the outlier stage on Dask: GPU-resource routing, CPU fallback, decision, grid artifact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rs5m.config import OutlierConfig, ScoringConfig
from rs5m.pipeline.outlier.decision import stats_path
from tasks.scoring import gpu_resources
from tests.pipeline.outlier.world import TinyVersion

TINY = ScoringConfig(model_name="rs5m-tiny", pretrained=None, batch_size=8, num_workers=2, device="auto")


class _FakeClient:
    def __init__(self, resources: list[dict[str, float]]) -> None:
        self.resources = resources

    def scheduler_info(self, n_workers: int = -1) -> dict[str, Any]:
        return {"workers": {f"w{i}": {"resources": r} for i, r in enumerate(self.resources)}}


def test_gpu_resources_follow_the_config_and_the_workers() -> None:
    gpu, cpu = _FakeClient([{}, {"GPU": 1.0}]), _FakeClient([{}, {}])  # the scoring stage's placement rule
    assert gpu_resources(TINY, gpu) == {"GPU": 1}
    assert gpu_resources(TINY, cpu) is None  # no GPU worker: run anywhere, on the CPU
    assert gpu_resources(TINY.model_copy(update={"dask_gpu": "never"}), gpu) is None
    assert gpu_resources(TINY.model_copy(update={"dask_gpu": "always"}), cpu) == {"GPU": 1}
    assert gpu_resources(TINY) is None  # outside a flow on Dask


@pytest.fixture
def two_workers() -> Iterator[Any]:
    """An in-process Dask cluster: worker "cpu" without resources, worker "gpu" with GPU=1."""
    from distributed import Scheduler, SpecCluster, Worker

    workers = {
        "cpu": {"cls": Worker, "options": {"nthreads": 1}},
        "gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster:
        yield cluster


@pytest.mark.e2e
def test_flow_scores_on_the_gpu_worker_then_decides(
    prefect_harness: None, two_workers: Any, tiny_version: TinyVersion
) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect_dask import DaskTaskRunner

    from rs5m.config import BuildConfig, SourceInput
    from rs5m.core.schema import StageName
    from rs5m.pipeline import registry
    from tasks.scoring import flow_dask_client, publish_outlier_grid
    from tasks.stages import submit_barrier, submit_segment

    vdir, sources = str(tiny_version.root), ["cc3m", "laion2b"]
    cfg = BuildConfig(
        version="t", root=str(tiny_version.root.parent.parent), scoring=TINY,
        sources=[SourceInput(name=s, files=["unread"]) for s in sources],
    )  # fmt: skip
    assert str(cfg.version_dir()) == vdir

    @flow(task_runner=DaskTaskRunner(address=two_workers.scheduler_address))
    def outlier_stage() -> dict[str, Any]:
        parts = [(s, p) for s, p in tiny_version.rows]
        futures = [submit_segment([registry.stage(StageName.OUTLIER_SCORE)], cfg, [p]) for p in parts]
        scored = [s for f in futures for s in f.result()]
        counts = flow_dask_client().run(
            lambda dask_worker: (dask_worker.name, dask_worker.state.executed_count)
        )
        decided = submit_barrier(registry.stage(StageName.OUTLIER), cfg, sources).result()
        grid = publish_outlier_grid.submit(vdir, sources, OutlierConfig(), "tiny-v").result()
        return {"scored": scored, "executed": dict(counts.values()), "decided": decided, "grid": grid}

    out = outlier_stage()
    assert out["executed"] == {"cpu": 0, "gpu": 2}  # both scoring tasks ran where GPU=1 is advertised
    assert {s["stage"] for s in out["scored"]} == {"outlier_score"}
    assert out["scored"][0]["extra"]["device"] == "cpu"  # no CUDA here: the same code on the CPU
    assert out["scored"][0]["extra"]["loader_workers"] == 1  # in-process worker threads may fork
    n_kept = sum(len(tiny_version.kept(s, p)) for s, p in tiny_version.rows)
    assert sum(d["n_in"] for d in out["decided"]) == n_kept
    assert out["grid"][0]["rs_top_100"] == n_kept - 2  # the corrupt and the missing image have no score
    assert all(Path(stats_path(tiny_version.root, s)).is_file() for s in sources)
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert "outlier-grid-tiny-v" in keys and "outlier-grid-tiny-v-md" in keys


@pytest.mark.e2e
def test_flow_train_rs_detector_on_generated_images(prefect_harness: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.train_detector import train_rs_detector_flow

    job = tmp_path / "job.yaml"
    job.write_text(
        "name: flow-test\npos_dir: pos\nneg_dir: neg\nout_dir: out\ngenerate_positives: 10\n"
        "generate_negatives: 10\n"
        "detector: {model_name: rs5m-tiny, epochs: 1, num_workers: 0, precision: fp32}\n"
    )
    metrics = train_rs_detector_flow(config=str(job))
    assert metrics["n"] == {"train": 14, "val": 2, "test": 4}
    assert (tmp_path / "out" / "detector.pt").is_file()
    with get_client(sync_client=True) as client:
        assert "rs-detector-flow-test" in {a.key for a in client.read_artifacts()}


def test_detector_job_paths_resolve_against_the_yaml(tmp_path: Path) -> None:
    from rs5m.config.detector import load_detector_job

    (tmp_path / "job.yaml").write_text(
        "pos_dir: a\nneg_dir: b\nout_dir: c\ndetector: {model_name: rs5m-tiny}\n"
    )
    job = load_detector_job(tmp_path / "job.yaml", out_dir="/elsewhere", **{"detector.device": "cpu"})
    assert (job.pos_dir, job.neg_dir, job.out_dir) == (str(tmp_path / "a"), str(tmp_path / "b"), "/elsewhere")
    assert job.detector.device == "cpu" and job.detector.model_name == "rs5m-tiny"
    shipped = Path(__file__).resolve().parents[3] / "deployments" / "detector-sample.yaml"
    sample = load_detector_job(shipped)
    assert sample.detector.model_name == "rs5m-tiny" and sample.generate_negatives > 0
