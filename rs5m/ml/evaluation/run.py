"""One evaluation run: load the model once, score every configured dataset, write the table.

``run_evaluation(cfg)`` is the whole run; the Prefect flow calls the same pieces one per task
(``evaluate_dataset`` per dataset, then ``finish_evaluation``). The loaded model is kept per process,
so tasks running in one worker share it.
"""

from __future__ import annotations

import json
import logging
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from rs5m.config.evaluate import EvalConfig, ModelSpec
from rs5m.ml.evaluation.embed import Embedder
from rs5m.ml.evaluation.report import build_table, table_markdown, write_report
from rs5m.ml.evaluation.retrieval import evaluate_retrieval
from rs5m.ml.evaluation.selo import evaluate_selo
from rs5m.ml.evaluation.zeroshot import evaluate_zeroshot
from rs5m.ml.models import load_clip

log = logging.getLogger(__name__)
TASKS = ("zeroshot", "retrieval", "selo")


@lru_cache(maxsize=2)
def _embedder(key: str) -> Embedder:
    settings = json.loads(key)
    spec = ModelSpec.model_validate(settings["model"])
    model, preprocess, tokenizer = load_clip(
        spec.name,
        pretrained=spec.pretrained,
        checkpoint=spec.checkpoint,
        device=settings["device"],
        precision=spec.precision,
        quick_gelu=spec.quick_gelu,
        image_norm=spec.image_norm,
        init_seed=spec.init_seed,
    )
    return Embedder(
        model,
        preprocess,
        tokenizer,
        settings["cache"],
        settings["batch_size"],
        settings["workers"],
        spec.precision,
    )


def get_embedder(cfg: EvalConfig) -> Embedder:
    """The process-wide embedder for ``cfg``'s model and batch/cache settings (loaded on first use)."""
    key = {
        "model": cfg.model.model_dump(),
        "device": cfg.device,
        "batch_size": cfg.batch_size,
        "workers": cfg.workers,
        "cache": str(cfg.resolved_cache_dir()) if cfg.use_cache else None,
    }
    return _embedder(json.dumps(key, sort_keys=True))


def dataset_jobs(cfg: EvalConfig) -> list[tuple[str, str]]:
    """``(task, dataset name)`` for every configured dataset, in table order."""
    return [(task, ds.name) for task in TASKS for ds in getattr(cfg, task)]


def evaluate_dataset(cfg: EvalConfig, task: str, name: str) -> dict[str, Any]:
    """Score one dataset; the result has ``task``, ``dataset``, ``metrics``, sizes and ``seconds``."""
    matches = [ds for ds in getattr(cfg, task, []) if ds.name == name] if task in TASKS else []
    if not matches:
        raise ValueError(f"no {task} dataset named {name!r} in the config")
    ds = matches[0]
    embedder = get_embedder(cfg)
    start = time.perf_counter()
    if task == "zeroshot":
        result = evaluate_zeroshot(embedder, ds)
    elif task == "retrieval":
        result = evaluate_retrieval(embedder, ds)
    else:
        maps = Path(cfg.output_dir) / "selo" / ds.name if ds.save_maps else None
        result = evaluate_selo(embedder, ds, maps)
    result["seconds"] = round(time.perf_counter() - start, 3)
    log.info("%s %s: %s (%.1fs)", task, name, result["metrics"], result["seconds"])
    return result


def finish_evaluation(cfg: EvalConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Build the table, write CSV/JSON/Markdown under ``output_dir``; return table, files and details."""
    embedder = get_embedder(cfg)
    label = cfg.model.row_label()
    rows = build_table(label, results, cfg.compare_published)
    details = {
        "model": cfg.model.model_dump(),
        "model_fingerprint": embedder.fingerprint,
        "cache": {"hits": embedder.cache.hits, "misses": embedder.cache.misses},
        "config": cfg.model_dump(),
        "results": results,
    }
    files = write_report(cfg.output_dir, rows, details)
    return {
        "label": label,
        "table": rows,
        "markdown": table_markdown(rows),
        "files": files,
        "results": results,
    }


def run_evaluation(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate every configured dataset with one model and write the report (:func:`finish_evaluation`)."""
    results = [evaluate_dataset(cfg, task, name) for task, name in dataset_jobs(cfg)]
    return finish_evaluation(cfg, results)
