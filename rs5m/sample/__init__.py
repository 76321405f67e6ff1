"""The embedded sample world: a miniature PUB11 on disk, in the sources' real formats, with known answers.

``write_world(out)`` lays out::

    laion2b/part-00000-5114fd87-...-c000.snappy.parquet    wit/wit_v1.train.all-00000-of-00010.tsv.gz
    laion400m/part-00000-5b54c5d5-...-c000.snappy.parquet  yfcc15m/yfcc100m_dataset-0.bz2 (+ subset list)
    laioncoco/part-00000-2256f782-...-c000.snappy.parquet  cc12m/cc12m.tsv
    coyo700m/part-00000-17da4908-...-c000.snappy.parquet   cc3m/Train_GCC-training.tsv (+ labels file)
    redcaps/annotations/<subreddit>_<year>.json            sbu/sbu-captions-all.json
    vg/image_data.json (+ region_descriptions.json)        images/<source>/<n>.jpg|png
    build.yaml   a BuildConfig reading all of it            expected.json   the planted answers

Every http URL in the metadata points at ``http://127.0.0.1:<port>/<source>/<n>.<ext>`` (see
``serve_images``) and resolves, except the planted missing images (404), timeouts (the server sleeps past
the download timeout) and private redirects (302 to a private address), which ``images/_routes.json``
tells the server about. Keyword-hit rows get
aerial-looking images (real WHU-RS19 crops when ``real_data`` is given), other rows ordinary ones.

Contract: ``expected.json`` is computed from the generator's plan, not by running any filter. Per source:
``amount`` (every data line / record / parquet row / VG image, bad ones included), ``rejected`` (rows
the ingest stage must reject, per ``rs5m.core.schema.Reason`` ingest code), ``kept`` (= amount - rejected;
planted exact duplicates are kept: the URL dedup stage removes them), ``keyword_hits`` (kept rows whose
caption matches; for LAION-COCO the ". "-joined ``all_captions``), ``per_keyword`` (kept rows matching
each pattern, §3 spelling; absent = 0) and ``planted`` facts for later stages (explained under
``notes``). Same ``seed`` -> byte-identical metadata files and images.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from rs5m.core.schema import SOURCE_ORDER
from rs5m.sample.captions import Captioner, clean_sentences
from rs5m.sample.images import write_images
from rs5m.sample.jsonwriters import write_redcaps, write_sbu, write_vg
from rs5m.sample.plan import (
    DEFAULT_PLANS,
    INGEST_REASONS,
    SourcePlan,
    allocate_patterns,
    expected_counts,
    plan_source,
)
from rs5m.sample.server import ROUTES_FILE, ServedAddress, serve_images
from rs5m.sample.textwriters import write_cc3m, write_cc12m, write_wit, write_yfcc
from rs5m.sample.writers import write_coyo, write_laion, write_laioncoco

__all__ = ["DEFAULT_PORT", "ServedAddress", "serve_images", "write_world", "DEFAULT_PLANS", "INGEST_REASONS"]

DEFAULT_PORT = 18765
KEYWORD_RULE = (
    "case-insensitive; a pattern matches where it starts a word (not preceded by a letter or "
    "digit); stems are prefixes (no end boundary)"
)
PLANTED_NOTES = {
    "false_positive_hits": "kept hits that match only through prefix matching (modish, Naipaul, ...)",
    "ordinary_image_hits": "kept hits served a non-aerial image (false positives, RS-themed products)",
    "near_misses": "kept rows with RS-looking captions that match no pattern (aerospace imagery, ...)",
    "alt_text_only_keywords": "LAION-COCO rows whose TEXT has a keyword but whose all_captions do not",
    "rejected_rows_with_keywords": "rows rejected at ingest although their text carries a keyword",
    "duplicate_records": "kept exact copies of an earlier row of the same file (same uid and URL)",
    "duplicate_record_hits": "the duplicate_records that are keyword hits (counted in keyword_hits)",
    "hits_downloadable": "kept hits whose URL the sample server answers with 200 in time (no 404, timeout "
    "or refused redirect)",
    "hits_valid_images": "hits_downloadable minus those served broken bytes",
    "missing_images": "hit URLs the server answers with 404",
    "invalid_images": "hit URL -> planted fault: zero (empty file), truncated (JPEG cut), html (error page), "
    "bomb (a small PNG declaring 30000x30000 pixels: downloaded, then removed as too_many_pixels)",
    "timeouts": "hit URLs the server answers only after a long sleep: download_timeout, not downloaded",
    "private_redirects": "hit URL -> the private address it redirects to: the download guard refuses the "
    "hop (redirect_refused) without connecting, not downloaded",
    "url_duplicates": "laion2b hit URLs this source repeats (the dedup priority rule decides the keeper)",
    "near_duplicates": "[this URL, original URL]: the same picture resized and re-encoded",
    "funnel": "expected PUB11 columns after ingest: after_keyword (unique hits; exact duplicate records "
    "leave at the keyword stage), downloaded (minus 404s, timeouts, refused redirects), invalid (broken "
    "bytes and the bomb), duplicate (every planted URL/near copy loses)",
}
WRITERS: dict[str, Callable[..., tuple[list[str], dict[str, Any]]]] = {
    "laion2b": write_laion,
    "coyo700m": write_coyo,
    "laioncoco": write_laioncoco,
    "laion400m": write_laion,
    "wit": write_wit,
    "yfcc15m": write_yfcc,
    "cc12m": write_cc12m,
    "redcaps": write_redcaps,
    "cc3m": write_cc3m,
    "sbu": write_sbu,
    "vg": write_vg,
}
# Which laion2b donor hits each source re-uses: laioncoco and laion400m share two URLs with laion2b.
DONOR_OFFSETS = {"laioncoco": 0, "laion400m": 2, "coyo700m": 5}


def load_real_data(folder: Path) -> tuple[list[Path], list[str]]:
    """Real WHU-RS19 image paths and keyword-free RSITMD / RS3 sentences from ``folder`` (each part
    optional; a missing part gives an empty list)."""
    images = sorted((folder / "whu-rs19").glob("*/*.jpg"))
    lines: list[str] = []
    for caps in sorted((folder / "rsitmd").glob("*_caps.txt")):
        lines += caps.read_text(encoding="utf-8", errors="replace").splitlines()
    rs3 = folder / "rs3-captions" / "rs3_dump.csv"
    if rs3.is_file():
        with rs3.open(encoding="utf-8", errors="replace", newline="") as f:
            lines += [row.get("caption") or "" for row in csv.DictReader(f)]
    return images, clean_sentences(lines)


# Short download limits: the planted timeouts cost ~2 s per partition instead of the default 10 s.
SAMPLE_DOWNLOAD = {"timeout": 2.0, "total_timeout": 4.0, "retries": 0}
TINY_SCORING = {"model_name": "rs5m-tiny", "pretrained": None, "batch_size": 32, "num_workers": 0}
# The tiny model's random embeddings are nearly parallel (at 0.96, 133 of the 135 sample images would link):
# only near-identical pixels may link here. Real CLIP embeddings: see DedupConfig.embedding_threshold.
SAMPLE_DEDUP = {"method": "both", "embedding_threshold": 0.999}


def build_config(
    sources: dict[str, tuple[list[str], dict[str, Any]]], prefix: str, port: int
) -> dict[str, Any]:
    """The build.yaml mapping (``version: sample``, no ``root``); paths get ``prefix`` prepended."""
    entries = []
    for name, (files, options) in sources.items():
        opts = {k: prefix + v if k.endswith("_file") else v for k, v in options.items()}
        entries.append({"name": name, "files": [prefix + f for f in files], "options": opts})
    return {
        "version": "sample",
        "sources": entries,
        "download": dict(SAMPLE_DOWNLOAD),
        # a tiny random-init CLIP: the outlier scores show the code path, they mean nothing
        "scoring": dict(TINY_SCORING),
        "dedup": dict(SAMPLE_DEDUP),
        "sample_server": {"root": prefix + "images", "port": port},
    }


def write_world(
    out: Path,
    *,
    seed: int = 0,
    real_data: Path | None = None,
    port: int = DEFAULT_PORT,
    images: bool = True,
    plans: dict[str, SourcePlan] | None = None,
) -> dict[str, Any]:
    """Write the sample world under ``out`` and return the expected counts (also in ``out/expected.json``).

    ``real_data``: a folder like ``../shared/data`` (optional; missing parts are skipped). ``images=False``
    writes metadata only. ``plans`` overrides the per-source sizes (default ``DEFAULT_PLANS``).
    """
    out = Path(out)
    if (out / "expected.json").is_file() and (out / "images").is_dir():
        shutil.rmtree(out / "images")  # a previous world: drop stale images
    out.mkdir(parents=True, exist_ok=True)
    plans = DEFAULT_PLANS if plans is None else plans
    rng = random.Random(seed)
    real_files, sentences = load_real_data(Path(real_data)) if real_data else ([], [])
    random.Random(seed).shuffle(real_files)
    cap = Captioner(rng, sentences)
    slots = allocate_patterns(rng, sum(p.hits - p.false_positives for n, p in plans.items()))
    base_url = f"http://127.0.0.1:{port}"
    planned, donors = {}, []
    for name in (s for s in SOURCE_ORDER if s in plans):
        src = plan_source(name, plans[name], rng, slots, cap, base_url, donors[DONOR_OFFSETS.get(name, 0) :])
        found = src.planted.pop("donors")
        if name == "laion2b":
            donors = list(found)  # type: ignore[call-overload]
        planned[name] = src
    written = {name: WRITERS[name](out, src, cap, rng) for name, src in planned.items()}
    if images:
        specs = [spec for src in planned.values() for spec in src.images]
        write_images(specs, out / "images", seed, real_files)
        routes = {path: route for src in planned.values() for path, route in sorted(src.routes.items())}
        (out / "images" / ROUTES_FILE).write_text(json.dumps(routes, indent=2) + "\n", encoding="utf-8")
    expected: dict[str, Any] = {
        "seed": seed,
        "base_url": base_url,
        "real_data": bool(real_files or sentences),
        "keyword_rule": KEYWORD_RULE,
        "notes": PLANTED_NOTES,
        "reasons": list(INGEST_REASONS),
        "sources": {},
    }
    for name, src in planned.items():
        expected["sources"][name] = {
            "files": written[name][0],
            "options": written[name][1],
            **expected_counts(src),
        }
    per = expected["sources"].values()
    expected["totals"] = {k: sum(e[k] for e in per) for k in ("amount", "kept", "keyword_hits")}
    expected["totals"]["rejected"] = {r: sum(e["rejected"][r] for e in per) for r in INGEST_REASONS}
    expected["totals"]["images"] = sum(len(src.images) for src in planned.values())  # served files (planned)
    (out / "expected.json").write_text(
        json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    config = build_config(written, "", port)
    (out / "build.yaml").write_text(
        "# Generated by `rs5m sample`: the sample PUB11 world in this folder.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return expected


@contextmanager
def sample_server(cfg: Any) -> Iterator[ServedAddress | None]:
    """Serve the sample world's images while a build runs, when its config names a ``sample_server``.

    ``cfg`` is a ``BuildConfig``; yields ``None`` (and serves nothing) when it has no sample server.
    """
    server = getattr(cfg, "sample_server", None)
    if server is None:
        yield None
        return
    try:
        ctx = serve_images(server.root, port=server.port)
        address = ctx.__enter__()
    except OSError as exc:
        raise OSError(f"cannot serve the sample images on 127.0.0.1:{server.port}: {exc}") from exc
    try:
        yield address
    finally:
        ctx.__exit__(None, None, None)
