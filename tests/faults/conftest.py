"""Fixtures of the fault-injection tests: the session's sample world and its undisturbed build.

Both come from ``tests/conftest.py`` (``sample_world``, ``sample_build``), shared with the whole-build
tests of ``tests/flows``; the names below are what the fault tests call them.
"""

from __future__ import annotations

import pytest

from ._builds import Built, Outcome, World


@pytest.fixture(scope="session")
def faults_world(sample_world: World) -> World:
    """The sample world every fault test builds (seed 0, images on this session's own free port)."""
    return sample_world


@pytest.fixture(scope="session")
def reference(sample_build: Built) -> Outcome:
    """The undisturbed build of the fault tests' version: what every disturbed build must end with."""
    return sample_build.outcome
