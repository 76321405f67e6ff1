"""Outlier scores of one downloaded partition (reference §5): VLM domain score, own-caption score, P(RS).

Contract of ``score_partition(version_dir, source, part, cfg, detector)``:
- Rows: the partition's valid uids (``validity/<source>/<part>.parquet``), sorted by uid, scored as soon
  as the partition is valid, before the dedup barrier (the decision pools the dedup-kept ones); captions
  from the keyword candidates (``keyword/<source>/<part>.parquet``) when that file exists. Images come
  from the img2dataset tars.
- ``s_vlm`` = cos(image embedding, normalised mean of the prompt embeddings) (RS5M's 33 prompts by
  default); ``s_caption`` = cos(image, its own caption); ``c_rs`` = the detector's P(RS) (null
  without a detector). An image that cannot be decoded or is missing from its tar gets null scores
  (and a zero embedding) and is counted in ``extra["unscored"]``: the decision removes it.
- Writes ``outlier_score/_embeddings/<source>/<part>.npy`` (unit-norm, ``cfg.embedding_dtype``, one row
  per score row, same order) and ``<part>.uids.npy``, then ``outlier_score/<source>/<part>.parquet``, then
  last the stats ``outlier_score/_stats/<source>/<part>.json`` (stage ``outlier_score``,
  n_in = n_out = rows scored: a score removes nothing). A partition with a stats file is skipped.
- The model loads once per process (a cache keyed by the config's fingerprint), so a Dask worker
  keeps it between partitions, and only for a partition with rows to score: an empty one writes its
  (empty) outputs and stats without it. A model that cannot be loaded raises ``ScoringModelError`` (a
  ``ValueError``: not retried) naming the ``scoring`` keys to set. Decoding runs in ``cfg.num_workers``
  DataLoader processes, except in daemonic processes (Dask workers by default), which may not have
  children: there it runs inline.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from rs5m.config import BuildConfig, ScoringConfig
from rs5m.core.io import atomic_path, write_parquet
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.ml.detector import Detector, autocast, load_detector, resolve_device
from rs5m.pipeline.download.stage import download_dir, iter_shard_images
from rs5m.shards.preprocess import ClipPreprocess

log = logging.getLogger(__name__)
SCORE_STAGE = StageName.OUTLIER_SCORE.value
SCORE_SCHEMA = pa.schema(
    [("uid", pa.string()), ("source", pa.string()), ("s_vlm", pa.float32()),
     ("s_caption", pa.float32()), ("c_rs", pa.float32())]
)  # fmt: skip


@dataclass
class ClipScorer:
    """A loaded open_clip model with the normalised mean prompt embedding and its input geometry."""

    model: torch.nn.Module
    tokenizer: object
    text_feature: torch.Tensor
    size: int
    mean: torch.Tensor
    std: torch.Tensor
    device: torch.device
    precision: str

    @torch.inference_mode()
    def embed_images(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 [B,3,S,S] -> unit-norm float32 [B,D] on the device."""
        x = batch.to(self.device, non_blocking=True).float().div_(255).sub_(self.mean).div_(self.std)
        with autocast(self.device, self.precision):
            return F.normalize(self.model.encode_image(x).float(), dim=-1)

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Texts -> unit-norm float32 [N,D] on the device."""
        with autocast(self.device, self.precision):
            return F.normalize(self.model.encode_text(self.tokenizer(texts).to(self.device)).float(), dim=-1)


class ScoringModelError(ValueError):
    """The configured scoring model cannot be loaded (weights unreachable, unknown name); one line."""


_SCORERS: dict[str, ClipScorer] = {}
_DETECTORS: dict[tuple[str, int, str], Detector] = {}
_LOAD_LOCK = threading.Lock()  # a Dask worker with several threads must still load a model once


def get_scorer(cfg: ScoringConfig) -> ClipScorer:
    """The process's scorer for ``cfg`` (built on first use, then reused)."""
    key = cfg.fingerprint()
    with _LOAD_LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = _build_scorer(cfg)
    return _SCORERS[key]


def _load_model(cfg: ScoringConfig, device: torch.device) -> tuple[torch.nn.Module, object]:
    from rs5m.ml.models import CheckpointError, load_clip

    try:
        model, _, tokenizer = load_clip(cfg.model_name, cfg.pretrained, cfg.checkpoint, device=str(device))
    except (CheckpointError, FileNotFoundError) as exc:  # a local checkpoint: its own message names it
        raise ScoringModelError(f"scoring.checkpoint: {exc}") from exc
    except Exception as exc:  # open_clip: RuntimeError (download), ValueError (name), OSError...
        said = " ".join(str(exc).split())[:300] or type(exc).__name__
        weights = f"pretrained={cfg.pretrained!r}" if cfg.pretrained else "no pretrained weights"
        raise ScoringModelError(
            f"cannot load the scoring model {cfg.model_name!r} ({weights}): {said}; set scoring.model_name "
            "with scoring.pretrained (an open_clip tag or a local weights file) or scoring.checkpoint "
            "(a local state_dict) in the build config"
        ) from exc
    return model, tokenizer


def _precision(cfg: ScoringConfig, device: torch.device) -> str:
    return cfg.precision if device.type == "cuda" else cfg.cpu_precision


def embed_dim(cfg: ScoringConfig) -> int:
    """The embedding width of the configured model, from its open_clip config (no weights loaded)."""
    import open_clip

    from rs5m.ml.models import TINY_MODEL_NAME, canonical_model_name, register_tiny_model

    name = canonical_model_name(cfg.model_name)
    if name == TINY_MODEL_NAME:
        register_tiny_model(name)
    model_cfg = open_clip.get_model_config(name)
    if not model_cfg or "embed_dim" not in model_cfg:
        raise ScoringModelError(f"unknown scoring model {cfg.model_name!r}: set scoring.model_name")
    return int(model_cfg["embed_dim"])


def _build_scorer(cfg: ScoringConfig) -> ClipScorer:
    import open_clip

    device = resolve_device(cfg.device)
    model, tokenizer = _load_model(cfg, device)
    precision = _precision(cfg, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN pick the fastest convs
    pre = open_clip.get_model_preprocess_cfg(model)
    size = pre["size"][0] if isinstance(pre["size"], tuple | list) else pre["size"]
    scorer = ClipScorer(
        model, tokenizer, torch.empty(0), int(size),
        torch.tensor(pre["mean"], device=device).view(1, 3, 1, 1),
        torch.tensor(pre["std"], device=device).view(1, 3, 1, 1), device, precision,
    )  # fmt: skip
    scorer.text_feature = F.normalize(scorer.embed_texts(cfg.prompts).mean(0), dim=-1)
    return scorer


def get_detector(path: str | os.PathLike[str], device: torch.device) -> Detector:
    """The process's detector loaded from ``path`` (reloaded when the file changes)."""
    p = Path(path)
    p = p / "detector.pt" if p.is_dir() else p
    key = (str(p.resolve()), p.stat().st_mtime_ns, str(device))
    with _LOAD_LOCK:
        if key not in _DETECTORS:
            _DETECTORS[key] = load_detector(p, str(device))
    return _DETECTORS[key]


def scores_path(version_dir: Path, source: str, part: str) -> Path:
    """Score rows of one download partition."""
    return VersionLayout.of(version_dir).output(StageName.OUTLIER_SCORE, source, part)


def embeddings_path(version_dir: Path, source: str, part: str) -> Path:
    """Image embeddings of one partition (``<part>.uids.npy`` beside it holds the row order)."""
    return VersionLayout.of(version_dir).side(StageName.OUTLIER_SCORE, "embeddings", source, part, ".npy")


def score_stats_path(version_dir: Path, source: str, part: str) -> Path:
    """Done marker of one scored partition."""
    return VersionLayout.of(version_dir).stats(StageName.OUTLIER_SCORE, source, part)


def rows_to_score(version_dir: Path, source: str, part: str) -> pa.Table:
    """uid, source, key, shard, caption of the partition's valid rows, sorted by uid."""
    vdir = Path(version_dir)
    layout = VersionLayout.of(vdir)
    candidates = layout.output(StageName.KEYWORD, source, part)
    caption = "c.caption" if candidates.exists() else "NULL::VARCHAR"
    join = "LEFT JOIN read_parquet($c) c USING (uid)" if candidates.exists() else ""
    sql = f"""SELECT v.uid, v.source, v.key, v.shard, {caption} AS caption
        FROM read_parquet($v) v {join}
        WHERE v.valid ORDER BY v.uid"""
    params = {
        "v": str(layout.output(StageName.VALIDITY, source, part)),
    }
    if candidates.exists():
        params["c"] = str(candidates)
    with duckdb.connect() as con:
        rows = con.sql(sql, params=params).to_arrow_table()
    # shards by name inside this version's partition folder (the recorded path may be cwd-relative)
    folder = download_dir(vdir, source, part)
    shards = pa.array([str(folder / Path(s).name) for s in rows.column("shard").to_pylist()], pa.string())
    return rows.set_column(rows.schema.get_field_index("shard"), "shard", shards)


class ShardImages(IterableDataset):
    """(row index, uint8 [3,S,S] or None) for every row, shards dealt round-robin to loader workers."""

    def __init__(self, jobs: list[tuple[str, dict[str, int]]], size: int, draft: bool) -> None:
        self.jobs, self.size, self.draft = jobs, size, draft

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor | None]]:
        info = get_worker_info()
        jobs = self.jobs[info.id :: info.num_workers] if info else self.jobs
        pre = ClipPreprocess(self.size, draft=self.draft)
        for shard, index in jobs:
            pending = dict(index)
            for key, data in iter_shard_images(shard, set(index)):
                row = pending.pop(key, None)
                if row is not None:
                    yield row, _decode(pre, data)
            for row in pending.values():  # missing from the tar
                yield row, None


def _decode(pre: ClipPreprocess, data: bytes) -> torch.Tensor | None:
    try:
        return pre.decode(data).contiguous()
    except Exception:  # a valid image should decode; the row is left unscored and counted
        return None


def _collate(items: list[tuple[int, torch.Tensor | None]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ok = torch.tensor([x is not None for _, x in items])
    shape = next((x.shape for _, x in items if x is not None), (3, 1, 1))
    images = torch.stack([x if x is not None else torch.zeros(shape, dtype=torch.uint8) for _, x in items])
    return torch.tensor([i for i, _ in items]), ok, images


def _loader(rows: pa.Table, size: int, cfg: ScoringConfig, pin: bool) -> tuple[DataLoader, int]:
    jobs: dict[str, dict[str, int]] = {}
    for i, (key, shard) in enumerate(zip(rows["key"].to_pylist(), rows["shard"].to_pylist(), strict=True)):
        jobs.setdefault(shard, {})[key] = i
    workers = min(cfg.num_workers, len(jobs))
    if workers and multiprocessing.current_process().daemon:
        log.warning("daemonic process (a Dask worker?): decoding inline; see docs/operations.md, GPU workers")
        workers = 0
    dataset = ShardImages(sorted(jobs.items()), size, cfg.draft)
    loader = DataLoader(
        dataset, cfg.batch_size, num_workers=workers, collate_fn=_collate, pin_memory=pin,
        prefetch_factor=4 if workers else None,
    )  # fmt: skip
    return loader, workers


def _score_rows(rows: pa.Table, cfg: ScoringConfig, detector: Detector | None, emb: np.ndarray) -> dict:
    scorer = get_scorer(cfg)
    n = rows.num_rows
    out = {k: np.full(n, np.nan, np.float32) for k in ("s_vlm", "s_caption", "c_rs")}
    captions = rows["caption"].to_pylist()
    loader, workers = _loader(rows, scorer.size, cfg, scorer.device.type == "cuda")
    for idx, ok, images in loader:
        idx = idx[ok].numpy()
        if not len(idx):
            continue
        # one host-to-device copy of the (pinned) batch, shared by the scorer and the detector
        images = images.to(scorer.device, non_blocking=True)[ok.to(scorer.device)]
        feats = scorer.embed_images(images)
        emb[idx] = feats.cpu().numpy().astype(emb.dtype)
        out["s_vlm"][idx] = (feats @ scorer.text_feature).cpu().numpy()
        if detector is not None:
            out["c_rs"][idx] = detector.proba_uint8(images, scorer.precision).cpu().numpy()
        has = [j for j, i in enumerate(idx) if captions[i]]
        if has:
            text = scorer.embed_texts([captions[idx[j]] for j in has])
            out["s_caption"][idx[has]] = (feats[has] * text).sum(-1).cpu().numpy()
    return {**out, "loader_workers": workers}


def _no_scores() -> dict:
    return {**{k: np.empty(0, np.float32) for k in ("s_vlm", "s_caption", "c_rs")}, "loader_workers": 0}


def _to_table(rows: pa.Table, scores: dict) -> pa.Table:
    cols = {"uid": rows["uid"], "source": rows["source"]}
    for name in ("s_vlm", "s_caption", "c_rs"):
        v = scores[name]
        cols[name] = pa.array(v, pa.float32(), mask=np.isnan(v))
    return pa.table(cols, schema=SCORE_SCHEMA)


def score_partition(
    version_dir: str | os.PathLike[str],
    source: str,
    part: str,
    cfg: ScoringConfig,
    detector: str | os.PathLike[str] | Detector | None = None,
) -> PartitionStats:
    """Score one download partition (see the module contract); ``detector`` is a checkpoint path or model."""
    vdir = Path(version_dir)
    marker = score_stats_path(vdir, source, part)
    rows = rows_to_score(vdir, source, part)
    # The rows to score come from validity; scores of other rows are stale.
    upstream = hashlib.sha256("\n".join(rows.column("uid").to_pylist()).encode()).hexdigest()
    done = read_done(marker)
    if done is not None and done.extra.get("upstream") == upstream:
        return done
    start = time.perf_counter()
    if rows.num_rows:
        scorer = get_scorer(cfg)
        if isinstance(detector, str | os.PathLike):
            detector = get_detector(detector, scorer.device)
        dim, device, precision = int(scorer.text_feature.shape[-1]), scorer.device, scorer.precision
    else:  # nothing to score: no model is loaded (its weights may be gigabytes away, or unreachable)
        device = resolve_device(cfg.device)
        dim, precision = embed_dim(cfg), _precision(cfg, device)
    with atomic_path(embeddings_path(vdir, source, part)) as tmp:
        emb = np.lib.format.open_memmap(tmp, mode="w+", dtype=cfg.embedding_dtype, shape=(rows.num_rows, dim))
        scores = _score_rows(rows, cfg, detector, emb) if rows.num_rows else _no_scores()
        emb.flush()
        del emb
    uids = np.array(rows["uid"].to_pylist(), dtype=str)
    with (
        atomic_path(embeddings_path(vdir, source, part).with_suffix(".uids.npy")) as tmp,
        open(tmp, "wb") as fh,
    ):
        np.save(fh, uids, allow_pickle=False)
    write_parquet(scores_path(vdir, source, part), _to_table(rows, scores))
    seconds = time.perf_counter() - start
    stats = PartitionStats(stage=SCORE_STAGE, source=source, partition=part, n_in=rows.num_rows)
    stats.n_out = rows.num_rows
    stats.extra = {
        "upstream": upstream,
        "unscored": int(np.isnan(scores["s_vlm"]).sum()),
        "model": cfg.model_name, "pretrained": cfg.pretrained, "checkpoint": cfg.checkpoint,
        "detector": detector is not None, "device": str(device), "precision": precision,
        "loader_workers": scores["loader_workers"], "seconds": round(seconds, 3),
        "images_per_s": round(rows.num_rows / seconds, 1) if seconds > 0 else None,
    }  # fmt: skip
    stats.write(marker)
    return stats


def run(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """The outlier scoring stage over one partition (``rs5m.pipeline.registry``)."""
    return score_partition(layout.dir, source, partition, cfg.scoring, cfg.detector)
