"""Shared fixtures: the workshop data folder (skipped cleanly when absent), one Prefect test harness, and
the session's sample world with its one undisturbed build (shared by the whole-build and fault tests).

Session fixtures are per process: under pytest-xdist (``make test`` runs ``-n``) every worker that needs
one builds its own, on its own free port and in its own temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults._builds import VERSION, Built, World, make_world, outcome, run_build

# Fixtures whose tests are the long ones: whole builds, then anything under Prefect.
HEAVY_FIXTURES = {"sample_build": 3, "sample_world": 3, "prefect_harness": 1}


def weight(item: pytest.Item) -> int:
    """How early a test is handed to an xdist worker: whole builds first, short unit tests last."""
    names = getattr(item, "fixturenames", ())
    return max([HEAVY_FIXTURES.get(n, 0) for n in names] + [2 if item.get_closest_marker("slow") else 0])


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``-n N --dist loadgroup``: hand out the longest tests first; make ``xdist_group`` marks work.

    Order: a stable sort by ``weight``, so every worker collects the same order, as xdist requires;
    loadgroup hands tests out one at a time in that order (``--dist load`` would give the first worker
    every long test in one chunk, so the order is left alone there, as in a run without workers).

    Groups: pytest-xdist 3.8 names a test's group (``--dist loadgroup``) by appending ``@<group>`` to
    ``item._nodeid``, which pytest 9's nodes no longer read (their id is ``item._id``), so each grouped
    test would be scheduled on its own; the suffix is appended here where xdist's did not take.
    """
    if not config.getoption("loadgroup", False):  # set on the workers of a --dist loadgroup run only
        return
    items.sort(key=lambda item: -weight(item))
    from _pytest.nodeid import NodeId

    for item in items:
        marks = item.iter_markers("xdist_group")
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
        if names and "@" not in item.nodeid.rpartition("]")[2] and hasattr(item, "_id"):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


SHARED_DATA = Path(
    os.environ.get("RS5M_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder ``../shared/data``; tests using it skip when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set RS5M_SHARED_DATA to use it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect test harness (temporary SQLite API) for the whole session; costs ~20 s once."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def sample_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The sample world (seed 0) every whole-build test builds: images on this process's own free port,
    config ``build-faults.yaml`` with one in-process Dask worker of two threads."""
    return make_world(tmp_path_factory.mktemp("sample-world"))


@pytest.fixture(scope="session")
def sample_build(
    sample_world: World, tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Built:
    """The world's one undisturbed build through flow build-rs5m (version ``v1``), made once per session.

    Read it, or build on ``linked_copy(sample_build.root, tmp_path / ...)``; never build in it.
    """
    root = tmp_path_factory.mktemp("sample-build")
    rows = run_build(sample_world.config, root)
    return Built(root, VERSION, rows, outcome(root))
