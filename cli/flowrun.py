"""Every long job of the CLI runs through its Prefect flow, the same code a deployment runs.

``rs5m build``, ``train``, ``evaluate`` and ``finetune-captioner`` parse and check their inputs here (one
line per bad input, before anything starts), then call the flow in this process: the same tasks,
retries, logs and artifacts as ``prefect deployment run``, so a result from the terminal and one from
the UI can never differ by code path. Without ``PREFECT_API_URL`` the flow talks to a local API
started for the run (``flows.local_api``) whose state lives in ``<home>/.prefect``; with it, the run
appears in that server's UI.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from cli.commands._common import prefect_env


def run_flow(target: str, home: str | Path, **params: Any) -> Any:
    """Call flow ``target`` (``"module:function"`` under ``flows``) with ``params``; return its result.

    ``home``: the folder whose ``.prefect`` holds the local API's state when no server is configured.
    The flow's own exception propagates (the CLI turns it into one line).
    """
    module, _, name = target.partition(":")
    prefect_env(home)
    flow = getattr(importlib.import_module(f"flows.{module}"), name)
    local_api = importlib.import_module("flows.local_api").local_api
    with local_api():
        return flow(**params)

