"""Every pipeline stage's knobs (download, validity, dedup, scoring, outlier, RS detector), importable without
torch. Thresholds live here and in the YAML that sets them, never in stage code; ``BuildConfig`` composes
them."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rs5m.config.loader import PathStr

RS_NOUNS = ("remote sensing image", "aerial image", "satellite image")
RS_ADJECTIVES = (
    "low resolution", "bad", "cropped", "bright", "dark",
    "close-up", "black and white", "jpeg corrupted", "blurry", "good",
)  # fmt: skip


def rs_prompts() -> list[str]:
    """RS5M's 33 prompts: per noun, ``a(n) <noun>.`` then ``a <adjective> <noun>.`` for the 10 adjectives."""
    out = []
    for noun in RS_NOUNS:
        out.append(f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}.")
        out += [f"a {adj} {noun}." for adj in RS_ADJECTIVES]
    return out


class ScoringConfig(BaseModel):
    """The scoring model and how it runs. Default: CLIP-ConvNeXt-XXL as in RS5M (tag: our choice)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = "convnext_xxlarge"
    pretrained: str | None = "laion2b_s34b_b82k_augreg_soup"
    checkpoint: PathStr | None = None
    prompts: list[str] = Field(default_factory=rs_prompts, min_length=1)
    batch_size: int = Field(default=256, ge=1, le=65536)
    precision: Literal["fp32", "bf16", "fp16"] = Field(default="bf16", description="autocast on CUDA")
    cpu_precision: Literal["fp32", "bf16"] = Field(default="fp32", description="autocast on the CPU")
    device: str = "auto"
    num_workers: int = Field(default=4, ge=0, le=256, description="decode processes per scoring task")
    draft: bool = Field(default=True, description="fast DCT-scaled JPEG decode (~1 grey level off)")
    embedding_dtype: Literal["float16", "float32"] = "float16"
    dask_gpu: Literal["auto", "always", "never"] = Field(
        default="auto", description="ask Dask for GPU=1: when a worker has it / always / never"
    )

    def fingerprint(self) -> str:
        """Hash of what decides the loaded model and text feature (not batch or loader settings)."""
        keys = ("model_name", "pretrained", "checkpoint", "prompts", "device", "precision", "cpu_precision")
        return hashlib.sha256(
            json.dumps(self.model_dump(include=set(keys)), sort_keys=True).encode()
        ).hexdigest()


class DownloadConfig(BaseModel):
    """Download stage knobs. Defaults keep native resolution and respect img2dataset's opt-out headers."""

    model_config = ConfigDict(extra="forbid")

    timeout: float = Field(default=10.0, gt=0, le=300, description="seconds per socket operation")
    total_timeout: float = Field(default=60.0, gt=0, le=3600, description="seconds per response, all reads")
    retries: int = Field(default=1, ge=0, le=10, description="in-run retries of transient errors only")
    retry_backoff_s: float = Field(default=1.0, ge=0, le=60)
    threads: int = Field(default=32, ge=1, le=1024, description="fetch threads per partition")
    per_host_concurrency: int = Field(default=8, ge=1, le=1024)
    samples_per_shard: int = Field(default=10_000, ge=1, le=1_000_000)
    resize_mode: Literal["no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"] = "no"
    image_size: int = Field(default=256, ge=8, le=16384)
    resize_only_if_bigger: bool = False
    encode_format: Literal["jpg", "png", "webp"] = "jpg"
    encode_quality: int = Field(default=95, ge=0, le=100)
    skip_reencode: bool = Field(default=True, description="keep original bytes when already encode_format")
    store_raw: bool = Field(
        default=True,
        description="store the downloaded bytes as they are (img2dataset disable_all_reencoding); the "
        "validity stage then decides what is readable, as RS5M counted invalid images after download",
    )
    min_image_size: int = Field(default=0, ge=0)
    extract_exif: bool = False
    allow_hosts: list[str] = Field(
        default_factory=list, description="host or host:port exempt from the guard"
    )
    max_redirects: int = Field(default=5, ge=0, le=20)
    disallowed_header_directives: list[str] = Field(
        default_factory=lambda: ["noai", "noimageai", "noindex", "noimageindex"]
    )
    user_agent_token: str | None = "img2dataset"
    min_bytes: int = Field(default=0, ge=0)
    max_bytes: int = Field(default=64 * 2**20, ge=1)
    # DNS: one cache per worker process (rs5m.pipeline.download.resolver); see docs/operations.md
    dns_cache_size: int = Field(
        default=65_536, ge=0, le=10_000_000, description="host names cached per process; 0: no cache"
    )
    dns_ttl_s: float = Field(default=300.0, ge=0, le=86_400, description="seconds an address answer is kept")
    dns_negative_ttl_s: float = Field(
        default=60.0, ge=0, le=86_400, description="seconds a 'no such name / no address' answer is kept"
    )
    dns_error_ttl_s: float = Field(
        default=30.0, ge=0, le=3600, description="seconds a temporary failure (EAI_AGAIN, no answer) is kept"
    )
    dns_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="seconds a fetch waits for one lookup (its answer is kept later)",
    )
    dns_max_lookups: int = Field(default=64, ge=1, le=4096, description="lookups in flight per process")
    dns_prefetch: bool = Field(default=True, description="look up each shard's host names before fetching")
    dns_settle_s: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="wait for those lookups; URLs of names still unanswered go last",
    )
    host_stats_top_n: int = Field(
        default=100, ge=0, le=100_000, description="hosts with per-reason counts per partition; rest: (other)"
    )


class ValidityConfig(BaseModel):
    """Thresholds of the validity check."""

    model_config = ConfigDict(extra="forbid")

    max_pixels: int = Field(
        default=89_478_485, ge=1
    )  # PIL's own default bomb limit (1024*1024*1024 // 4 // 3)
    min_side: int = Field(default=8, ge=1, le=4096)  # 1x1 tracking pixels and spacer GIFs carry no content
    rgb_jpeg_quality: int = Field(default=95, ge=1, le=100)  # re-encoding converted JPEGs (CMYK, grey)


class EmbeddingIndexConfig(BaseModel):
    """k-NN search over image embeddings: exact (FAISS brute force) up to ``exact_max_rows`` valid rows,
    above that an inverted file (two-level k-means cells, searched list by list); recall in
    docs/benchmarks.md."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["auto", "exact", "ivf"] = "auto"
    exact_max_rows: int = Field(default=50_000, ge=1)
    cell_rows: int = Field(default=512, ge=8, le=1_000_000, description="mean rows per inverted-file cell")
    nprobe: int = Field(default=3, ge=1, le=64, description="cells each row is compared in")
    coarse_probe: int = Field(default=8, ge=1, le=64, description="top-level cells scored per row")
    fine_per_coarse: int = Field(
        default=20, ge=2, le=100_000, description="fine cells per top-level cell (fewer: sharper top cells)"
    )
    probe_margin: float = Field(
        default=1.0, ge=0, le=2, description="probe only cells within this cosine of the row's best"
    )
    max_cell_factor: float = Field(
        default=2.0, ge=1.0, description="split a fine cell expected to hold over this x cell_rows rows"
    )
    train_rows: int = Field(default=262_144, ge=1_000, description="sample size for k-means")
    kmeans_iters: int = Field(default=10, ge=1, le=100)
    chunk_rows: int = Field(default=65_536, ge=256, description="rows per assignment and query block")
    gpu: Literal["auto", "never"] = Field(default="auto", description="auto: FAISS GPU k-NN when present")


class DedupEmbeddingModel(BaseModel):
    """An open_clip image model for dedup embeddings when the scoring stage's are not reused."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = "ViT-B-32"
    pretrained: str | None = None
    checkpoint: PathStr | None = None
    batch_size: int = Field(default=64, ge=1, le=65536)
    device: str = "auto"


class DedupConfig(BaseModel):
    """Knobs of the dedup stage. ``near_threshold`` 8 rather than imagededup's 10: see docs/benchmarks.md.

    ``method`` picks pHash near-duplicates (after URL and content), image-embedding near-duplicates
    (RS5M's fastdup method: k nearest neighbours by cosine, components of pairs at or above
    ``embedding_threshold``), or both in that order. ``embeddings`` "scoring" reuses the scoring stage's
    image embeddings; a model spec embeds with that model instead.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["phash", "embedding", "both"] = "both"
    embeddings: Literal["scoring"] | DedupEmbeddingModel = "scoring"
    embedding_threshold: float = Field(default=0.96, gt=0, le=1)  # cosine at or above which a pair links
    k: int = Field(default=5, ge=1, le=100)  # nearest neighbours per image (RS5M/fastdup: 5)
    embedding_index: EmbeddingIndexConfig = Field(default_factory=EmbeddingIndexConfig)

    near_threshold: int = Field(default=8, ge=0, le=32)  # max Hamming distance of near-duplicate pHashes
    phash_draft_size: int | None = Field(default=64, ge=32)  # JPEG DCT downscale before hashing; None: exact
    preferred_sources: list[str] = Field(default_factory=lambda: ["laion2b", "laion400m", "coyo700m"])
    discard_first_sources: list[str] = Field(default_factory=lambda: ["laioncoco"])
    seed: int = Field(default=0, ge=0, lt=2**63)


FIG13_FRACTIONS = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6]


class OutlierConfig(BaseModel):
    """Keep fractions of the pooled decision (RS5M: top 90 % of s_vlm and top 80 % of c_rs)."""

    model_config = ConfigDict(extra="forbid")

    keep_top_vlm: float = Field(default=0.9, gt=0, le=1)
    keep_top_rs: float = Field(default=0.8, gt=0, le=1)
    grid: list[float] = Field(default_factory=lambda: list(FIG13_FRACTIONS), min_length=1, max_length=41)

    @field_validator("grid")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < f <= 1 for f in v):
            raise ValueError("grid fractions must be in (0, 1]")
        return v


class DetectorConfig(BaseModel):
    """Backbone and training knobs of the RS detector (RS5M: ViTAE fine-tuned; here any open_clip/timm)."""

    model_config = ConfigDict(extra="forbid")

    backbone: Literal["open_clip", "timm"] = "open_clip"
    model_name: str = "ViT-B-16"
    pretrained: str | None = None
    checkpoint: PathStr | None = None
    finetune: bool = False
    epochs: int = Field(default=20, ge=1, le=1000)
    lr: float = Field(default=1e-3, gt=0, le=1.0)
    backbone_lr: float = Field(default=1e-5, gt=0, le=1.0)
    weight_decay: float = Field(default=1e-4, ge=0, le=1.0)
    batch_size: int = Field(default=64, ge=1, le=4096)
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    balance_classes: bool = True
    max_per_class: int | None = Field(default=None, ge=3)
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "bf16"
    num_workers: int = Field(default=2, ge=0, le=64)
