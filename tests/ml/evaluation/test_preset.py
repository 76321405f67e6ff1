"""``rs5m evaluate --preset``: a tiny checkpoint in the real format and a tiny test-data zip in the real
layout, served by the hub stand-in (``HF_ENDPOINT``) to the real huggingface_hub client."""

from __future__ import annotations

import io
import json
import shutil
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch

from cli.main import main
from rs5m.ml.evaluation.fixtures import write_air_slt, write_image_folder, write_rsitmd
from rs5m.ml.evaluation.preset import compare_published, load_presets
from rs5m.ml.evaluation.report import PUBLISHED_ROWS
from rs5m.ml.evaluation.testdata import obtain
from rs5m.ml.models import load_clip
from tests.http_stub import serving
from tests.hub_stub import HubStub, Repo

REPO = "Zilun/GeoRSCLIP"
CKPT, ZIP = "ckpt/RS5M_ViT-B-32.pt", "data/rs5m_test_data.zip"


def _test_data_zip(tmp: Path) -> bytes:
    """rs5m_test_data/ as reference §10 lays it out, a few generated images per dataset."""
    root = tmp / "rs5m_test_data"
    write_image_folder(root / "eurosat-rgb" / "2750", per_class=1, size=64)
    write_image_folder(root / "RESISC45", per_class=1, size=64, seed=1)
    write_image_folder(root / "AID", per_class=1, size=64, seed=2)
    write_rsitmd(root / "rsitmd", n_images=3)
    rsicd = write_rsitmd(root / "rsicd", n_images=3, seed=3)
    rsicd["images"].rename(root / "rsicd" / "RSICD_images")
    frame = pd.read_csv(rsicd["csv"])
    frame.to_csv(root / "rsicd" / "rsicd_test.csv", index=False, encoding="gb18030")
    write_air_slt(root / "AIR-SLT", n_images=1, per_image=1, size=(800, 768))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, path.relative_to(tmp).as_posix())
    return buf.getvalue()


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The two released files: an open_clip state_dict (of ``rs5m-tiny``) and the test-data zip."""
    model, _, _ = load_clip("rs5m-tiny", init_seed=0)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return {
        CKPT: buf.getvalue(),
        ZIP: _test_data_zip(tmp_path_factory.mktemp("zip")),
        "README.md": b"# GeoRSCLIP",
    }


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, released: dict[str, bytes]) -> Iterator[Repo]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with serving(HubStub()) as stub:
        monkeypatch.setenv("HF_ENDPOINT", stub.base)
        yield stub.add(Repo(REPO, "model", dict(released)))


def _args(preset_dir: Path, cache: Path) -> list[str]:
    return [
        "evaluate", "--preset", "georsclip-vitb32", "--preset-dir", str(preset_dir), "--model", "rs5m-tiny",
        "--device", "cpu", "--workers", "0", "--batch-size", "16", "--cache-dir", str(cache),
    ]  # fmt: skip


def test_preset_fetches_unzips_evaluates_and_compares(
    hub: Repo, tmp_path: Path, eval_cache: Path, capsys
) -> None:
    preset_dir = tmp_path / "georsclip"
    assert main(_args(preset_dir, eval_cache)) == 0
    out = capsys.readouterr().out
    assert "| GeoRSCLIP-ViTB32 (ours, released checkpoint) |" in out
    assert "| EuroSAT top-1 |" in out and "| 61.40 |" in out and "| SeLo Rmi (x100) |" in out
    assert "of 6 differ by more than 0.5 points" in out
    results = preset_dir / "results-georsclip-vitb32"
    table = json.loads((results / "results.json").read_text())["table"][0]
    assert {"EuroSAT_acc", "RESISC45_acc", "AID_acc", "retrieval-mean-recall-rsicd", "Selo_Rmi"} <= set(table)
    comparison = json.loads((results / "comparison.json").read_text())["rows"]
    euro = comparison[0]
    assert euro["published"] == 61.40 and euro["diff_points"] == round(table["EuroSAT_acc"] - 61.40, 2)
    assert (preset_dir / "rs5m_test_data" / "rsicd" / "RSICD_images").is_dir()
    manifest = json.loads((preset_dir / "fetch-manifest.json").read_text())["files"]
    assert set(manifest) == {CKPT, ZIP} and manifest[CKPT]["revision"] == hub.commit
    downloads = dict(hub.downloads)
    assert downloads == {CKPT: 1, ZIP: 1}
    (preset_dir / ZIP).unlink()  # extracted once: the zip is no longer needed
    presets = load_presets()
    ckpt, root = obtain(presets.presets["georsclip-vitb32"], presets.test_data, preset_dir)
    assert (ckpt, root) == (preset_dir / CKPT, preset_dir / "rs5m_test_data") and hub.downloads == downloads


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")


def test_offline_names_every_file_to_place(
    hub: Repo, tmp_path: Path, eval_cache: Path, monkeypatch, capsys
) -> None:
    _offline(monkeypatch)
    preset_dir = tmp_path / "offline"
    assert main(_args(preset_dir, eval_cache)) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rs5m evaluate: error: Zilun/GeoRSCLIP: cannot reach http://127.0.0.1:")
    for path in (CKPT, ZIP):
        assert f"huggingface.co/{REPO}/resolve/main/{path}" in line and str(preset_dir / path) in line
    assert "605 MB" in line and "4.92 GB" in line and "rs5m_test_data/" in line


@pytest.mark.slow
def test_offline_evaluates_files_placed_by_hand(
    hub: Repo, tmp_path: Path, eval_cache: Path, monkeypatch, capsys
) -> None:
    _offline(monkeypatch)
    preset_dir = tmp_path / "offline"
    for path in (CKPT, ZIP):
        (preset_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (preset_dir / path).write_bytes(hub.files[path])
    assert main(_args(preset_dir, eval_cache)) == 0
    assert "ours vs published" in capsys.readouterr().out and hub.downloads == {}


def test_unknown_preset_and_bad_zip_are_one_line(hub: Repo, tmp_path: Path, eval_cache: Path, capsys) -> None:
    args = _args(tmp_path / "p", eval_cache)
    args[2] = "georsclip-vitl99"
    assert main(args) == 2
    assert (
        "unknown preset 'georsclip-vitl99'; known: georsclip-vitb32, georsclip-vith14"
        in capsys.readouterr().err
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", "x")
    hub.files[ZIP] = buf.getvalue()
    assert main(_args(tmp_path / "p", eval_cache)) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "unsafe member '../evil.txt'" in line and not (tmp_path / "evil.txt").exists()
    shutil.rmtree(tmp_path / "p")


def test_presets_agree_with_the_published_table_and_flag_beyond_tolerance() -> None:
    presets = load_presets()
    by_label = {r["model"]: r for r in PUBLISHED_ROWS}
    for name, label in (("georsclip-vitb32", "GeoRSCLIP-ViTB32"), ("georsclip-vith14", "GeoRSCLIP-ViTH14")):
        published = presets.presets[name].published
        assert published == {k: by_label[f"{label} (published)"][k] for k in published}
    ours = {"EuroSAT_acc": 61.0, "RESISC45_acc": 72.74, "Selo_Rmi": 0.7400}
    rows = {r["metric"]: r for r in compare_published(ours, presets, "georsclip-vitb32")}
    assert rows["EuroSAT top-1"]["diff_points"] == -0.4 and rows["EuroSAT top-1"]["flag"] == ""
    assert rows["SeLo Rmi (x100)"]["diff_points"] == -0.47 and rows["RESISC45 top-1"]["diff_points"] == 0.0
    assert rows["AID top-1"]["ours"] is None and rows["AID top-1"]["flag"] == ""
    assert compare_published({"AID_acc": 75.0}, presets, "georsclip-vitb32")[2]["flag"] == "!"
