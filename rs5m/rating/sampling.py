"""Stratified random samples of image-text pairs from a dataset version, for human rating.

Contract:
- ``draw_sample(version_dir, spec)`` returns at most ``spec.n`` items, deterministic for a given
  spec and version contents. The sample is split equally between kept and removed pairs (when
  auditing a stage), then equally between sources within each; a stratum short of its share gives
  the rest to strata with room. Items come in a seeded random order, so strata interleave.
- ``pub11``: keyword rows with a downloaded image that passed every stage present in the version
  (validity, dedup, outlier). ``audit=S``: rows that reached stage ``S`` (passed every earlier
  stage) and were decided by it, labelled ``kept`` or ``removed`` by ``S``.
- ``rs3``: rows of the RS3 caption stage's outputs (uid, source, image_path, caption, provenance).
- Each item carries an image locator (see ``rs5m.rating.images``), found here, never by a client.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from rs5m.core.layout import DataRoot, VersionLayout
from rs5m.core.schema import StageName
from rs5m.pipeline.download.status import STATUS_FILE
from rs5m.rating.locate import locate_pub11, locate_rs3, package_fallback

SUBSETS = ("pub11", "rs3")
AUDIT_STAGES = (StageName.VALIDITY.value, StageName.DEDUP.value, StageName.OUTLIER.value)
# RS3 caption columns shown to the rater when present (rs5m.rs3.stage writes them).
_RS3_SHOWN = ("name", "rule", "meta_caption", "blip2_caption", "country", "city", "month", "provenance")
# Per audited stage: its keep column and the columns shown to the rater.
_STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    StageName.VALIDITY.value: ("valid", ("invalid_reason",)),
    StageName.DEDUP.value: ("dup_keep", ("dup_reason", "dup_cluster", "dup_keeper_uid")),
    StageName.OUTLIER.value: ("keep_outlier", ("s_vlm", "c_rs")),
}


class EmptySample(ValueError):
    """The version holds no pair matching the requested subset, source and audit stage."""


@dataclass(frozen=True)
class SampleSpec:
    """What to sample. ``source`` None means every source; ``audit`` None means the kept set."""

    version: str
    subset: str = "pub11"
    source: str | None = None
    audit: str | None = None
    n: int = 100
    seed: int = 0

    @property
    def sample_id(self) -> str:
        """Stable id of this spec: the same spec always names the same stored sample."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    def validate(self) -> None:
        """Raise ``ValueError`` for a subset, audit stage or size this module cannot sample."""
        if self.subset not in SUBSETS:
            raise ValueError(f"unknown subset {self.subset!r} (expected one of {SUBSETS})")
        if self.audit is not None and (self.subset != "pub11" or self.audit not in AUDIT_STAGES):
            raise ValueError(f"--audit takes one of {AUDIT_STAGES}, and only for the pub11 subset")
        if self.n < 1:
            raise ValueError(f"sample size must be at least 1, not {self.n}")

    def describe(self) -> str:
        """Short human description, e.g. ``pub11, all sources, audit of outlier``."""
        parts = [self.subset, self.source or "all sources"]
        parts.append(f"audit of {self.audit}" if self.audit else "kept pairs")
        return ", ".join(parts)


def find_version_dir(root: Path, version: str) -> Path:
    """``<root>/versions/<version>``; ``ValueError`` naming the known versions when it is absent."""
    data = DataRoot.of(root)
    versions, vdir = data.versions_dir, data.version(version).dir
    if "/" in version or version.startswith(".") or not vdir.is_dir():
        known = data.version_names()
        hint = f"known: {', '.join(known)}" if known else "none built yet; run `make demo` or `rs5m build`"
        raise ValueError(f"unknown version {version!r} under {versions} ({hint})")
    return vdir


def _files(version_dir: Path, stage: StageName, src: str, suffix: str = ".parquet") -> list[str]:
    """A stage's per-partition outputs for one source (``*`` = all), or a barrier's decisions file."""
    layout = VersionLayout.of(version_dir)
    if stage in (StageName.DEDUP, StageName.OUTLIER):
        path = layout.barrier_file(stage, "decisions.parquet")
        return [str(path)] if path.is_file() else []
    found = layout.outputs(stage, suffix)
    paths = [p / STATUS_FILE if not suffix else p for s, _, p in found if src in ("*", s)]
    return [str(p) for p in paths if p.is_file()]


def _columns(con: duckdb.DuckDBPyConnection, files: list[str]) -> set[str]:
    rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)", [files]).fetchall()
    return {r[0] for r in rows}


def _pub11_sql(
    con: duckdb.DuckDBPyConnection, vdir: Path, src: str, audit: str | None
) -> tuple[str, dict[str, list[str]]]:
    kw, status = _files(vdir, StageName.KEYWORD, src), _files(vdir, StageName.DOWNLOAD, src, suffix="")
    if not kw or not status:
        raise EmptySample(f"version {vdir.name} has no keyword or download output for source {src!r}")
    keywords = "keywords" if "keywords" in _columns(con, kw) else "NULL::VARCHAR[] AS keywords"
    params = {"kw": kw, "status": status}
    ctes = [
        f"k AS (SELECT uid, source, caption, url, {keywords} FROM read_parquet($kw, union_by_name=true) "
        "QUALIFY row_number() OVER (PARTITION BY uid) = 1)",
        "d AS (SELECT uid, key, shard, filename AS status_file FROM read_parquet($status, "
        "union_by_name=true, filename=true) WHERE status = 'success')",
    ]
    joins, shown, passed = "", [], []
    where, decision, stage_label = "", "'kept'", "final"
    for stage, (keep_col, extra) in _STAGES.items():
        files = _files(vdir, StageName(stage), src)
        if not files:
            if stage == audit:
                raise EmptySample(f"stage {audit!r} has not run in version {vdir.name}")
            continue
        params[stage] = files
        cols = [c for c in extra if c in _columns(con, files)]
        sel = ", ".join(["uid", f"{keep_col} AS keep_{stage}", *cols])
        ctes.append(f"s_{stage} AS (SELECT {sel} FROM read_parquet(${stage}, union_by_name=true))")
        joins += f" LEFT JOIN s_{stage} USING (uid)"
        shown += [f"keep_{stage}", *cols]
        if stage == audit:
            where = f"{' AND '.join(passed) or 'true'} AND keep_{stage} IS NOT NULL"
            decision = f"CASE WHEN keep_{stage} THEN 'kept' ELSE 'removed' END"
            stage_label = stage
        passed.append(f"coalesce(keep_{stage}, false)")
    where = where or " AND ".join(passed) or "true"
    extra_sel = "".join(f", {c}" for c in shown)
    sql = (
        f"WITH {', '.join(ctes)} SELECT uid, source, caption, url, keywords, key, shard, status_file"
        f"{extra_sel}, '{stage_label}' AS stage, {decision} AS decision FROM k JOIN d USING (uid){joins} "
        f"WHERE {where}"
    )
    return sql, params


def _rs3_sql(con: duckdb.DuckDBPyConnection, vdir: Path, src: str) -> tuple[str, dict[str, list[str]]]:
    files = _files(vdir, StageName.RS3_CAPTION, src)
    if not files:
        raise EmptySample(f"version {vdir.name} has no RS3 captions for source {src!r}")
    present = _columns(con, files)
    extra = "".join(f", {c}" for c in _RS3_SHOWN if c in present)
    sql = (
        f"SELECT uid, source, caption, image_path{extra}, 'rs3' AS stage, 'kept' AS decision "
        "FROM read_parquet($rs3, union_by_name=true) QUALIFY row_number() OVER (PARTITION BY uid) = 1"
    )
    return sql, {"rs3": files}


def _rs3_info(info: dict[str, Any]) -> dict[str, Any]:
    """Replace the full captioner provenance (every candidate) by what a rater needs to see."""
    prov = info.pop("provenance", None)
    if isinstance(prov, str):
        try:
            prov = json.loads(prov)
        except ValueError:
            return info | {"provenance": prov[:500]}
    if not isinstance(prov, dict):
        return info
    cap = prov.get("captioner")
    if isinstance(cap, dict):
        info["caption_model"] = " + ".join(str(cap[k]) for k in ("model", "adapter") if cap.get(k))
    for cand in prov.get("candidates") or []:
        if isinstance(cand, dict) and cand.get("text") == info.get("blip2_caption"):
            info |= {k: cand[k] for k in ("score_a", "score_b", "rotation_var") if cand.get(k) is not None}
    rest = {k: v for k, v in prov.items() if k not in ("captioner", "candidates", "decoding", "dtypes")}
    return info | ({"provenance": rest} if rest and "caption_model" not in info else {})


def allocate(counts: dict[str, int], n: int, seed: int = 0) -> dict[str, int]:
    """Split ``n`` over strata: equal shares capped by each stratum's count, leftovers to strata with room.

    When the leftover is smaller than the number of open strata, a seeded shuffle picks who gets one.
    """
    alloc = dict.fromkeys(counts, 0)
    remaining = min(n, sum(counts.values()))
    open_ = sorted(k for k, c in counts.items() if c > 0)
    random.Random(seed).shuffle(open_)
    while remaining > 0 and open_:
        share = max(remaining // len(open_), 1)
        for k in list(open_):
            take = min(share, counts[k] - alloc[k], remaining)
            alloc[k] += take
            remaining -= take
            if alloc[k] == counts[k]:
                open_.remove(k)
            if remaining == 0:
                break
    return alloc


def allocate_nested(counts: dict[tuple[str, str], int], n: int, seed: int = 0) -> dict[tuple[str, str], int]:
    """``allocate`` over the outer label (decision) first, then over the inner one (source) within each."""
    outer: dict[str, int] = {}
    for (o, _), c in counts.items():
        outer[o] = outer.get(o, 0) + c
    out: dict[tuple[str, str], int] = {}
    for o, n_o in allocate(outer, n, seed).items():
        inner = {i: c for (oo, i), c in counts.items() if oo == o}
        out |= {(o, i): k for i, k in allocate(inner, n_o, seed).items()}
    return out


def draw_sample(version_dir: Path, spec: SampleSpec) -> list[dict[str, Any]]:
    """The sampled items, in rating order; ``EmptySample`` when nothing matches (see module contract)."""
    spec.validate()
    src = spec.source or "*"
    con = duckdb.connect()
    if spec.subset == "pub11":
        sql, params = _pub11_sql(con, version_dir, src, spec.audit)
    else:
        sql, params = _rs3_sql(con, version_dir, src)
    con.execute(f"CREATE TEMP TABLE pop AS {sql}", params)
    counts = {
        (d, s): c
        for d, s, c in con.execute("SELECT decision, source, count(*) FROM pop GROUP BY ALL").fetchall()
    }
    if not counts:
        raise EmptySample(f"no pairs to rate in version {spec.version} ({spec.describe()})")
    con.execute("CREATE TEMP TABLE alloc (decision VARCHAR, source VARCHAR, k BIGINT)")
    alloc = allocate_nested(counts, spec.n, spec.seed)
    con.executemany("INSERT INTO alloc VALUES (?, ?, ?)", [[d, s, k] for (d, s), k in alloc.items()])
    cur = con.execute(
        "SELECT p.* EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY decision, source "
        "ORDER BY md5(uid || ':' || $seed)) AS rn FROM pop) p JOIN alloc USING (decision, source) "
        "WHERE rn <= k ORDER BY md5(uid || ':order:' || $seed)",
        {"seed": str(spec.seed)},
    )
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    items = [_item(version_dir, spec.subset, pos, row) for pos, row in enumerate(rows)]
    package_fallback(version_dir, items)
    return items


def _item(vdir: Path, subset: str, pos: int, row: dict[str, Any]) -> dict[str, Any]:
    base = ("uid", "source", "caption", "stage", "decision")
    info = {k: v for k, v in row.items() if k not in base and v is not None}
    locate = locate_pub11 if subset == "pub11" else locate_rs3
    kind, ref, key = locate(vdir, info)
    for k in ("key", "shard", "status_file", "image_path"):
        info.pop(k, None)
    info = {k: (list(v) if isinstance(v, tuple) else v) for k, v in info.items()}
    if subset == "rs3":
        info = _rs3_info(info)
    return {
        "pos": pos,
        "uid": row["uid"],
        "subset": subset,
        "source": row["source"],
        "stage": row["stage"],
        "decision": row["decision"],
        "caption": row["caption"] or "",
        "info": info,
        "image_kind": kind,
        "image_ref": ref,
        "image_key": key,
    }
