"""A version that completed during an image-server outage is retried in a new version (issue #12).

With no in-run retries, the first ``N`` requests are reset: the build completes, but those rows end as
``download_transient``. The complete version is immutable: ``--retry-failed`` on it is refused with one
line. ``--version v2 --base-version v1 --retry-failed`` fetches the failed rows again and must redo
every later stage that depends on them (validity, the global dedup, the scores of the changed
partitions, the decision) — not trust the seeded markers — so v2 ends exactly like the undisturbed
reference, and v1's files are untouched (the seeded files are hard links).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rs5m.sample import serve_images

from ._builds import VERSION, Outcome, World, assert_same, outcome, run_build
from .test_build_kill import build_config

N = 4


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_outage_failures_are_retried_in_a_new_version(
    faults_world: World, reference: Outcome, prefect_harness: None, tmp_path: Path
) -> None:
    config = build_config(faults_world, "outage-complete.yaml", retries=0)
    root = tmp_path / "root"
    outage = {"mode": "reset", "requests": N}
    with serve_images(faults_world.dir / "images", port=faults_world.port, outage=outage) as addr:
        run_build(config, root)
    assert sum(addr.outage_log.values()) == N  # the server really broke N requests
    v1 = outcome(root)
    transient = sum(
        n for _, stage, _, reason, n in v1.reasons if (stage, reason) == ("download", "download_transient")
    )
    assert transient == N and v1.funnel != reference.funnel  # v1 lost those rows (recorded, not silently)
    before = _digests(root / "versions" / VERSION)

    with serve_images(faults_world.dir / "images", port=faults_world.port) as addr:
        with pytest.raises(ValueError, match="is complete and cannot change"):
            run_build(config, root, retry_failed=True)
        run_build(config, root, "v2", base_version=VERSION, retry_failed=True)
    assert_same(outcome(root, "v2"), reference)
    assert outcome(root) == v1 and _digests(root / "versions" / VERSION) == before
