"""Row plans for the sample world: which rows are keyword hits, which are bad (and why), what each
URL serves. ``expected_counts`` derives expected.json from the plan itself, never from a filter run.

Contract:
- One ``Row`` per physical input row (data line, JSON record, parquet row, VG image); its position in
  ``SourceRows.rows`` is its position in the source's file(s).
- A rejected row has exactly one defect (``reject``), so its reason does not depend on check order.
- Planted duplicates are exact copies of an earlier kept row of the same file (same id, URL and
  caption, hence the same uid). Ingest keeps them (``rs5m.core.schema.Reason`` has no duplicate reason);
  the URL dedup stage removes them. They count in ``kept`` and, when the original is a hit, in the hits.
- Kept rows carry the planted ``patterns`` their caption must match exactly (empty = no hit).
- Fetch faults: ``timeouts`` hits are served by a ``sleep`` route of ``SLOW_SLEEP_S`` seconds (longer than
  the download ``timeout``/``total_timeout``, even the defaults), ``private_redirects`` hits by a ``redirect``
  route to a private address (``PRIVATE_TARGETS``); neither has an image file, neither is downloaded.
  ``invalid_images`` may include "bomb": a small PNG whose header declares ``BOMB_SIDE`` squared pixels
  (``rs5m.sample.images``), downloaded fine and removed at validity (``too_many_pixels``).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field, replace

from rs5m.core.schema import Reason
from rs5m.sample import vocab
from rs5m.sample.captions import Captioner
from rs5m.sample.images import ImageSpec
from rs5m.sample.vocab import KEYWORD_PATTERNS, PATTERN_WEIGHTS

# Reasons a row can be rejected at ingest: the ``rs5m.core.schema.Reason`` members before the keyword ones.
INGEST_REASONS: tuple[str, ...] = tuple(
    r.value for r in itertools.takewhile(lambda r: r is not Reason.NO_KEYWORD_MATCH, Reason)
)


@dataclass(frozen=True)
class SourcePlan:
    """How many rows of each kind one source gets. ``hits`` counts the (original) kept rows whose
    caption matches, including ``false_positives``; planted ``duplicates`` of hits add to the hits
    found at ingest. The image fault counts are drawn from the original hits."""

    amount: int
    hits: int
    rejects: dict[str, int]
    false_positives: int = 0
    ordinary_hits: int = 0
    near_misses: int = 3
    alt_only: int = 0
    missing_images: int = 1
    invalid_images: tuple[str, ...] = ()
    url_dups: int = 0  # hits whose URL is a laion2b hit's URL
    near_dups: int = 0  # hits whose image is a re-encoded laion2b hit image
    near_dups_within: int = 0  # hits whose image re-encodes another hit of the same source
    duplicates: int = 0  # exact copies of earlier kept rows (see module contract)
    timeouts: int = 0  # hits whose URL the server answers only after the download timeout
    private_redirects: int = 0  # hits whose URL answers 302 to a private address (guard refuses the hop)


_JSON_BAD = {"missing_url": 1, "bad_url": 1, "missing_caption": 1}
_LINE_BAD = {"malformed_row": 1, "bad_encoding": 1, **_JSON_BAD}  # line formats can also break a line

# fmt: off
DEFAULT_PLANS: dict[str, SourcePlan] = {
    "laion2b": SourcePlan(300, 40, {**_JSON_BAD, "bad_url": 2, "missing_caption": 2}, duplicates=2,
                          false_positives=2, ordinary_hits=3, near_misses=6, missing_images=3,
                          invalid_images=("zero", "truncated", "bomb"), timeouts=1),
    "coyo700m": SourcePlan(200, 24, {**_JSON_BAD, "bad_url": 2}, duplicates=1, false_positives=1,
                           ordinary_hits=2, near_misses=4, missing_images=2, invalid_images=("html",),
                           near_dups=3, timeouts=1, private_redirects=1),
    "laioncoco": SourcePlan(200, 36, {"bad_url": 1, "missing_caption": 2}, duplicates=1, near_misses=4,
                            alt_only=3, missing_images=2, invalid_images=("truncated",), url_dups=4),
    "laion400m": SourcePlan(150, 16, dict(_JSON_BAD), duplicates=1, false_positives=1, ordinary_hits=1,
                            url_dups=3),
    "wit": SourcePlan(150, 12, {**_LINE_BAD, "non_english": 45}, duplicates=1, near_dups_within=1),
    "yfcc15m": SourcePlan(140, 10, {**_LINE_BAD, "not_in_subset": 50, "not_an_image": 1}, duplicates=1),
    "cc12m": SourcePlan(120, 10, {**_LINE_BAD, "malformed_row": 2}, duplicates=1, ordinary_hits=1),
    "redcaps": SourcePlan(90, 6, dict(_JSON_BAD), duplicates=1),
    "cc3m": SourcePlan(100, 9, dict(_LINE_BAD), duplicates=1),
    "sbu": SourcePlan(60, 3, dict(_JSON_BAD), duplicates=1, near_misses=2),
    "vg": SourcePlan(40, 2, {"missing_caption": 1}, near_misses=1, missing_images=0),
}
# fmt: on

SLOW_SLEEP_S = 15.0  # > the default download timeout (10 s) too, so a demo without overrides still times out
PRIVATE_TARGETS = ("http://169.254.169.254/latest/meta-data/iam/photo.jpg", "http://10.0.0.1/photos/x.jpg")

BAD_URLS = (
    "ftp://files.example.org/pub/photos/{n}.jpg",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==",
    "images/uploads/{n}.jpg",
    "www.example.com/photos/{n}.jpg",
)


@dataclass(eq=False)
class Row:
    """One physical input row of a source (see module contract). Compared by identity."""

    reject: str | None = None
    patterns: tuple[str, ...] = ()
    kind: str = "plain"  # plain | near_miss | hit | false_positive | alt_only | foreign
    text: str | None = None  # fixed caption (false positives, foreign rows)
    lang: str = "en"
    alt_patterns: tuple[str, ...] = ()  # laioncoco alt_only: patterns planted in TEXT only
    url: str | None = None
    width: int = 0
    height: int = 0
    image: ImageSpec | None = None
    copy_of: Row | None = None  # a planted duplicate: the kept row it repeats
    dup_of: int | None = None  # ... and that row's position


@dataclass
class SourceRows:
    """A planned source: rows in file order, images to serve, and planted facts for expected.json."""

    name: str
    rows: list[Row]
    images: list[ImageSpec] = field(default_factory=list)
    planted: dict[str, object] = field(default_factory=dict)
    routes: dict[str, dict[str, object]] = field(default_factory=dict)  # URL path -> server route


def allocate_patterns(rng: random.Random, n: int) -> list[tuple[str, ...]]:
    """``n`` keyword slots: every pattern once (while ``n`` allows), the rest weighted; ~10% carry two."""
    first = list(KEYWORD_PATTERNS)
    rng.shuffle(first)
    weights = [PATTERN_WEIGHTS.get(p, 1.0) for p in KEYWORD_PATTERNS]
    rest = rng.choices(KEYWORD_PATTERNS, weights=weights, k=max(0, n - len(first)))
    slots = first[:n] + rest
    rng.shuffle(slots)
    out: list[tuple[str, ...]] = []
    for p in slots:
        second = rng.choice(KEYWORD_PATTERNS)
        out.append((p, second) if rng.random() < 0.1 and second != p else (p,))
    return out


def _size(rng: random.Random, lo: int, hi: int) -> tuple[int, int]:
    w = rng.randrange(lo, hi + 1)
    return w, max(64, min(320, int(w * rng.choice((0.75, 1.0, 1.0, 1.33, 0.66)))))


def plan_source(
    name: str,
    plan: SourcePlan,
    rng: random.Random,
    slots: list[tuple[str, ...]],
    cap: Captioner,
    base_url: str,
    donors: list[tuple[str, ImageSpec]],
) -> SourceRows:
    """Lay out one source's rows (see module contract). Hits take their patterns from ``slots`` (popped);
    ``donors`` are laion2b hits (url, image) this source duplicates (``url_dups``, then ``near_dups``).
    Raises ``ValueError`` for a plan that cannot be laid out."""
    _validate(name, plan)
    kept: list[Row] = []
    for _ in range(plan.false_positives):
        text, pattern = cap.false_positive()
        kept.append(Row(patterns=(pattern,), kind="false_positive", text=text))
    kept += [Row(patterns=slots.pop(), kind="hit") for _ in range(plan.hits - plan.false_positives)]
    kept += [Row(kind="near_miss") for _ in range(plan.near_misses)]
    kept += [Row(kind="alt_only", alt_patterns=(rng.choice(KEYWORD_PATTERNS),)) for _ in range(plan.alt_only)]
    kept += [Row() for _ in range(plan.amount - sum(plan.rejects.values()) - plan.duplicates - len(kept))]
    rows = list(kept)
    for reason, k in plan.rejects.items():
        for _ in range(k):
            pats = (
                (rng.choice(KEYWORD_PATTERNS),) if reason != "missing_caption" and rng.random() < 0.4 else ()
            )
            row = Row(reject=reason, patterns=pats, kind="hit" if pats else "plain")
            if reason == "non_english":
                row.lang, row.text, row.patterns = rng.choice(vocab.FOREIGN)
                row.kind = "foreign"
            rows.append(row)
    rng.shuffle(rows)
    hit_rows = [r for r in kept if r.kind == "hit"]
    n_hit = min(len(hit_rows), (plan.duplicates + 1) // 2)  # about half the duplicates repeat a hit
    others = rng.sample([r for r in kept if r.kind != "hit"], plan.duplicates - n_hit)
    for orig in rng.sample(hit_rows, n_hit) + others:
        at = next(j for j, x in enumerate(rows) if x is orig)
        rows.insert(rng.randrange(at + 1, len(rows) + 1), replace(orig, copy_of=orig))
    for r in rows:
        if r.copy_of is not None:
            r.dup_of = next(j for j, x in enumerate(rows) if x is r.copy_of)
    return _assign_urls(name, plan, rng, rows, base_url, donors)


def _validate(name: str, plan: SourcePlan) -> None:
    unknown = set(plan.rejects) - set(INGEST_REASONS)
    faults = plan.ordinary_hits + plan.missing_images + len(plan.invalid_images) + plan.url_dups
    faults += plan.near_dups + 2 * plan.near_dups_within + plan.timeouts + plan.private_redirects
    kept = plan.amount - sum(plan.rejects.values())
    if unknown or min(plan.rejects.values(), default=0) < 0 or plan.duplicates < 0:
        raise ValueError(f"{name}: unknown or negative reject counts {plan.rejects}")
    if faults > plan.hits - plan.false_positives or plan.false_positives > plan.hits:
        raise ValueError(f"{name}: {faults} planted image faults need more than {plan.hits} hits")
    if plan.hits + plan.near_misses + plan.alt_only + 2 * plan.duplicates > kept:
        raise ValueError(f"{name}: amount {plan.amount} too small for its hits, near-misses and rejects")


def _assign_urls(
    name: str,
    plan: SourcePlan,
    rng: random.Random,
    rows: list[Row],
    base_url: str,
    donors: list[tuple[str, ImageSpec]],
) -> SourceRows:
    n_bad = 0
    for i, r in enumerate(rows):
        r.width, r.height = (
            _size(rng, 128, 320) if r.reject is None and r.kind == "hit" else _size(rng, 64, 256)
        )
        if r.copy_of is not None or r.reject == "missing_url":
            continue
        if r.reject == "not_an_image":  # a YFCC video: its URL is not served
            r.url = f"{base_url}/{name}/{i:05d}.mp4"
            continue
        if r.reject == "bad_url":
            r.url = BAD_URLS[n_bad % len(BAD_URLS)].format(n=i)
            if name == "coyo700m" and n_bad == 0:  # over the 2048-character URL limit
                r.url = f"{base_url}/{name}/{i:05d}.jpg?q=" + "a" * 2500
            n_bad += 1
            continue
        path = f"{name}/{i:05d}.{'png' if rng.random() < 0.1 else 'jpg'}"
        r.url = f"{base_url}/{path}"
        if name in ("laion2b", "laion400m", "coyo700m") and rng.random() < 0.1:
            r.url += f"?width={r.width}&quality=90"
        look = "aerial" if r.reject is None and r.kind == "hit" else "ordinary"
        r.image = ImageSpec(path, r.width, r.height, look)
    pool = [r for r in rows if r.reject is None and r.kind == "hit" and r.copy_of is None]
    rng.shuffle(pool)
    planted: dict[str, object] = {}
    for r in [pool.pop() for _ in range(plan.ordinary_hits)]:
        r.image = replace(r.image, look="ordinary")  # type: ignore[arg-type]
    planted["missing_images"] = []
    for r in [pool.pop() for _ in range(plan.missing_images)]:
        r.image = None
        planted["missing_images"].append(r.url)  # type: ignore[attr-defined]
    planted["invalid_images"] = {}
    for fault in plan.invalid_images:
        r = pool.pop()
        r.image = replace(r.image, fault=fault)  # type: ignore[arg-type]
        planted["invalid_images"][r.url] = fault  # type: ignore[index]
    routes: dict[str, dict[str, object]] = {}
    planted["timeouts"] = []
    for r in [pool.pop() for _ in range(plan.timeouts)]:
        routes["/" + r.image.path] = {"sleep": SLOW_SLEEP_S}  # type: ignore[union-attr]
        r.image = None
        planted["timeouts"].append(r.url)  # type: ignore[attr-defined]
    planted["private_redirects"] = {}
    for k, r in enumerate([pool.pop() for _ in range(plan.private_redirects)]):
        target = PRIVATE_TARGETS[k % len(PRIVATE_TARGETS)]
        routes["/" + r.image.path] = {"redirect": target}  # type: ignore[union-attr]
        r.image = None
        planted["private_redirects"][r.url] = target  # type: ignore[index]
    planted["url_duplicates"] = []
    for url, spec in donors[: plan.url_dups]:
        r = pool.pop()
        r.url, r.width, r.height, r.image = url, spec.width, spec.height, None
        planted["url_duplicates"].append(url)  # type: ignore[attr-defined]
    planted["near_duplicates"] = []
    pairs = [(pool.pop(), url, spec) for url, spec in donors[plan.url_dups : plan.url_dups + plan.near_dups]]
    for _ in range(plan.near_dups_within):
        a, b = sorted((pool.pop(), pool.pop()), key=lambda x: next(j for j, y in enumerate(rows) if y is x))
        pairs.append((b, a.url, a.image))
    for r, url, spec in pairs:
        r.width, r.height = max(64, int(spec.width * 0.85)), max(64, int(spec.height * 0.85))
        r.image = replace(r.image, width=r.width, height=r.height, look="aerial", near_dup_of=spec.path)  # type: ignore[arg-type]
        planted["near_duplicates"].append([r.url, url])  # type: ignore[attr-defined]
    for r in rows:
        if r.copy_of is not None:
            r.url, r.width, r.height = r.copy_of.url, r.copy_of.width, r.copy_of.height
    src = SourceRows(name, rows, [r.image for r in rows if r.image is not None], planted, routes)
    src.planted["donors"] = [(r.url, r.image) for r in pool if r.image is not None and r.image.fault is None]
    return src


def expected_counts(src: SourceRows) -> dict[str, object]:
    """expected.json entry of one source, from the plan (see module contract)."""
    rejected = Counter(r.reject for r in src.rows if r.reject)
    kept = [r for r in src.rows if r.reject is None]
    hits = [r for r in kept if r.patterns]
    per_kw = Counter(p for r in hits for p in set(r.patterns))
    p = src.planted
    missing, invalid = set(p["missing_images"]), set(p["invalid_images"])  # type: ignore[call-overload]
    missing |= set(p["timeouts"]) | set(p["private_redirects"])  # type: ignore[call-overload]
    served = [(r.copy_of or r).image for r in hits]
    unique = [r for r in hits if r.copy_of is None]  # exact copies leave at the keyword stage
    downloaded = [r for r in unique if r.url not in missing]
    valid = [r for r in downloaded if r.url not in invalid]
    # Donors of URL and near duplicates are valid laion2b images (or, within a source, the earlier row),
    # so by the priority rule the planted copy is always the one removed.
    dups = len(p["url_duplicates"]) + len(p["near_duplicates"])  # type: ignore[arg-type]
    funnel = {
        "after_keyword": len(unique),
        "downloaded": len(downloaded),
        "invalid": len(downloaded) - len(valid),
        "duplicate": dups,
    }
    return {
        "amount": len(src.rows),
        "rejected": {reason: rejected.get(reason, 0) for reason in INGEST_REASONS},
        "kept": len(kept),
        "keyword_hits": len(hits),
        "per_keyword": {k: per_kw[k] for k in KEYWORD_PATTERNS if per_kw[k]},
        "funnel": funnel,
        "planted": {
            "false_positive_hits": sum(r.kind == "false_positive" for r in kept),
            "ordinary_image_hits": sum(1 for i in served if i is not None and i.look == "ordinary"),
            "near_misses": sum(r.kind == "near_miss" for r in kept),
            "alt_text_only_keywords": sum(r.kind == "alt_only" for r in kept),
            "rejected_rows_with_keywords": sum(1 for r in src.rows if r.reject and r.patterns),
            "duplicate_records": sum(r.copy_of is not None for r in kept),
            "duplicate_record_hits": sum(r.copy_of is not None for r in hits),
            "hits_downloadable": sum(r.url not in missing for r in hits),  # not 404, timeout, redirect
            "hits_valid_images": sum(r.url not in missing and r.url not in invalid for r in hits),
            "missing_images": p["missing_images"],
            "invalid_images": p["invalid_images"],
            "timeouts": p["timeouts"],
            "private_redirects": p["private_redirects"],
            "url_duplicates": p["url_duplicates"],
            "near_duplicates": p["near_duplicates"],
        },
    }
