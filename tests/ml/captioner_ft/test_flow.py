"""The ``finetune-captioner`` flow: sample YAML (tiny BLIP-2, generated data) -> adapter + table artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def test_sample_yaml_resolves(tmp_path: Path) -> None:
    from rs5m.config.captioner import load_finetune_config

    cfg = load_finetune_config(
        ROOT / "deployments/finetune-captioner-sample.yaml", out_dir=str(tmp_path), max_steps=2
    )
    assert cfg.model == "tiny-random-blip2" and cfg.max_steps == 2 and cfg.out_dir == str(tmp_path)
    assert cfg.fixture is not None and "shared" not in cfg.fixture.out  # the sample needs no ../shared


@pytest.mark.e2e
def test_flow_finetune_captioner(prefect_harness, tmp_path: Path) -> None:
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.finetune_captioner import finetune_captioner_flow

    cfg = yaml.safe_load((ROOT / "deployments/finetune-captioner-sample.yaml").read_text())
    cfg["fixture"] |= {"out": str(tmp_path / "fx"), "n_train": 2, "n_test": 2}
    cfg["eval"] |= {"meteor": "skip", "max_length": 6}
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(cfg))
    out = finetune_captioner_flow(
        name="t", config=str(tmp_path / "ft.yaml"), out_dir=str(tmp_path / "run"), max_steps=2, device="cpu"
    )
    assert out["finetune"]["steps"] == 2 and (tmp_path / "run" / "finetune.json").is_file()
    assert [r["model"] for r in out["evaluation"]["table"]] == ["vanilla", "tuned"]

    async def artifact():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    keys = {a.key for a in asyncio.run(artifact())}
    assert "captioner-ft-t" in keys
