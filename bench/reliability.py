"""Regenerate docs/reliability.md: fuzzed bad inputs (tests/faults) and the fault-injection tests.

    python bench/reliability.py              # short form (CI sizes): fuzz suite, then the fault injection
    python bench/reliability.py --long       # RS5M_FUZZ_LONG=1: ~10x more inputs, more kill points/outages
    python bench/reliability.py --no-injection   # only the fuzz suite (fault-injection rows: "not run")

It runs the fuzz tests (``tests/faults/test_fuzz_*.py``) with ``RS5M_RELIABILITY_OUT`` pointing at a
temporary JSON-lines file (one line per generated input, written by ``tests.faults.record``), then the
fault-injection tests (the other ``tests/faults`` files and the resume tests elsewhere in tests/), and
renders the counts as tables. Exit status is non-zero when a test failed; the document is written
either way and says so.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Injection:
    """One fault the issue asks to inject, and the tests (pytest node ids) that inject it, if any."""

    fault: str
    tests: tuple[str, ...]
    note: str = ""


_F = "tests/faults/"
INJECTIONS = [
    Injection(
        "a Dask worker SIGKILLed by its PID mid keyword filtering, mid download and mid scoring",
        (f"{_F}test_worker_kill.py",),
        "funnel, reasons and kept uids identical to the undisturbed build",
    ),
    Injection(
        "the whole build SIGKILLed mid-download and restarted",
        (
            f"{_F}test_build_kill.py",
            "tests/pipeline/download/test_kill_resume.py::test_killed_download_resumes_without_refetching",
        ),
        "finished shards not fetched again (server request counts); no half-written shard marked done",
    ),
    Injection(
        "the image server stalling or resetting connections, then recovering",
        (f"{_F}test_server_faults.py", "tests/pipeline/download/test_slow_drip.py"),
        "transient failures recorded as reasons, retried after recovery; slow-drip bounded by total_timeout",
    ),
    Injection(
        "a version completed during an outage, its failures retried in a new version",
        (f"{_F}test_retry_new_version.py",),
        "the complete version refuses --retry-failed; the new one redoes every stage the retried rows reach",
    ),
    Injection(
        "the disk filling up during shard writing",
        (f"{_F}test_disk_full.py",),
        "clear one-line error, nothing marked complete, the rerun after freeing space completes",
    ),
    Injection(
        "two builds of one version at once; DuckDB one writer",
        (f"{_F}test_concurrent_builds.py", "tests/core/test_locks.py"),
        "the second build is refused (or waits with --wait-lock) and writes nothing",
    ),
    Injection(
        "corrupted stats files and manifests",
        (
            f"{_F}test_corrupt_markers.py",
            "tests/lineage/test_store.py::test_corrupt_stats_file_is_not_done",
            "tests/pipeline/keywords/test_matcher.py::test_filter_partition_redoes_a_corrupt_marker",
            "tests/pipeline/package/test_package_version.py::test_manifest_verifies_and_detects_a_flipped_byte",
        ),
        "detected by checksum, the partition or package subset redone",
    ),
    Injection(
        "download interrupted or partly failed, rerun resumes / retry-failed refetches only transient rows",
        (
            "tests/pipeline/download/test_download.py::test_resume_returns_stats_without_network",
            "tests/pipeline/download/test_download.py::test_shard_level_resume_skips_done_shards",
            "tests/pipeline/download/test_download.py::test_retry_failed_refetches_only_transient",
        ),
    ),
    Injection(
        "a finished version rebuilt: no-op; package resume",
        (
            "tests/flows/test_build.py::test_build_flow_on_sample_world",
            "tests/pipeline/package/test_package_version.py::test_stats_load_into_lineage_and_resume",
            "tests/pipeline/package/test_packer.py::test_resume_marker_and_clear",
        ),
    ),
]
FUZZ_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "faults").glob("test_fuzz_*.py"))

CATEGORY_NOTES = {
    "sources": "generated files per adapter through ingest_file",
    "urls": "netguard.check_url and the redirect handler",
    "images": "images.check_image",
    "tars": "download_stage.iter_shard_images",
    "rs3": "rs3.readers.read_item on fuzzed metadata JSON",
    "findings": "minimal inputs of the crashes fuzzing found, all fixed (regression tests; see Findings)",
}


def _test_exists(nodeid: str) -> bool:
    path, _, name = nodeid.partition("::")
    f = ROOT / path
    return f.is_file() and (not name or f"def {name}(" in f.read_text(encoding="utf-8"))


def _result(nodeid: str, outcomes: dict[str, str]) -> str:
    """The outcome of one test, or of every test in a file.

    A file passes when none of its tests failed and at least one passed; its long-form cases skip in
    the short form and are counted beside the result.
    """
    if "::" in nodeid:
        return outcomes.get(nodeid, "not collected")
    counts = collections.Counter(v for k, v in outcomes.items() if k.split("::")[0] == nodeid)
    if not counts:
        return "not collected"
    if counts["failed"] or not counts["passed"]:
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    skipped = f", {counts['skipped']} long-form skipped" if counts["skipped"] else ""
    return f"passed ({counts['passed']}{skipped})"


def _pytest(args: list[str], env: dict[str, str], junit: Path) -> tuple[int, float]:
    start = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    return rc, time.monotonic() - start


def _outcomes(junit: Path) -> dict[str, str]:
    """``{nodeid: passed|failed|skipped|xfailed}`` from a junit XML report."""
    out: dict[str, str] = {}
    if not junit.exists():
        return out
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        name = case.get("name", "")
        nodeid = f"{path}.py::{name}"
        kinds = {child.tag for child in case}
        skipped = case.find("skipped")
        if "failure" in kinds or "error" in kinds:
            out[nodeid] = "failed"
        elif skipped is not None:
            out[nodeid] = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            out[nodeid] = "passed"
    return out


def _group(category: str) -> str:
    return category if category == "findings" else category.split("/")[0]


def _fuzz_table(records: list[dict]) -> tuple[list[str], dict[str, int]]:
    by: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records:
        c = by[r["category"]]
        c["tried"] += 1
        c["handled"] += bool(r["handled"])
        c["crashes"] += bool(r.get("crash"))
        c["outside"] += int(r.get("outside", 0))
        c["lost"] += int(r.get("lost", 0))
    order = sorted(by, key=lambda k: (k == "findings", k))
    lines = [
        "| category | what | bad inputs tried | handled | crashes | files written outside | samples lost |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    total: collections.Counter = collections.Counter()
    for cat in order:
        c = by[cat]
        total.update(c)
        what = CATEGORY_NOTES.get(_group(cat), "")
        counts = " | ".join(str(c[k]) for k in ("tried", "handled", "crashes", "outside", "lost"))
        lines.append(f"| {cat} | {what} | {counts} |")
    lines.append(
        f"| **total** | | **{total['tried']}** | **{total['handled']}** | "
        f"**{total['crashes']}** | **{total['outside']}** | **{total['lost']}** |"
    )
    return lines, dict(total)


def _injection_table(outcomes: dict[str, str] | None) -> tuple[list[str], int, int]:
    lines = ["| fault injected | test(s) | result | note |", "|---|---|---|---|"]
    injected = survived = 0
    for inj in INJECTIONS:
        if not inj.tests:
            lines.append(f"| {inj.fault} | none | **not yet built** | {inj.note} |")
            continue
        results = []
        for t in inj.tests:
            if not _test_exists(t):
                results.append("missing")
            elif outcomes is None:
                results.append("not run")
            else:
                results.append(_result(t, outcomes))
        tests = "<br>".join(f"`{t}`" for t in inj.tests)
        if outcomes is not None and all(r != "missing" for r in results):
            injected += 1
            survived += all(r.startswith("passed") for r in results)
        shown = ", ".join(results) if len(set(results)) > 1 else results[0]
        lines.append(f"| {inj.fault} | {tests} | {shown} | {inj.note} |")
    return lines, injected, survived


_S = "tests/faults/test_fuzz_sources.py::"
_R = "tests/faults/test_fuzz_rs3.py::"
# (where, minimal input, effect before the fix, regression test) of each crash the fuzzing found.
FINDINGS = [
    (
        "`rs5m/sources/_text.py` `as_int` (WIT widths, VG width/height)",
        'WIT row with `original_width` = `²`; VG `[{"image_id": 1, "width": "\\u00b2"}]`',
        '`ValueError` from `int("²")` (`str.isdigit()` accepts non-ASCII digits): the whole file '
        "failed to ingest",
        f"`{_S}test_fixed_wit_superscript_width`, `::test_fixed_vg_superscript_width`",
    ),
    (
        "`rs5m/sources/yfcc.py` `YfccAdapter._chunk`",
        "a 23-field line with photoid `99999999999999999999`, with any `subset_file`",
        "`OverflowError` in `np.fromiter(..., dtype=int64)`",
        f"`{_S}test_fixed_yfcc_huge_photoid_with_subset`",
    ),
    (
        "`rs5m/sources/_arrow.py` `assemble`",
        'COYO part whose *binary* extras column `image_phash` holds `b"\\x80\\x01"` or `b"\\x80"`',
        "binary columns were not UTF-8 checked: `UnicodeDecodeError` in `_json_strings`, or invalid UTF-8 "
        "copied into the kept row's `extras`; now the row is `bad_encoding`",
        f"`{_S}test_fixed_parquet_binary_extra_bad_utf8[*]`",
    ),
    (
        "`rs5m/sources/_arrow.py` `to_key`",
        "COYO part whose `id` column is `list<string>`",
        "`ArrowNotImplementedError`; now a whole-file `SourceFormatError`",
        f"`{_S}test_fixed_parquet_list_id_column`",
    ),
    (
        "`rs5m/rs3/metacaption.py` `fmow_fields` (via `readers.read_fmow`)",
        "the good fMoW JSON with `cloud_cover: Infinity` or `NaN`, `img_width` = a 401-digit integer, a "
        "non-numeric `box` entry, or a list `raw_location`",
        "`OverflowError` / `ValueError` / `TypeError` escaped `read_item`; now `malformed_metadata`",
        f"`{_R}test_fixed_fmow_metadata_crash[*]`",
    ),
    (
        "`rs5m/rs3/readers.py` `_load_json`",
        "a metadata file of 100 000 `[`",
        "`RecursionError` escaped `read_item`; now `malformed_metadata`",
        f"`{_R}test_fixed_deeply_nested_metadata`",
    ),
]
FINDINGS_NOTE = (
    "Every fix is in place and the generators no longer steer around these inputs. Not a crash, noted: "
    "a cut gzip shard makes `iter_shard_images` raise `EOFError` rather than `tarfile.ReadError`; the "
    "validity stage fails that partition loudly (no sample is dropped silently)."
)


def _findings() -> list[str]:
    lines = [
        "## Findings of the fuzzing (all fixed; each kept as a regression test)",
        "",
        "| # | where | minimal input | effect | test |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {i} | {w} | {m} | {e} | {t} |" for i, (w, m, e, t) in enumerate(FINDINGS, 1)]
    return [*lines, "", FINDINGS_NOTE, ""]


def _status(outcomes: dict[str, str]) -> str:
    counts = collections.Counter(outcomes.values())
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no result"


def render(
    records: list[dict],
    fuzz: tuple[int, float, dict[str, str]],
    inj: tuple[int, float, dict[str, str]] | None,
    long: bool,
) -> str:
    """The Markdown document."""
    fuzz_lines, total = _fuzz_table(records)
    inj_lines, injected, survived = _injection_table(inj[2] if inj else None)
    fuzz_status = _status(fuzz[2])
    n_xfail = sum(1 for v in fuzz[2].values() if v == "xfailed")
    parts = [
        "# Reliability",
        "",
        f"Generated by `python bench/reliability.py{' --long' if long else ''}` on "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; do not edit by hand.",
        "",
        "## Summary",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| faults injected (tests that exist and ran) | {injected} |",
        f"| faults survived | {survived} |",
        f"| faults listed but not yet built | {sum(1 for i in INJECTIONS if not i.tests)} |",
        f"| bad inputs tried (hypothesis, {'long' if long else 'short'} form) | {total.get('tried', 0)} |",
        f"| bad inputs handled | {total.get('handled', 0)} |",
        f"| crashes | {total.get('crashes', 0)} |",
        f"| files written outside the version folder | {total.get('outside', 0)} |",
        f"| samples lost (must be 0) | {total.get('lost', 0)} |",
        f"| known bugs kept as strict xfail tests | {n_xfail} |",
        "",
        f"`pytest tests/faults/test_fuzz_*.py`: {fuzz_status} in {fuzz[1]:.0f} s (exit {fuzz[0]}).",
        "",
        "## Fuzzed bad inputs (tests/faults)",
        "",
        "Handled: the input ended as a kept row / valid result or with a recorded reason (or, for a whole "
        "file in the wrong format, as one `SourceFormatError` with nothing marked done), the stats "
        "invariant held, and nothing was written outside the version folder. Samples lost: rows of a "
        "generated file that ended neither in a kept partition nor in the rejects file. The `findings` "
        "row counts the minimal inputs of the crashes fuzzing found earlier (fixed; regression tests).",
        "",
        *fuzz_lines,
        "",
        "## Fault injection",
        "",
        *inj_lines,
        "",
        (
            f"Fault-injection tests: {_status(inj[2])} in {inj[1]:.0f} s (exit {inj[0]})."
            if inj
            else "Fault-injection tests were not run (`--no-injection`)."
        ),
        "",
        *_findings(),
    ]
    return "\n".join(parts)


def main() -> int:
    """Run the suites and write the document; non-zero exit when a test failed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--long", action="store_true", help="RS5M_FUZZ_LONG=1 (about 10x more inputs)")
    ap.add_argument("--no-injection", action="store_true", help="skip the fault-injection tests")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rs5m-reliability-") as tmp:
        results = Path(tmp) / "results.jsonl"
        env = dict(os.environ, RS5M_RELIABILITY_OUT=str(results))
        env.pop("RS5M_FUZZ_LONG", None)
        if args.long:
            env["RS5M_FUZZ_LONG"] = "1"
        rc, secs = _pytest(FUZZ_FILES, env, Path(tmp) / "faults.xml")
        fuzz = (rc, secs, _outcomes(Path(tmp) / "faults.xml"))
        records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
        inj = None
        if not args.no_injection:
            nodeids = [t for i in INJECTIONS for t in i.tests if _test_exists(t)]
            env.pop("RS5M_RELIABILITY_OUT")
            irc, isecs = _pytest(nodeids, env, Path(tmp) / "inj.xml")
            inj = (irc, isecs, _outcomes(Path(tmp) / "inj.xml"))
    args.out.write_text(render(records, fuzz, inj, args.long), encoding="utf-8")
    print(f"wrote {args.out}")
    return 1 if rc or (inj and inj[0]) else 0


if __name__ == "__main__":
    sys.exit(main())
