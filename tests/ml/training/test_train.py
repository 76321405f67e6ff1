"""Our loop on CPU with the tiny model: learning, checkpoints, exact resume, both layouts, CSV sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rs5m.ml.models import load_clip
from rs5m.ml.training.checkpoint import list_checkpoints, load_checkpoint
from rs5m.ml.training.loop import train
from rs5m.ml.training.metrics import read_metrics


class Killed(Exception):
    """Stands in for the process dying after a step."""


def _kill_after(step: int):
    def hook(s: int, row: dict) -> None:
        if s == step:
            raise Killed

    return hook


def _final(run_dir: str) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / "final" / "model.pt", weights_only=True)


def test_loss_falls_and_export_loads_strictly(make_cfg) -> None:
    cfg = make_cfg()
    result = train(cfg)
    rows = read_metrics(Path(cfg.output_dir) / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 21))
    first, last = sum(r["loss"] for r in rows[:3]) / 3, sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.8 * first, (first, last)
    assert rows[-1]["lr"] == pytest.approx(0.0, abs=1e-12) and rows[1]["lr"] == pytest.approx(2e-3)
    assert all(r["samples_per_s"] > 0 for r in rows)
    assert Path(result.files["loss_curve"]).read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(Path(result.files["json"]).read_text())
    assert doc["data_version"] == "tiny-v1" and doc["model"] == {
        "name": "rs5m-tiny",
        "quick_gelu": False,
        "image_norm": "clip",
    }
    assert doc["steps"] == 20 and doc["config"]["max_steps"] == 20
    state = _final(cfg.output_dir)
    assert type(state).__name__ == "OrderedDict" and all(v.dtype == torch.float32 for v in state.values())
    assert not any(k.startswith("module.") for k in state)
    model, _, _ = load_clip("rs5m-tiny", checkpoint=result.files["model"])  # strict keys and shapes
    assert torch.equal(model.state_dict()["logit_scale"], state["logit_scale"])


def test_checkpoint_round_trip(make_cfg) -> None:
    cfg = make_cfg(max_steps=10, checkpoint_every=4, keep_checkpoints=2)
    train(cfg)
    names = [p.name for p in list_checkpoints(cfg.output_dir)]
    assert names == ["step-00000008.pt", "step-00000010.pt"]  # every 4 steps, the end, newest 2 kept
    state = load_checkpoint(list_checkpoints(cfg.output_dir)[-1])
    assert state["step"] == 10 and state["world_size"] == 1 and state["workers"] == 0
    assert set(state) >= {"model", "optimizer", "scheduler", "scaler", "rng", "data", "epoch"}
    assert state["data"][0]["consumed"] == [16] and state["epoch"] == 1  # 64 samples = 8 steps/epoch
    final = _final(cfg.output_dir)
    assert all(torch.equal(final[k], state["model"][k]) for k in final)
    again = train(cfg)  # already at max_steps: nothing to train, same export
    assert again.resumed_from and again.steps == 10
    assert all(torch.equal(final[k], v) for k, v in _final(cfg.output_dir).items())
    with pytest.raises(ValueError, match="data.workers=0"):
        train(
            make_cfg(
                max_steps=12,
                checkpoint_every=4,
                data__workers=2,
                resume=str(list_checkpoints(cfg.output_dir)[-1]),
            )
        )


def _resume_matches(make_cfg, kill_at: int, **over) -> None:
    whole = make_cfg("whole", **over)
    train(whole)
    broken = make_cfg("broken", **over)
    with pytest.raises(Killed):
        train(broken, on_step=_kill_after(kill_at))
    resumed = train(broken)
    assert resumed.resumed_from is not None
    a, b = _final(whole.output_dir), _final(broken.output_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la = [r["loss"] for r in read_metrics(Path(whole.output_dir) / "metrics.jsonl")]
    lb = [r["loss"] for r in read_metrics(Path(broken.output_dir) / "metrics.jsonl")]
    assert la == lb


def test_killed_after_step_10_resumes_bit_identical(make_cfg) -> None:
    # checkpoint at 10, killed during step 12's aftermath: steps 11-12 are redone from the checkpoint
    _resume_matches(make_cfg, kill_at=12, checkpoint_every=10)


def test_resume_with_workers_and_accumulation_bit_identical(make_cfg) -> None:
    # 2 DataLoader workers (the resume must rotate their round-robin), 2 micro-batches per step
    _resume_matches(
        make_cfg, kill_at=4, max_steps=6, checkpoint_every=3, accum_steps=2, batch_size=4, data__workers=2
    )


def test_rs5m_layout_and_released_style_shards(make_cfg, tiny_shards) -> None:
    cfg = make_cfg(max_steps=3, data__shards=str(tiny_shards["rs5m"]), data__layout="rs5m")
    assert train(cfg).steps == 3


def test_csv_retrieval_sources(make_cfg, tmp_path: Path) -> None:
    from rs5m.ml.evaluation.fixtures import write_rsitmd

    paths = write_rsitmd(tmp_path / "rsitmd", None)
    src = {"csv": str(paths["csv"]), "images_dir": str(paths["images"])}
    cfg = make_cfg(max_steps=4, checkpoint_every=2, data={"csv": [src, src], "workers": 0})
    result = train(cfg)
    state = load_checkpoint(list_checkpoints(cfg.output_dir)[-1])
    assert result.steps == 4 and state["data"][0]["offset"] % 8 == 0
