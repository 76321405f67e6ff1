"""Whole evaluations: real sample data per task, the CLI, and the ``evaluate-georsclip`` Prefect flow."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cli.main import main
from rs5m.config.evaluate import EvalConfig, RetrievalDataset, SeloDataset, ZeroShotDataset
from rs5m.ml.evaluation.fixtures import write_air_slt, write_rsitmd
from rs5m.ml.evaluation.report import TABLE_COLUMNS
from rs5m.ml.evaluation.retrieval import evaluate_retrieval
from rs5m.ml.evaluation.selo import evaluate_selo
from rs5m.ml.evaluation.zeroshot import evaluate_zeroshot


def test_zeroshot_on_whu_rs19(shared_data: Path, tiny_embedder) -> None:
    ds = ZeroShotDataset(name="WHU-RS19", root=str(shared_data / "whu-rs19"), max_per_class=1)
    result = evaluate_zeroshot(tiny_embedder, ds)
    assert (result["n_classes"], result["n_images"]) == (19, 19)
    assert 0 <= result["metrics"]["top1"] <= 100
    other = evaluate_zeroshot(tiny_embedder, ds.model_copy(update={"protocol": "clip_benchmark"}))
    assert other["protocol"] == "clip_benchmark" and 0 <= other["metrics"]["top1"] <= 100


def test_retrieval_on_rsitmd_fixture_csv_and_txt_agree(
    shared_data: Path, tmp_path: Path, tiny_embedder
) -> None:
    paths = write_rsitmd(tmp_path, shared_data / "rsitmd", n_images=10)
    first = (shared_data / "rsitmd" / "test_caps.txt").read_text().splitlines()[0].strip()
    assert first in paths["csv"].read_text()
    by_csv = RetrievalDataset(name="rsitmd", csv=str(paths["csv"]), images_dir=str(paths["images"]))
    by_txt = RetrievalDataset(
        name="rsitmd",
        captions_file=str(paths["captions"]),
        filenames_file=str(paths["filenames"]),
        images_dir=str(paths["images"]),
    )
    a, b = evaluate_retrieval(tiny_embedder, by_csv), evaluate_retrieval(tiny_embedder, by_txt)
    assert (a["n_images"], a["n_captions"]) == (10, 50)
    assert a["metrics"] == b["metrics"]


def test_selo_with_real_air_slt_polygons(shared_data: Path, tmp_path: Path, tiny_embedder) -> None:
    paths = write_air_slt(tmp_path, shared_data / "air-slt" / "anno.json", n_images=1, per_image=2)
    real = json.loads((shared_data / "air-slt" / "anno.json").read_text())
    ds = SeloDataset(annotations=str(paths["annotations"]), images_dir=str(paths["images"]))
    result = evaluate_selo(tiny_embedder, ds)
    assert (result["n_images"], result["n_queries"]) == (1, 2)
    assert {q["caption"] for q in result["per_query"]} <= {r["caption"].strip() for r in real}


def _demo_yaml(cfg: EvalConfig) -> Path:
    return Path(cfg.output_dir).parent / "eval.yaml"


def test_cli_evaluate_config_writes_the_table(demo_cfg: EvalConfig, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["evaluate", "--config", str(_demo_yaml(demo_cfg)), "--output-dir", str(out)]
    args += ["--cache-dir", str(demo_cfg.cache_dir)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| model |" in printed and "GeoRSCLIP-ViTB32 (published)" in printed
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[: 1 + len(TABLE_COLUMNS)] == ["model", *TABLE_COLUMNS]
    assert [r["model"] for r in rows][1:] == ["GeoRSCLIP-ViTB32 (published)", "GeoRSCLIP-ViTH14 (published)"]
    assert rows[0]["retrieval-mean-recall-rsitmd"] and rows[0]["Selo_Rmi"] and rows[0]["EuroSAT_acc"] == ""
    assert rows[1]["Selo_Rsu"] == "0.755636"
    details = json.loads((out / "results.json").read_text())
    assert {r["task"] for r in details["results"]} == {"zeroshot", "retrieval", "selo"}
    assert main(args) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["cache"]["hits"] > 0 and again["table"][0] == details["table"][0]


def test_cli_errors_are_one_line(demo_cfg: EvalConfig, tmp_path: Path, capsys) -> None:
    assert main(["evaluate", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "config not found" in capsys.readouterr().err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    args = ["evaluate", "--config", str(_demo_yaml(demo_cfg)), "--checkpoint", str(broken)]
    assert main([*args, "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()  # the flow's progress lines may come first; the cause is last
    assert "cannot read checkpoint" in err.splitlines()[-1] and "Traceback" not in err
    empty = tmp_path / "empty.yaml"
    empty.write_text("model: {name: rs5m-tiny}\n")
    assert main(["evaluate", "--config", str(empty)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


@pytest.mark.e2e
def test_flow_evaluate_georsclip(prefect_harness, demo_cfg: EvalConfig, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.evaluate import evaluate_georsclip

    out = evaluate_georsclip(
        config=str(_demo_yaml(demo_cfg)), batch_size=16, output_dir=str(tmp_path / "flow")
    )
    assert [row["model"] for row in out["table"]][0] == "rs5m-tiny random init (ours)"
    assert len(out["table"]) == 3 and Path(out["files"]["csv"]).is_file()
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert "eval-rs5m-tiny-random-init-ours" in keys
