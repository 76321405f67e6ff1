"""The disk fills up while the packaging stage writes shards under ``<root>/versions/v1/package/``.

Both ways run the real ``rs5m build`` CLI in a child process. ``tmpfs`` (where ``unshare --user
--map-root-user --mount`` works): this module, as a driver in a new namespace, mounts a small tmpfs over
``package/``, builds, inspects, remounts it larger ("frees space"), reruns and copies the folder out; the
kernel raises ``ENOSPC``. ``budget`` (everywhere): the CLI child's shard writer gets files whose raw
writes, once a byte budget is spent, write partially and then raise ``ENOSPC``; the rerun has no budget.

After a failure: exit code 2 and a last line ``rs5m build: error: no space left on device writing <shard>:
...`` (no traceback from the CLI), no ``COMPLETE``, lineage status not complete, no package stats or
``manifest.json``, no temp files, and every ``_manifest/`` entry matches a complete shard. After the
rerun: the reference outcome, and both layouts verify against their manifests.

Short form: the disk fills once, at a later shard (earlier shards finished), on a real tmpfs where the
namespace works and with the budget elsewhere. Long form (``RS5M_FUZZ_LONG=1``): both ways, at the
first shard and at a later one.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rs5m.core.layout import DataRoot
from rs5m.lineage import store as lineage
from rs5m.shards.manifest import ENTRY_DIR, file_sha256, read_entries, verify_manifest
from rs5m.shards.tario import iter_shard_samples

from . import LONG
from ._builds import (
    REPO,
    VERSION,
    Built,
    Outcome,
    World,
    assert_same,
    cli_build_cmd,
    cli_env,
    outcome,
    with_config,
)

LAYOUTS = ("rs5m", "open_clip")
SMALL_SHARDS = 8  # samples per shard in the "later shard" runs: each layout gets many shards
MESSAGE = "rs5m build: error: no space left on device writing "
BUILD_TIMEOUT = 600
ONLY_LONG = pytest.mark.skipif(not LONG, reason="long form only (RS5M_FUZZ_LONG=1)")
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def package_dir(root: Path) -> Path:
    """The version's packaging output folder."""
    return root / "versions" / VERSION / "package"


def state(root: Path) -> dict[str, Any]:
    """What a build left under ``root``: markers, lineage status, package files and manifest entries."""
    vdir, pkg = root / "versions" / VERSION, package_dir(root)
    with lineage.connect(DataRoot.of(root).lineage_db, read_only=True) as con:
        row = con.execute("SELECT status FROM versions WHERE version = ?", [VERSION]).fetchone()
    files = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file())
    entries = []
    for layout in LAYOUTS:
        for e in read_entries(pkg / layout) if (pkg / layout).is_dir() else []:
            shard = pkg / layout / e.name
            ok = shard.is_file() and shard.stat().st_size == e.bytes and file_sha256(shard) == e.sha256
            ok = ok and sum(1 for _ in iter_shard_samples(str(shard))) == e.n_samples
            entries.append({"layout": layout, "name": e.name, "complete": ok})
    return {
        "complete": (vdir / "COMPLETE").exists(),
        "status": row[0] if row else None,
        "files": files,
        "entries": entries,
        "stats": [f for f in files if f.startswith("_stats/")],
        "manifests": [f for f in files if f.endswith("/manifest.json")],
        "tars": [f for f in files if f.endswith(".tar")],
        "temp": [f for f in files if Path(f).name.startswith(".")],
    }


def run_cli(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run one CLI build; keep its stderr in ``log``; return rc and the last stderr lines."""
    proc = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    log.write_text(proc.stdout + "\n---- stderr ----\n" + proc.stderr, encoding="utf-8")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return {"rc": proc.returncode, "tail": lines[-5:], "errors": [ln for ln in lines if MESSAGE in ln]}


# ---- tmpfs driver (runs inside the namespace) ----


def _mount(pkg: Path, size: int, remount: bool) -> None:
    opts = f"remount,size={size}" if remount else f"size={size},mode=755"
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(pkg)], check=True)


def tmpfs_driver(spec: dict[str, Any]) -> dict[str, Any]:
    """Build under a tmpfs ``package/`` once per size in ``spec["sizes"]``, then copy it out."""
    root, config = Path(spec["root"]), Path(spec["config"])
    pkg = package_dir(root)
    pkg.mkdir(parents=True, exist_ok=True)
    phases = []
    for i, size in enumerate(spec["sizes"]):
        _mount(pkg, size, remount=i > 0)
        st = os.statvfs(pkg)
        run = run_cli(cli_build_cmd(config, root), root / f"build-{i}.log")
        phases.append({"size": size, "fs_bytes": st.f_blocks * st.f_frsize, **run, "state": state(root)})
    shutil.copytree(pkg, spec["copy"])
    return {"phases": phases}


# ---- budget: a simulated full disk for the shard writer only (runs in the CLI child) ----


class _WriterOs:
    """``os`` for ``rs5m.shards.writer``, real but for ``fdopen``: its files share a budget of ``left`` bytes
    and then, after a partial write as on a filling disk, raise ``ENOSPC`` (``hits`` counts them)."""

    def __init__(self, left: int) -> None:
        self.left, self.hits = left, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fdopen(self, fd: int, mode: str = "r", buffering: int = -1) -> io.BufferedWriter:
        disk = self

        class Raw(io.FileIO):
            def write(self, b: Any) -> int:
                if disk.left <= 0:
                    disk.hits += 1
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a raw write knows no path
                data = memoryview(b).cast("B")[: disk.left]
                disk.left -= len(data)
                return super().write(data)

        return io.BufferedWriter(Raw(fd, mode), buffering)


def budget_cli(n_bytes: int, hits_file: str, argv: list[str]) -> int:
    """``rs5m`` with the shard writer on a disk of ``n_bytes``; writes the refusal count to ``hits_file``."""
    import cli.main
    import rs5m.shards.writer as writer

    disk = _WriterOs(n_bytes)
    writer.os = disk  # type: ignore[assignment]
    try:
        return cli.main.main(argv)
    finally:
        Path(hits_file).write_text(json.dumps({"hits": disk.hits, "left": disk.left}), encoding="utf-8")


# ---- the tests ----


def _plan(case: str, world: World, need: int) -> tuple[bool, int, Path]:
    """(later shard?, bytes of space, config). First shard: an eighth of the package, less than one
    layout's only train shard (default config); later shard: half of it, with small shards."""
    if case == "first-shard":
        return False, need // 8, world.config
    package = yaml.safe_load(world.config.read_text(encoding="utf-8")).get("package") or {}
    package["max_samples_per_shard"] = SMALL_SHARDS
    return True, need // 2, with_config(world, "build-disk-full-small-shards.yaml", package=package)


@pytest.fixture
def package_bytes(sample_build: Built) -> int:
    """Bytes of the undisturbed reference build's package folder (``sample_build`` in tests/conftest.py)."""
    pkg = sample_build.vdir / "package"
    assert pkg.is_dir(), f"the reference build has no package folder {pkg}"
    return sum(p.stat().st_size for p in pkg.rglob("*") if p.is_file())


def assert_failed_cleanly(run: dict[str, Any], root: Path, *, later_shard: bool) -> None:
    """The build failed on a full disk while writing a shard, with one clear line and nothing marked done."""
    st = run["state"]
    assert run["rc"] == 2, run["tail"]
    assert run["tail"][-1].startswith(MESSAGE) and run["errors"] == run["tail"][-1:], run["tail"]
    path = Path(run["tail"][-1][len(MESSAGE) :].split(": free space", 1)[0])
    if path.parent.name == ENTRY_DIR:  # a real full disk can also refuse the shard's entry (4 KiB pages)
        path = path.parent.parent / path.name.removesuffix(".json")
    assert path.parent.parent.resolve() == package_dir(root).resolve(), path
    assert path.parent.name in LAYOUTS and path.suffix == ".tar", path
    index = int(path.stem.rsplit("-", 1)[1])
    assert (index > 0) if later_shard else (index == 0), path
    assert not st["complete"] and st["status"] != "complete", st
    assert st["stats"] == [] and st["manifests"] == [] and st["temp"] == [], st
    assert all(e["complete"] for e in st["entries"]), st["entries"]
    entries = {f"{e['layout']}/{e['name']}" for e in st["entries"]}
    assert set(st["tars"]) == entries, st  # no shard file without its entry
    assert f"{path.parent.name}/{path.name}" not in entries
    if later_shard:  # the shards before the failing one were finished and verified
        assert any(e["layout"] == path.parent.name for e in st["entries"]), st["entries"]


def assert_rebuilt(root: Path, reference: Outcome) -> None:
    """The rerun completed exactly like the undisturbed build, with verifiable shards."""
    assert_same(outcome(root), reference)
    for layout in LAYOUTS:
        assert verify_manifest(package_dir(root) / layout, count_samples=True) == []
    st = state(root)
    assert st["status"] == "complete" and st["temp"] == [], st


@functools.cache
def _unshare_works() -> str | None:
    """``None`` when a user+mount namespace with a tmpfs can be made here, else the reason it cannot."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "unshare is not available"
    probe = 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"'
    try:
        proc = subprocess.run([*UNSHARE, "sh", "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    return None if proc.returncode == 0 else f"no user+mount namespace with tmpfs: {proc.stderr.strip()}"


@pytest.mark.parametrize("case", [pytest.param("first-shard", marks=ONLY_LONG), "later-shard"])
def test_tmpfs_fills_during_shard_writing(
    case: str, faults_world: World, reference: Outcome, package_bytes: int, tmp_path: Path
) -> None:
    reason = _unshare_works()
    if reason is not None:
        pytest.skip(f"tmpfs case needs `unshare --user --map-root-user --mount`: {reason}")
    later, space, config = _plan(case, faults_world, package_bytes)
    sizes = [space // 4096 * 4096, 4 * package_bytes]
    root, copy = tmp_path / "root", tmp_path / "package-copy"
    root.mkdir()
    spec = {"root": str(root), "config": str(config), "sizes": sizes, "copy": str(copy)}
    driver = [sys.executable, "-m", "tests.faults.test_disk_full", "tmpfs", json.dumps(spec)]
    kw: dict[str, Any] = {"cwd": REPO, "env": cli_env(), "capture_output": True, "text": True}
    proc = subprocess.run([*UNSHARE, *driver], timeout=3 * BUILD_TIMEOUT, **kw)
    assert proc.returncode == 0, proc.stderr[-4000:]
    failed, rerun = json.loads(proc.stdout.strip().splitlines()[-1])["phases"]
    assert failed["fs_bytes"] == sizes[0] < package_bytes  # the build really ran on a filesystem too small
    assert_failed_cleanly(failed, root, later_shard=later)
    assert rerun["rc"] == 0, rerun["tail"]
    package_dir(root).rmdir()  # the empty mount point; the rerun's output is the copy
    copy.rename(package_dir(root))
    assert_rebuilt(root, reference)


# Evaluated at setup, before the fixtures (a string condition): no reference build for a skipped case.
@pytest.mark.skipif(
    "not LONG and _unshare_works() is None",
    reason="short form: the disk fills for real here (the tmpfs case); RS5M_FUZZ_LONG=1 runs both",
)
@pytest.mark.parametrize("case", [pytest.param("first-shard", marks=ONLY_LONG), "later-shard"])
def test_budget_fills_during_shard_writing(
    case: str, faults_world: World, reference: Outcome, package_bytes: int, tmp_path: Path
) -> None:
    later, budget, config = _plan(case, faults_world, package_bytes)
    root, hits = tmp_path / "root", tmp_path / "hits.json"
    root.mkdir()
    cli = cli_build_cmd(config, root)
    argv = cli[cli.index("cli.main") + 1 :]  # what `python -m cli.main` would get
    cmd = [sys.executable, "-m", "tests.faults.test_disk_full", "budget", str(budget), str(hits), *argv]
    failed = run_cli(cmd, tmp_path / "build-0.log")
    failed["state"] = state(root)
    assert json.loads(hits.read_text(encoding="utf-8"))["hits"] >= 1  # the writer really got ENOSPC
    assert_failed_cleanly(failed, root, later_shard=later)
    rerun = run_cli(cli_build_cmd(config, root), tmp_path / "build-1.log")
    assert rerun["rc"] == 0, rerun["tail"]
    assert_rebuilt(root, reference)


_HEADS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "no space left on device (disk quota exceeded)",
    errno.EFBIG: "no space left on device (file too large for the file system or the ulimit -f limit)",
    errno.EACCES: None,  # not a full disk: the error's own line (cli.errors), no disk-full advice
}


@pytest.mark.parametrize("err", sorted(_HEADS))
@pytest.mark.parametrize("how", ["raised", "wrapped", "no-path"])
def test_cli_reports_a_full_disk_in_one_line(
    err: int, how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cli.commands.build as build_command
    import cli.main

    path = "/data/versions/v1/package/rs5m/pub11-train-0003.tar"
    exc = OSError(err, os.strerror(err), None if how == "no-path" else path)

    def run(args: Any) -> int:
        if how != "wrapped":
            raise exc
        try:
            raise exc
        except OSError as inner:  # as a wrapper around the task's error would
            raise RuntimeError("task package-shards failed") from inner

    monkeypatch.setattr(build_command, "run", run)
    if _HEADS[err] is None:
        status = cli.main.main(["build", "--config", "build.yaml"])
        line = capsys.readouterr().err
        if how == "wrapped":  # a wrapper that is not bad input is a bug: status 1, its own words
            said = "internal error: RuntimeError: task package-shards failed"
            assert (status, line) == (
                1,
                f"rs5m build: error: {said} (rerun with --debug for the traceback)\n",
            )
        else:
            assert status == 2 and line.startswith("rs5m build: error: permission denied")
            assert "no space" not in line and line.count("\n") == 1
        return
    assert cli.main.main(["build", "--config", "build.yaml"]) == 2
    where = "(the file was not reported)" if how == "no-path" else f"writing {path}"
    tail = "free space there and rerun the same command (finished stages are not redone)"
    assert capsys.readouterr().err == f"rs5m build: error: {_HEADS[err]} {where}: {tail}\n"


if __name__ == "__main__":
    if sys.argv[1] == "tmpfs":  # python -m tests.faults.test_disk_full tmpfs SPEC_JSON
        print(json.dumps(tmpfs_driver(json.loads(sys.argv[2]))))
    else:  # python -m tests.faults.test_disk_full budget BYTES HITS_FILE RS5M_ARGS...
        sys.exit(budget_cli(int(sys.argv[2]), sys.argv[3], sys.argv[4:]))
