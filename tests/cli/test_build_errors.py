"""An error inside a running ``rs5m build`` (Prefect and Dask started) ends it with one line, printed
last, and no traceback on the terminal; the traceback is in ``<root>/logs/rs5m.log``; a format error is
not retried (issue #17 items 11 and 14). The row of ``docs/bad-inputs.md`` it checks is in
``tests/cli/bad_inputs.py`` (``FLOW_CASES``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cli.bad_inputs import FLOW_CASES, match
from tests.faults._builds import World, cli_build_cmd, cli_env, make_world
from tests.pipeline.test_ingest_errors import _damaged_parquet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("build-errors-world"))


def test_a_parquet_with_damaged_pages_is_one_line_naming_it(world: World, tmp_path: Path) -> None:
    src = tmp_path / "damaged.parquet"
    _damaged_parquet(src)  # footer intact: the pre-flight passes, the read fails inside the flow
    cfg = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    cfg["sources"] = [{"name": "laion2b", "files": [str(src)]}]
    config = world.dir / "damaged.yaml"  # beside the world: its relative paths hold
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    root = tmp_path / "data"
    done = subprocess.run(
        cli_build_cmd(config, root), env=cli_env(), capture_output=True, text=True, timeout=600,
        start_new_session=True,
    )  # fmt: skip
    lines = done.stderr.strip("\n").splitlines()
    case = next(c for c in FLOW_CASES if "damaged data pages" in c.what)
    assert match(case.shows.replace("<input>", str(src)), lines[-1]), lines[-1]
    assert done.returncode == case.status == 2
    assert "Traceback" not in done.stderr  # Prefect's tracebacks went to the log file
    log = (root / "logs" / "rs5m.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "SourceFormatError" in log
    failed = [ln for ln in lines if "Task run 'ingest" in ln and "Finished in state Failed" in ln]
    assert len(failed) == 1 and "Retrying" not in log  # a format error cannot succeed: not retried
