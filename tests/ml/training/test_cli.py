"""``rs5m train --config FILE`` trains on CPU and writes a model that ``rs5m evaluate`` scores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from cli.commands import train as train_command
from cli.main import main
from rs5m.ml.evaluation.fixtures import write_demo_eval_data


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rs5m")
    train_command.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_rs5m_train_then_evaluate(tiny_shards, tmp_path: Path, capsys) -> None:
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "model": {"name": "rs5m-tiny"},
                "data": {"shards": str(tiny_shards["open_clip"]), "workers": 0, "shuffle_buffer": 16},
                "batch_size": 8,
                "max_steps": 50,
                "optim": {"lr": 1e-3, "warmup_steps": 1},
                "checkpoint_every": 2,
                "output_dir": "run",
            }
        )
    )
    args = _train_parser().parse_args(
        ["train", "--config", str(cfg_file), "--max-steps", "4", "--device", "cpu", "--set", "log_every=2"]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    model_pt = tmp_path / "run" / "final" / "model.pt"
    assert f"model: {model_pt}" in printed and "steps 4: loss" in printed
    doc = json.loads((tmp_path / "run" / "final" / "model.json").read_text())
    assert doc["config"]["max_steps"] == 4 and doc["config"]["log_every"] == 2

    eval_cfg = write_demo_eval_data(tmp_path / "eval-demo", None, max_per_class=1)
    eval_yaml = tmp_path / "eval.yaml"
    eval_yaml.write_text(yaml.safe_dump(eval_cfg.model_copy(update={"selo": []}).model_dump()))
    out = tmp_path / "eval-out"
    code = main(
        ["evaluate", "--config", str(eval_yaml), "--checkpoint", str(model_pt), "--output-dir", str(out),
         "--label", "rs5m-tiny trained (ours)", "--no-published"]
    )  # fmt: skip
    assert code == 0
    table = json.loads((out / "results.json").read_text())["table"]
    assert table[0]["model"] == "rs5m-tiny trained (ours)"
    assert table[0]["retrieval-mean-recall-rsitmd"] is not None


def test_set_needs_key_value() -> None:
    args = _train_parser().parse_args(["train", "--config", "x.yaml", "--set", "novalue"])
    try:
        train_command.overrides(args)
    except ValueError as exc:
        assert "KEY=VALUE" in str(exc)
    else:
        raise AssertionError("expected ValueError")
