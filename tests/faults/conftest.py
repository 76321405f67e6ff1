"""Fixtures of the fault-injection tests: one sample world per session and its undisturbed build."""

from __future__ import annotations

import pytest

from ._builds import Outcome, World, make_world, outcome, run_build


@pytest.fixture(scope="session")
def faults_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The sample world every fault test builds (seed 0, images on this session's own free port)."""
    return make_world(tmp_path_factory.mktemp("faults-world"))


@pytest.fixture(scope="session")
def reference(
    faults_world: World, tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Outcome:
    """The undisturbed build of the fault tests' version: what every disturbed build must end with."""
    root = tmp_path_factory.mktemp("faults-reference")
    run_build(faults_world.config, root)
    return outcome(root)
