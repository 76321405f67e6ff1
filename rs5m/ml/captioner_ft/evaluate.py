"""Vanilla vs LoRA-tuned BLIP-2 on a test split: METEOR, BLEU-4, CIDEr in one table.

Contract of ``evaluate_captioners(model, revision, adapter, test, spec, device, out_dir)``:
- captions every test image with the RS3 captioner's sampler (``rs5m.ml.blip2.load_blip2``: the same
  nucleus settings ``top_p``/``top_k``/``max_length``/``prompt`` from ``spec``, adapter merged the same
  way), ``spec.n_samples`` per image with the first one scored, batch seeds from ``spec.seed`` and the
  batch's image names (``rs5m.ml.captioner.batch_seed``);
- rows ``vanilla`` (when ``spec.vanilla``) and ``tuned`` (when ``adapter``), each with meteor, bleu4,
  cider, n_images, adapter sha256; writes ``captions-<row>.jsonl``, ``metrics.json`` and ``table.md``
  to ``out_dir`` and returns ``{"table": rows, "files": {...}, "sampling": {...}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from rs5m.config.captioner import CaptionSplit, EvalSpec
from rs5m.config.rs3 import CaptionerConfig
from rs5m.ml.blip2 import load_blip2, resolve_device
from rs5m.ml.captioner import batch_seed
from rs5m.ml.captioner_ft.adapter import adapter_fingerprint
from rs5m.ml.captioner_ft.data import read_split
from rs5m.ml.captioner_ft.metrics import caption_metrics_many

COLUMNS = ("model", "adapter_sha256", "n_images", "meteor", "bleu4", "cider")


def sampler_config(model: str, revision: str | None, adapter: str | None, spec: EvalSpec) -> CaptionerConfig:
    """The RS3 ``CaptionerConfig`` used to caption the test split."""
    return CaptionerConfig(
        model=model, revision=revision, adapter=adapter, dtype="bf16", prompt=spec.prompt,
        n_samples=spec.n_samples, top_p=spec.top_p, top_k=spec.top_k, max_length=spec.max_length,
        batch_size=spec.batch_size,
    )  # fmt: skip


def generate_captions(
    cfg: CaptionerConfig, images_dir: Path, names: list[str], seed: int, device: str
) -> dict:
    """``{name: first sampled caption}`` for every image, batched like the RS3 captioner."""
    sampler = load_blip2(cfg, device)
    out: dict[str, str] = {}
    for i in range(0, len(names), cfg.batch_size):
        chunk = names[i : i + cfg.batch_size]
        imgs = [Image.open(images_dir / n).convert("RGB") for n in chunk]
        for name, samples in zip(chunk, sampler.sample(imgs, batch_seed(seed, chunk)), strict=True):
            out[name] = samples[0]
    return out


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown (empty cell for None; sha shortened to 12 hex)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = r.get(c)
            cells.append("" if v is None else (v[:12] if c == "adapter_sha256" else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def evaluate_captioners(
    model: str,
    revision: str | None,
    adapter: str | None,
    test: CaptionSplit,
    spec: EvalSpec,
    device: str,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Caption the test split with each model and score it (module contract)."""
    device = resolve_device(device)
    data = read_split(test)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[str, str | None]] = ([("vanilla", None)] if spec.vanilla else []) + (
        [("tuned", adapter)] if adapter else []
    )
    if not runs:
        raise ValueError("nothing to evaluate: vanilla=false and no adapter")
    cands, files = {}, {}
    for label, path in runs:
        cfg = sampler_config(model, revision, path, spec)
        cands[label] = generate_captions(cfg, data.images_dir, data.images, spec.seed, device)
        files[f"captions-{label}"] = str(out / f"captions-{label}.jsonl")
        with open(files[f"captions-{label}"], "w", encoding="utf-8") as f:
            for name in data.images:
                f.write(
                    json.dumps({"image": name, "caption": cands[label][name], "refs": data.refs[name]}) + "\n"
                )
    scores = caption_metrics_many([(data.refs, cands[label]) for label, _ in runs], spec.meteor)
    rows = []
    for (label, path), s in zip(runs, scores, strict=True):
        row = {"model": label, "adapter_sha256": adapter_fingerprint(path) if path else None}
        row |= {"n_images": s["n"], "meteor": s["meteor"], "bleu4": s["bleu4"], "cider": s["cider"]}
        if s.get("meteor_skipped"):
            row["meteor_skipped"] = s["meteor_skipped"]
        rows.append(row)
    sampling = sampler_config(model, revision, adapter, spec).model_dump(exclude={"adapter", "dtype"})
    report = {"table": rows, "sampling": sampling | {"seed": spec.seed, "scored": "first sample"}}
    skipped = next((s["meteor_skipped"] for s in scores if s.get("meteor_skipped")), None)
    if skipped:
        report["meteor_skipped"] = skipped
    files["metrics"], files["table"] = str(out / "metrics.json"), str(out / "table.md")
    Path(files["metrics"]).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    Path(files["table"]).write_text(table_markdown(rows), encoding="utf-8")
    return report | {"files": files}


def run_finetune(cfg: Any, log: Any = None) -> dict[str, Any]:
    """Fine-tune per ``cfg`` (a ``FinetuneConfig``), then evaluate vanilla vs tuned on ``cfg.test``.

    Returns ``{"finetune": <finetune.json record>, "evaluation": <report> or None}``; the evaluation
    goes to ``<out_dir>/eval`` and is skipped when ``cfg.eval.enabled`` is false or there is no test split.
    """
    from rs5m.ml.captioner_ft.train import finetune, resolve_data

    cfg = resolve_data(cfg)
    record = finetune(cfg, log)
    report = None
    if cfg.eval.enabled and cfg.test is not None:
        report = evaluate_captioners(
            cfg.model, cfg.revision, record["adapter"]["path"], cfg.test, cfg.eval, cfg.device,
            Path(cfg.out_dir) / "eval",
        )  # fmt: skip
    return {"finetune": record, "evaluation": report}
