"""The ``train-georsclip`` flow: train on a dataset version, publish curves, hand off to evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rs5m.ml.evaluation.fixtures import write_demo_eval_data


def test_params_pick_the_versions_shards(tmp_path: Path) -> None:
    from flows.train import TrainParams

    cfg = TrainParams(dataset_version="v7", data_root=str(tmp_path), max_steps=3).resolve()
    assert cfg.data.shards == f"{tmp_path}/versions/v7/package/open_clip" and cfg.data.version == "v7"
    assert cfg.max_steps == 3 and cfg.model.name == "rs5m-tiny"


@pytest.mark.e2e
def test_flow_train_georsclip(prefect_harness, tiny_shards, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.train import TrainParams, train_georsclip

    eval_cfg = write_demo_eval_data(tmp_path / "eval-demo", None, max_per_class=1)
    eval_yaml = tmp_path / "eval.yaml"
    eval_yaml.write_text(yaml.safe_dump(eval_cfg.model_copy(update={"selo": []}).model_dump()))
    params = TrainParams(
        shards=str(tiny_shards["open_clip"]),
        dataset_version="tiny-v1",
        max_steps=4,
        device="cpu",
        output_dir=str(tmp_path / "run"),
        eval_config=str(eval_yaml),
    )
    out = train_georsclip(params)
    assert out["train"]["steps"] == 4 and Path(out["train"]["files"]["model"]).is_file()
    assert out["evaluation"]["table"][0]["model"] == "rs5m-tiny on tiny-v1 (ours)"
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"train-rs5m-tiny-on-tiny-v1-ours-loss", "train-rs5m-tiny-on-tiny-v1-ours-metrics"} <= keys
    assert "eval-rs5m-tiny-on-tiny-v1-ours" in keys
