"""The ``train-georsclip`` flow: runs keyed by (dataset version, data, config), the hand-off's parameters,
curves and the evaluation it hands over to."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest
import yaml

from rs5m.config import PackageConfig
from rs5m.core.layout import DataRoot
from rs5m.ml.evaluation.fixtures import write_demo_eval_data
from rs5m.shards import write_manifest, write_shards
from tests.ml.training.conftest import PER_SHARD, colour_samples


def _version(root: Path, name: str, shards: Path | None = None, n: int = 32) -> Path:
    """A complete dataset version under ``root`` whose open_clip shards are a copy of ``shards`` or new."""
    layout = DataRoot.of(root).version(name)
    dest = layout.package_dir("open_clip")
    if shards is not None:
        shutil.copytree(shards, dest)
    else:
        write_shards(
            colour_samples(n),
            dest,
            "pub11",
            "train",
            "open_clip",
            PackageConfig(max_samples_per_shard=PER_SHARD, fsync=False),
        )
        write_manifest(dest, name)
    layout.complete_marker.write_text("{}")
    return dest


def test_a_version_selects_its_shards_and_keys_the_run_folder(tiny_shards, tmp_path: Path) -> None:
    from tasks.train import train_config

    _version(tmp_path, "v7", tiny_shards["open_clip"])
    cfg = train_config("deployments/train-sample.yaml", "v7", str(tmp_path), {"max_steps": 3})
    assert cfg.data.shards == f"{tmp_path}/versions/v7/package/open_clip" and cfg.data.version == "v7"
    assert cfg.max_steps == 3 and cfg.model.name == "rs5m-tiny"
    assert Path(cfg.output_dir).parent == tmp_path / "train-runs" and Path(cfg.output_dir).name.startswith(
        "v7-"
    )
    other = train_config("deployments/train-sample.yaml", "v7", str(tmp_path), {"max_steps": 4})
    assert other.output_dir != cfg.output_dir  # other settings: another run
    with pytest.raises(
        ValueError, match=r"'v8' is not a complete version under .*complete versions there: v7"
    ):
        train_config("deployments/train-sample.yaml", "v8", str(tmp_path), {})


def test_the_handoff_passes_parameters_the_train_flow_has(tmp_path: Path) -> None:
    from flows.train import train_georsclip
    from rs5m.config import BuildConfig
    from tasks.handoff import handoff_parameters

    cfg = BuildConfig(version="v2", root=str(tmp_path), sources=[{"name": "cc12m", "files": ["x"]}])
    params = handoff_parameters(cfg)
    assert params == {"dataset_version": "v2", "data_root": str(tmp_path)}
    assert set(params) <= set(inspect.signature(train_georsclip.fn).parameters)


@pytest.mark.e2e
def test_handoff_to_a_second_version_trains_that_version_from_the_base(
    prefect_harness, tiny_shards, tmp_path: Path
) -> None:
    from flows.train import train_georsclip

    root = tmp_path / "data"
    _version(root, "v1", tiny_shards["open_clip"])
    _version(root, "v2", n=32)
    first = train_georsclip(
        dataset_version="v1", data_root=str(root), max_steps=3, device="cpu", evaluate=False
    )
    second = train_georsclip(
        dataset_version="v2", data_root=str(root), max_steps=3, device="cpu", evaluate=False
    )
    one, two = first["train"], second["train"]
    assert one["output_dir"] != two["output_dir"]
    assert two["new_steps"] == 3 and two["resumed_from"] is None  # from the configured base, not v1's run
    doc = json.loads(Path(two["files"]["json"]).read_text())
    assert doc["data_version"] == "v2" and doc["config"]["data"]["shards"].endswith(
        "versions/v2/package/open_clip"
    )
    again = train_georsclip(
        dataset_version="v2", data_root=str(root), max_steps=3, device="cpu", evaluate=False
    )
    assert again["train"]["output_dir"] == two["output_dir"] and again["train"]["new_steps"] == 0


@pytest.mark.e2e
def test_flow_train_georsclip(prefect_harness, tiny_shards, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.train import train_georsclip

    eval_cfg = write_demo_eval_data(tmp_path / "eval-demo", None, max_per_class=1)
    eval_yaml = tmp_path / "eval.yaml"
    eval_yaml.write_text(yaml.safe_dump(eval_cfg.model_copy(update={"selo": []}).model_dump()))
    out = train_georsclip(
        shards=str(tiny_shards["open_clip"]),
        dataset_version="tiny-v1",
        max_steps=4,
        device="cpu",
        output_dir=str(tmp_path / "run"),
        eval_config=str(eval_yaml),
    )
    assert out["train"]["steps"] == 4 and Path(out["train"]["files"]["model"]).is_file()
    assert out["evaluation"]["table"][0]["model"] == "rs5m-tiny on tiny-v1 (ours)"
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"train-rs5m-tiny-on-tiny-v1-ours-loss", "train-rs5m-tiny-on-tiny-v1-ours-metrics"} <= keys
    assert "eval-rs5m-tiny-on-tiny-v1-ours" in keys


@pytest.mark.e2e
def test_missing_evaluation_data_fails_before_training(prefect_harness, tiny_shards, tmp_path: Path) -> None:
    from flows.train import train_georsclip

    eval_yaml = tmp_path / "eval.yaml"
    eval_yaml.write_text("zeroshot: [{name: Scenes, root: nowhere/scenes}]\n")
    with pytest.raises(FileNotFoundError, match=r"evaluation data missing: .*nowhere/scenes"):
        train_georsclip(
            shards=str(tiny_shards["open_clip"]), output_dir=str(tmp_path / "run"), eval_config=str(eval_yaml)
        )
    assert not (tmp_path / "run").exists()
