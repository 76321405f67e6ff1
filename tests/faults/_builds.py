"""Builds of the sample world for the whole-build tests: one world, builds of it, what a build ended with.

The session's sample world and its one undisturbed build are the ``sample_world`` and ``sample_build``
fixtures (``tests/conftest.py``). A fault test builds the world under its own data root, injects its
fault, lets the build (or its rerun) finish, and compares ``outcome(root, version)`` with the undisturbed
reference: the PUB11 funnel, every reason count, and the set of uids in the packaged shards must be
identical. A test that must change a finished build works on ``linked_copy`` of it.

Each world serves its images on its own free port, so several test sessions (and pytest-xdist workers,
each with its own world) can run side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rs5m.core.layout import DataRoot
from rs5m.lineage import store as lineage

VERSION = "v1"  # every fault test builds this version name (in its own root)
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class World:
    """A written sample world: its folder, the build config to use, and the generator's expected counts."""

    dir: Path
    config: Path
    expected: dict[str, Any]
    port: int


@dataclass(frozen=True)
class Built:
    """A finished, undisturbed build: its data root, version, the funnel the flow returned, its outcome.

    Shared by every test of a session: read it, or work on ``linked_copy(built.root, ...)``, never in it.
    """

    root: Path
    version: str
    rows: list[dict[str, Any]]
    outcome: Outcome

    @property
    def vdir(self) -> Path:
        """The version folder."""
        return self.root / "versions" / self.version


@dataclass(frozen=True)
class Outcome:
    """What a finished build left: funnel rows, reason counts and the packaged uids."""

    funnel: list[dict[str, Any]]
    reasons: list[tuple[str, str, str, str, int]]
    kept: frozenset[str]


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_world(out: Path, *, seed: int = 0, dask: dict[str, Any] | None = None) -> World:
    """Write the sample world under ``out`` (images on a free port) and a test config ``build-faults.yaml``.

    ``dask``: the config's ``dask`` section (default: one in-process worker with two threads).
    """
    from rs5m.sample import write_world

    port = free_port()
    expected = write_world(out, seed=seed, port=port)
    cfg = yaml.safe_load((out / "build.yaml").read_text(encoding="utf-8"))
    cfg["dask"] = dask or {"n_workers": 1, "threads_per_worker": 2, "processes": False}
    config = out / "build-faults.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return World(out, config, expected, port)


def with_config(world: World, name: str, **changes: Any) -> Path:
    """A copy of the world's test config with top-level sections replaced; returns its path."""
    cfg = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    cfg.update(changes)
    path = world.dir / name
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def run_build(config: Path, root: Path, version: str = VERSION, **params: Any) -> list[dict[str, Any]]:
    """Run flow build-rs5m in this process (needs the ``prefect_harness`` fixture); return its funnel."""
    from flows.build_rs5m import build_rs5m

    return build_rs5m(config=str(config), root=str(root), version=version, **params)


# Files a build rewrites in place (DuckDB, the funnel figure, JSON markers) are copied; data files are
# only ever written whole under a temporary name and renamed, so they are shared as hard links.
LINKED_SUFFIXES = frozenset({".parquet", ".tar", ".npy", ".jpg", ".webp"})


def linked_copy(src: Path, dst: Path) -> Path:
    """A private copy of the data root ``src`` at ``dst`` in a fraction of a second; returns ``dst``.

    Data files (``LINKED_SUFFIXES``) become hard links to ``src``'s, everything else is copied. A build
    on the copy replaces a data file rather than writing into it, so ``src`` stays as it was; a test
    that edits files in place (flipped bytes) needs ``shutil.copytree`` instead.
    """

    def link_or_copy(a: str, b: str) -> None:
        if Path(a).suffix in LINKED_SUFFIXES:
            os.link(a, b)
        else:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)
    return dst


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for an ``rs5m`` child process: its own ephemeral Prefect API, repo on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(NO_ALBUMENTATIONS_UPDATE="1", PYTHONPATH=str(REPO), **extra)
    return env


def cli_build_cmd(config: Path, root: Path, version: str = VERSION, *args: str) -> list[str]:
    """The command line of ``rs5m build`` for this config, root and version."""
    return [
        sys.executable,
        "-m",
        "cli.main",
        "build",
        "--config",
        str(config),
        "--root",
        str(root),
        "--version",
        version,
        *args,
    ]


def cli_build(
    config: Path, root: Path, version: str = VERSION, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``rs5m build`` in a child process and wait; stdout/stderr are captured as text.

    The child runs in its own session: on a timeout its whole process group (its Prefect API server,
    Dask workers) is killed, not only the child.
    """
    proc = subprocess.Popen(
        cli_build_cmd(config, root, version, *args),
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def stop_processes(procs: list[subprocess.Popen], timeout: float = 30) -> None:
    """Terminate ``procs`` (the last started first); kill and reap any still running after ``timeout``."""
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def kept_uids(version_dir: Path) -> frozenset[str]:
    """The uids of every sample in the version's packaged shards (all layouts, both splits)."""
    uids: set[str] = set()
    for tar in sorted((version_dir / "package").rglob("*.tar")):
        with tarfile.open(tar) as tf:
            for member in tf:
                if member.name.endswith(".json"):
                    f = tf.extractfile(member)
                    assert f is not None, member.name
                    uids.add(json.loads(f.read())["uid"])
    return frozenset(uids)


def outcome(root: Path, version: str = VERSION) -> Outcome:
    """The funnel, reasons and kept uids of a complete version under ``root``."""
    vdir = root / "versions" / version
    assert (vdir / "COMPLETE").is_file(), f"version {version} under {root} is not complete"
    with lineage.connect(DataRoot.of(root).lineage_db, read_only=True) as con:
        funnel = lineage.funnel_rows(con, version)
        reasons = sorted(
            (r["subset"], r["stage"], r["source"], r["reason"], int(r["n"]))
            for r in lineage.reason_rows(con, version)
        )
    return Outcome(funnel, reasons, kept_uids(vdir))


def assert_same(got: Outcome, ref: Outcome) -> None:
    """The disturbed build ended exactly like the undisturbed reference."""
    assert got.funnel == ref.funnel
    assert got.reasons == ref.reasons
    assert got.kept == ref.kept and got.kept
