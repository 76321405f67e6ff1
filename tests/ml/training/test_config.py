"""TrainConfig: presets of reference §9, YAML paths, overrides and the checks that refuse bad runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs5m.config.train import PRESETS, TrainConfig, load_train_config
from rs5m.ml.training.loop import WarmupCosine


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg" / "train.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_paper_and_ret2_presets(tmp_path: Path) -> None:
    paper = load_train_config(_yaml(tmp_path, "preset: paper\ndata: {shards: shards}\n"))
    assert (paper.optim.lr, paper.optim.weight_decay, paper.batch_size, paper.epochs) == (1e-6, 0.5, 700, 20)
    assert paper.precision == "amp" and paper.optim.schedule == "cosine"
    assert (paper.model.name, paper.model.pretrained) == ("ViT-B-32", "openai")
    ret2 = load_train_config(
        _yaml(tmp_path, "preset: ret2\nmodel: {checkpoint: RS5M_ViT-B-32.pt}\ndata: {shards: s}\n"),
        {"optim.lr": 1e-5},
    )
    assert (ret2.batch_size, ret2.epochs, ret2.optim.warmup_steps, ret2.optim.grad_clip_norm) == (
        600,
        7,
        100,
        50.0,
    )
    assert ret2.optim.lr == 1e-5 and ret2.optim.weight_decay == 0.5  # override beats preset, rest kept
    assert ret2.model.checkpoint == str(tmp_path / "cfg" / "RS5M_ViT-B-32.pt")
    assert set(PRESETS) == {"paper", "ret2"}


def test_relative_paths_resolve_against_the_yaml(tmp_path: Path) -> None:
    text = "data: {csv: [{csv: a.csv, images_dir: img}]}\noutput_dir: ../runs/x\nresume: ck/step.pt\n"
    cfg = load_train_config(_yaml(tmp_path, text))
    assert cfg.data.csv[0].csv == str(tmp_path / "cfg" / "a.csv")
    assert cfg.output_dir == str(tmp_path / "runs" / "x") and cfg.resume == str(tmp_path / "cfg/ck/step.pt")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("data: {}\n", "either shards or csv"),
        ("data: {shards: s}\npeft: {r: 4}\nengine: open_clip_train\n", "open_clip-layout shards only"),
        ("data: {shards: s}\nbatch_size: 0\n", "batch_size"),
        ("data: {shards: s}\nmodel: {image_norm: nope}\n", "image_norm"),
        ("preset: huge\ndata: {shards: s}\n", "preset"),
        ("data: {shards: s}\nbogus: 1\n", "bogus"),
    ],
)
def test_bad_configs_fail_in_one_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        load_train_config(_yaml(tmp_path, text))
    assert "\n" not in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config not found"):
        load_train_config(tmp_path / "none.yaml")


def test_schedule_warmup_then_cosine() -> None:
    lam = WarmupCosine(warmup=4, total=14, schedule="cosine")
    assert [lam(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lam(9) == pytest.approx(0.5) and lam(14) == pytest.approx(0.0)
    assert WarmupCosine(0, 10, "const")(7) == 1.0


def test_global_batch() -> None:
    cfg = TrainConfig.model_validate({"data": {"shards": "s"}, "batch_size": 8, "accum_steps": 3})
    assert cfg.global_batch(4) == 96
