# ruff: noqa: E501  (a table: one case per line)
"""The table of bad inputs to ``rs5m`` and the one line each one prints: tested, and rendered as
``docs/bad-inputs.md`` (``python -m tests.cli.bad_inputs > docs/bad-inputs.md``).

``CASES`` run in-process (``tests/cli/test_bad_inputs.py``) from a folder made by ``make_env``, so paths
in the messages are the relative ones typed. ``FLOW_CASES`` fail inside a real build (Prefect and Dask
running) and are checked by the slow tests named in their row. A pattern matches one whole stderr line;
``<*>`` stands for any text, ``{port}`` for a closed port, ``{busy}`` for a port that accepts connections
but never answers.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GENERIC_HINT = "start it (`dask scheduler`) or leave out --dask-address / dask.address to use a local cluster"


@dataclass(frozen=True)
class Case:
    """One bad input: what it is, the command line, the exit status and the line the user sees."""

    id: str
    what: str
    argv: list[str]
    shows: str
    status: int = 2
    needs: tuple[str, ...] = field(default_factory=tuple)  # "readonly": a read-only folder
    in_flow: bool = False  # found only once the command's flow runs (its Prefect lines come first)


def _b(*args: str) -> list[str]:
    return ["build", "--config", "world.yaml", *args]


DAMAGED = "the file is damaged or not a DuckDB database; restore it from a backup, or move it aside<*>"
CASES: list[Case] = [
    # the command line itself
    Case("no-command", "no sub-command", [], "rs5m: error: the following arguments are required: command (see `rs5m --help`)"),
    Case("unknown-command", "unknown sub-command", ["frobnicate"], "rs5m: error: argument command: invalid choice: 'frobnicate' (choose from <*>) (see `rs5m --help`)"),
    Case("unknown-option", "unknown option", ["funnel", "--colour"], "rs5m: error: unrecognized arguments: --colour (see `rs5m --help`)"),
    # build: config
    Case("build-no-config", "build without --config", ["build"], "rs5m build: error: the following arguments are required: --config (see `rs5m build --help`)"),
    Case("config-missing", "config file that does not exist", ["build", "--config", "missing.yaml"], "rs5m build: error: config file missing.yaml does not exist"),
    Case("config-folder", "config path that is a folder", ["build", "--config", "adir"], "rs5m build: error: config file adir is not a file"),
    Case("config-list", "YAML whose top level is a list", ["build", "--config", "list.yaml"], "rs5m build: error: config list.yaml must be a mapping of keys at the top level, not a list"),
    Case("config-scalar", "YAML whose top level is a string", ["build", "--config", "scalar.yaml"], "rs5m build: error: config scalar.yaml must be a mapping of keys at the top level, not a str"),
    Case("config-broken", "YAML that does not parse", ["build", "--config", "broken.yaml"], "rs5m build: error: <*>broken.yaml<*>"),
    Case("config-empty", "empty YAML file", ["build", "--config", "empty.yaml"], "rs5m build: error: <*>sources<*>"),
    Case("config-unknown-key", "unknown key in the config", ["build", "--config", "extra.yaml"], "rs5m build: error: <*>nope<*>"),
    Case("config-binary", "config file of binary bytes", ["build", "--config", "random.pt"], "rs5m build: error: cannot read config random.pt: 'utf-8' codec can't decode byte <*>: invalid start byte"),
    Case("glob-no-match", "a source glob that matches nothing", ["build", "--config", "nomatch.yaml"], "rs5m build: error: <*>no file matches<*>"),
    Case("files-dir", "a folder in a source's files", ["build", "--config", "filesdir.yaml"], "rs5m build: error: 1 input problem(s); nothing was started: sbu: <*>/adir: is a directory, expected a file (name the files with a glob, e.g. DIR/*.parquet)"),
    Case("files-missing-two", "two sources whose files are missing (every one named)", ["build", "--config", "twomissing.yaml"], "rs5m build: error: 2 input problem(s); nothing was started: sbu: missing file '<*>/inputs/a.json'; redcaps: missing file '<*>/inputs/b.json'"),
    Case("source-option", "a source option out of range", ["build", "--config", "option.yaml"], "rs5m build: error: 1 input problem(s); nothing was started: sbu: option batch_rows: Input should be greater than or equal to 1"),
    Case("detector-missing", "a detector checkpoint that does not exist", ["build", "--config", "detector.yaml"], "rs5m build: error: 1 input problem(s); nothing was started: detector checkpoint: missing file: <*>/missing.pt"),
    Case("version-slash", "version name with a slash", _b("--version", "a/b"), "rs5m build: error: <*>'a/b'<*>"),
    Case("version-empty", "empty version name", _b("--version", ""), "rs5m build: error: <*>''<*>"),
    Case("version-dotdot", "version name '..'", _b("--version", ".."), "rs5m build: error: <*>'..'<*>"),
    Case("wait-lock-negative", "negative --wait-lock", _b("--wait-lock", "-1"), "rs5m build: error: argument --wait-lock: '-1' is not a number of seconds in 0..604800 (see `rs5m build --help`)"),
    Case("wait-lock-text", "--wait-lock that is not a number", _b("--wait-lock", "soon"), "rs5m build: error: argument --wait-lock: 'soon' is not a number of seconds in 0..604800 (see `rs5m build --help`)"),
    # build: data root
    Case("root-file", "--root that is a file", _b("--root", "afile"), "rs5m build: error: data root afile is not a folder (a file is in the way): pass a folder as --root"),
    Case("root-under-file", "--root below a file", _b("--root", "afile/sub"), "rs5m build: error: data root afile/sub: a file is in the way of its folders: pass a folder as --root"),
    Case("root-readonly", "--root on a read-only file system", _b("--root", "readonly"), "rs5m build: error: data root readonly is not writable by you (read-only or no permission): pass a writable --root", needs=("readonly",)),
    Case("root-under-readonly", "--root to create on a read-only file system", _b("--root", "readonly/sub"), "rs5m build: error: cannot create the data root readonly/sub: read-only file system", needs=("readonly",)),
    Case("lineage-junk", "lineage.duckdb of random bytes", _b("--root", "data-junk"), "rs5m build: error: cannot read the database <*>/data-junk/lineage.duckdb (<*>not a valid DuckDB database file!): " + DAMAGED),
    Case("lineage-damaged", "lineage.duckdb with a damaged block", _b("--root", "data-damaged"), "rs5m build: error: cannot read the database <*>/data-damaged/lineage.duckdb (Corrupt database file<*>): " + DAMAGED),
    # build: Dask scheduler
    Case("dask-refused", "--dask-address where nothing listens", _b("--root", "data-new", "--dask-address", "tcp://127.0.0.1:{port}"), f"rs5m build: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{{port}}: connection refused; {GENERIC_HINT}"),
    Case("dask-silent", "--dask-address of a port that never answers", _b("--root", "data-new", "--dask-address", "tcp://127.0.0.1:{busy}"), f"rs5m build: error: no Dask scheduler answers at tcp://127.0.0.1:{{busy}} (<*>); {GENERIC_HINT}"),
    Case("dask-no-port", "--dask-address without a port", _b("--root", "data-new", "--dask-address", "scheduler"), "rs5m build: error: --dask-address 'scheduler' is not an address like tcp://host:8786 (missing port number in address 'scheduler')"),
    Case("dask-port-range", "--dask-address port above 65535", _b("--root", "data-new", "--dask-address", "tcp://127.0.0.1:99999"), "rs5m build: error: --dask-address 'tcp://127.0.0.1:99999': port 99999 is outside 1..65535"),
    Case("dask-port-text", "--dask-address with a word for a port", _b("--root", "data-new", "--dask-address", "tcp://127.0.0.1:http"), "rs5m build: error: --dask-address 'tcp://127.0.0.1:http' is not an address like tcp://host:8786 (<*>)"),
    # funnel
    Case("funnel-no-db", "funnel of a root without a lineage database", ["funnel", "--root", "nowhere"], "rs5m funnel: error: no lineage database at nowhere/lineage.duckdb; run `rs5m build` first"),
    Case("funnel-root-file", "funnel --root that is a file", ["funnel", "--root", "afile"], "rs5m funnel: error: no lineage database at afile/lineage.duckdb; run `rs5m build` first"),
    Case("funnel-junk", "funnel of a lineage.duckdb of random bytes", ["funnel", "--root", "data-junk"], "rs5m funnel: error: cannot read the database data-junk/lineage.duckdb (<*>): " + DAMAGED),
    Case("funnel-damaged", "funnel of a lineage.duckdb with a damaged block", ["funnel", "--root", "data-damaged"], "rs5m funnel: error: cannot read the database data-damaged/lineage.duckdb (Corrupt database file<*>): " + DAMAGED),
    Case("funnel-no-counts", "funnel of a version with no counts yet", ["funnel", "--root", "data"], "rs5m funnel: error: no counts for version 'v1'<*>"),
    Case("funnel-reasons-version", "funnel --reasons of an unknown version", ["funnel", "--root", "data", "--reasons", "--version", "nope"], "rs5m funnel: error: unknown version 'nope' under data (known: v1)"),
    Case("funnel-keywords-version", "funnel --keywords of an unknown version", ["funnel", "--root", "data", "--keywords", "--version", "nope"], "rs5m funnel: error: unknown version 'nope' under data (known: v1)"),
    Case("funnel-format", "unknown --format", ["funnel", "--format", "xml"], "rs5m funnel: error: argument --format: invalid choice: 'xml' (choose from <*>) (see `rs5m funnel --help`)"),
    Case("funnel-two-tables", "two tables at once", ["funnel", "--reasons", "--keywords"], "rs5m funnel: error: argument --keywords: not allowed with argument --reasons (see `rs5m funnel --help`)"),
    # why
    Case("why-no-uid", "why without a uid", ["why"], "rs5m why: error: the following arguments are required: uid (see `rs5m why --help`)"),
    Case("why-no-db", "why in a root without a lineage database", ["why", "sbu-0", "--root", "nowhere"], "rs5m why: error: no lineage database at nowhere/lineage.duckdb; run `rs5m build` first"),
    Case("why-junk", "why with a lineage.duckdb of random bytes", ["why", "sbu-0", "--root", "data-junk"], "rs5m why: error: cannot read the database data-junk/lineage.duckdb (<*>): " + DAMAGED),
    Case("why-bad-uid", "a uid that is not an rs5m uid", ["why", "hello", "--root", "data"], "rs5m why: error: 'hello' is not an rs5m uid (expected '<source>-<hash>', source in [<*>])"),
    Case("why-unknown-version", "why in a version that does not exist", ["why", "sbu-0", "--root", "data", "--version", "nope"], "rs5m why: error: no version folder data/versions/nope"),
    # versions
    Case("versions-no-action", "versions without list/diff", ["versions"], "rs5m versions: error: the following arguments are required: action (see `rs5m versions --help`)"),
    Case("versions-junk", "versions list with a lineage.duckdb of random bytes", ["versions", "list", "--root", "data-junk"], "rs5m versions: error: cannot read the database data-junk/lineage.duckdb (<*>): " + DAMAGED),
    Case("versions-unknown", "diff of an unknown version", ["versions", "diff", "a", "v1", "--root", "data"], "rs5m versions: error: unknown version 'a' under data (known: v1)"),
    Case("versions-show-negative", "diff --show below 0", ["versions", "diff", "v1", "v1", "--root", "data", "--show", "-1"], "rs5m versions: error: --show must be >= 0, got -1"),
    Case("versions-show-text", "diff --show that is not a number", ["versions", "diff", "v1", "v1", "--show", "all"], "rs5m versions diff: error: argument --show: invalid int value: 'all' (see `rs5m versions diff --help`)"),
    # rate
    Case("rate-port-low", "rate --port below 1024", ["rate", "--root", "data", "--port", "80"], "rs5m rate: error: --port 80 is outside 1024..65535"),
    Case("rate-port-high", "rate --port above 65535", ["rate", "--root", "data", "--port", "70000"], "rs5m rate: error: --port 70000 is outside 1024..65535"),
    Case("rate-port-text", "rate --port that is not a number", ["rate", "--port", "web"], "rs5m rate: error: argument --port: invalid int value: 'web' (see `rs5m rate --help`)"),
    Case("rate-port-busy", "rate --port already in use", ["rate", "--root", "data", "--port", "{busy}"], "rs5m rate: error: port {busy} on 127.0.0.1 is in use; pass another --port"),
    Case("rate-sample", "rate --sample below 1", ["rate", "--root", "data", "--sample", "-5"], "rs5m rate: error: sample size must be at least 1, not -5"),
    Case("rate-source", "rate --source the version does not have", ["rate", "--root", "data", "--source", "nosuch"], "rs5m rate: error: unknown source 'nosuch' for pub11 in version v1 (known: none)"),
    Case("rate-report-junk", "rate --report with a lineage.duckdb of random bytes", ["rate", "--root", "data-junk", "--report"], "rs5m rate: error: cannot read the database data-junk/lineage.duckdb (<*>): " + DAMAGED),
    Case("rate-report-version", "rate --report of an unknown version", ["rate", "--root", "data", "--report", "--version", "nope"], "rs5m rate: error: unknown version 'nope' under data/versions (known: v1)"),
    Case("rate-report-none", "rate --report before any rating", ["rate", "--root", "data", "--report"], "rs5m rate: error: no ratings for version 'v1' yet (no data/ratings.duckdb)"),
    Case("rate-report-ratings-junk", "rate --report with a ratings.duckdb of random bytes", ["rate", "--root", "data-ratings", "--report"], "rs5m rate: error: cannot read the database data-ratings/ratings.duckdb (<*>): " + DAMAGED),
    # loader-check, sample
    Case("loader-no-db", "loader-check of a root without a lineage database", ["loader-check", "--root", "nowhere"], "rs5m loader-check: error: no lineage database at nowhere/lineage.duckdb; run `rs5m build` first"),
    Case("loader-split", "loader-check --split test", ["loader-check", "--split", "test"], "rs5m loader-check: error: argument --split: invalid choice: 'test' (choose from <*>) (see `rs5m loader-check --help`)"),
    Case("sample-no-out", "sample without --out", ["sample"], "rs5m sample: error: the following arguments are required: --out (see `rs5m sample --help`)"),
    Case("sample-out-file", "sample --out that is a file", ["sample", "--out", "afile"], "rs5m sample: error: file exists: afile"),
    Case("sample-port", "sample --port above 65535", ["sample", "--out", "world2", "--port", "70000"], "rs5m sample: error: --port 70000 is outside 1024..65535"),
    Case("sample-seed", "sample --seed that is not a number", ["sample", "--out", "world2", "--seed", "x"], "rs5m sample: error: argument --seed: invalid int value: 'x' (see `rs5m sample --help`)"),
    # evaluate, train, finetune-captioner (checkpoints)
    Case("eval-config-missing", "evaluate --config that does not exist", ["evaluate", "--config", "missing.yaml"], "rs5m evaluate: error: <*>missing.yaml<*>"),
    Case("eval-real-data", "evaluate --real-data without --demo", ["evaluate", "--config", "missing.yaml", "--real-data", "adir"], "rs5m evaluate: error: --real-data only goes with --demo"),
    Case("eval-model", "evaluate --model that open_clip does not know", ["evaluate", "--demo", "demo", "--model", "nosuch", "--output-dir", "eval-out"], "rs5m evaluate: error: unknown open_clip model 'nosuch' (see open_clip.list_models())"),
    Case("ckpt-text", "checkpoint that is a text file", ["evaluate", "--demo", "demo", "--checkpoint", "text.pt", "--output-dir", "eval-out"], "rs5m evaluate: error: <*>/text.pt: cannot read checkpoint: the file is a text file, not a PyTorch checkpoint (<*>)"),
    Case("ckpt-random", "checkpoint of random bytes", ["evaluate", "--demo", "demo", "--checkpoint", "random.pt", "--output-dir", "eval-out"], "rs5m evaluate: error: <*>/random.pt: cannot read checkpoint: the file is not a PyTorch checkpoint (damaged, or another format) (<*>)"),
    Case("ckpt-empty", "checkpoint that is an empty file", ["evaluate", "--demo", "demo", "--checkpoint", "empty.pt", "--output-dir", "eval-out"], "rs5m evaluate: error: <*>/empty.pt: cannot read checkpoint: the file is empty (EOFError)"),
    Case("ckpt-truncated", "checkpoint cut short", ["evaluate", "--demo", "demo", "--checkpoint", "truncated.pt", "--output-dir", "eval-out"], "rs5m evaluate: error: <*>/truncated.pt: cannot read checkpoint: the file is a zip archive (PyTorch's format) but cut short or damaged (<*>)"),
    Case("ckpt-folder", "checkpoint path that is a folder", ["evaluate", "--demo", "demo", "--checkpoint", "adir", "--output-dir", "eval-out"], "rs5m evaluate: error: checkpoint not found: <*>/adir (a folder)"),
    Case("ckpt-pretrained-text", "--pretrained weights file that is a text file", ["evaluate", "--demo", "demo", "--pretrained", "text.pt", "--output-dir", "eval-out"], "rs5m evaluate: error: text.pt: cannot read checkpoint: the file is a text file, not a PyTorch checkpoint (<*>)", in_flow=True),
    Case("train-config-missing", "train --config that does not exist", ["train", "--config", "missing.yaml"], "rs5m train: error: <*>missing.yaml<*>"),
    Case("finetune-config-missing", "finetune-captioner --config that does not exist", ["finetune-captioner", "--config", "missing.yaml"], "rs5m finetune-captioner: error: <*>missing.yaml<*>"),
]  # fmt: skip


@dataclass(frozen=True)
class FlowCase:
    """A bad input found inside a running build; ``test`` names the slow test that checks the line."""

    what: str
    shows: str
    test: str
    status: int = 2


FLOW_CASES: list[FlowCase] = [
    FlowCase("parquet input with damaged data pages", "rs5m build: error: <input>: cannot read this laion2b file: Couldn't deserialize thrift<*>", "tests/cli/test_build_errors.py"),
    FlowCase("Ctrl-C during a build", "rs5m build: interrupted: version v1 is not complete; run `rs5m build` again with --version v1 to resume it (finished partitions are kept)", "tests/cli/test_build_interrupt.py", 130),
    FlowCase("a second Ctrl-C (or a stop that takes over 15 s)", "rs5m build: interrupted: version v1 is not complete; run `rs5m build` again with --version v1 to resume it (finished partitions are kept)", "tests/cli/test_build_interrupt.py", 130),
    FlowCase("scoring weights that cannot be fetched", "rs5m build: error: cannot load the scoring model 'convnext_xxlarge' (pretrained='laion2b_s34b_b82k_augreg_soup'): <*>; set scoring.model_name with scoring.pretrained (an open_clip tag or a local weights file) or scoring.checkpoint (a local state_dict) in the build config", "tests/pipeline/outlier/test_model_loading.py"),
    FlowCase("any other error inside the flow (a bug)", "rs5m build: error: internal error: <type>: <message> (traceback: <root>/logs/rs5m.log)", "tests/cli/test_errors.py", 1),
]  # fmt: skip


def match(pattern: str, line: str) -> bool:
    """Whether ``line`` is ``pattern`` with each ``<*>`` standing for any text."""
    parts = pattern.split("<*>")
    if len(parts) == 1:
        return line == pattern
    if not (line.startswith(parts[0]) and line.endswith(parts[-1])):
        return False
    pos, end = len(parts[0]), len(line) - len(parts[-1])
    for part in parts[1:-1]:
        found = line.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return pos <= end


def make_env(folder: Path) -> None:
    """Write every file the cases name into ``folder`` (their working directory)."""
    from rs5m.lineage import store as lineage

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inputs").mkdir(exist_ok=True)
    sbu = {"image_urls": ["http://example.com/a.jpg"], "captions": ["an aerial view of a field"]}
    (folder / "inputs" / "sbu.json").write_text(json.dumps(sbu), encoding="utf-8")
    world = {"version": "v1", "sources": [{"name": "sbu", "files": ["inputs/sbu.json"]}]}
    (folder / "world.yaml").write_text(yaml.safe_dump(world), encoding="utf-8")
    nomatch = {"version": "v1", "sources": [{"name": "sbu", "files": ["inputs/nomatch*.json"]}]}
    (folder / "nomatch.yaml").write_text(yaml.safe_dump(nomatch), encoding="utf-8")
    configs = {
        "filesdir.yaml": {"sources": [{"name": "sbu", "files": ["adir"]}]},
        "detector.yaml": {**world, "detector": "missing.pt"},
        "option.yaml": {
            "sources": [{"name": "sbu", "files": ["inputs/sbu.json"], "options": {"batch_rows": 0}}]
        },
        "twomissing.yaml": {
            "sources": [
                {"name": "sbu", "files": ["inputs/a.json"]},
                {"name": "redcaps", "files": ["inputs/b.json"]},
            ]
        },
    }
    for name, cfg in configs.items():
        (folder / name).write_text(yaml.safe_dump(cfg), encoding="utf-8")
    (folder / "list.yaml").write_text("- version: v1\n- sources: []\n", encoding="utf-8")
    (folder / "scalar.yaml").write_text("just words\n", encoding="utf-8")
    (folder / "broken.yaml").write_text("version: [v1\nsources:\n", encoding="utf-8")
    (folder / "empty.yaml").write_text("", encoding="utf-8")
    (folder / "extra.yaml").write_text(yaml.safe_dump({**world, "nope": 1}), encoding="utf-8")
    (folder / "afile").write_text("a file\n", encoding="utf-8")
    (folder / "adir").mkdir(exist_ok=True)
    rng = random.Random(17)
    junk = bytes(rng.randrange(256) for _ in range(20_000))
    (folder / "random.pt").write_bytes(junk)
    (folder / "text.pt").write_text("these are not weights\n", encoding="utf-8")
    (folder / "empty.pt").write_bytes(b"")
    _truncated_checkpoint(folder / "truncated.pt")
    data = folder / "data"
    lineage.set_version_status(data / "lineage.duckdb", "v1", "complete", "0" * 64, str(data))
    (data / "versions" / "v1").mkdir(parents=True, exist_ok=True)
    (data / "versions" / "v1" / "config.json").write_text(yaml.safe_dump(world), encoding="utf-8")
    for name in ("data-junk", "data-damaged", "data-ratings"):
        shutil.rmtree(folder / name, ignore_errors=True)
        shutil.copytree(data, folder / name)
    (folder / "data-junk" / "lineage.duckdb").write_bytes(junk)
    damaged = bytearray((data / "lineage.duckdb").read_bytes())
    damaged[8192 : 8192 + 64] = bytes(b ^ 0xFF for b in damaged[8192 : 8192 + 64])
    (folder / "data-damaged" / "lineage.duckdb").write_bytes(bytes(damaged))
    (folder / "data-ratings" / "ratings.duckdb").write_bytes(junk)


def _truncated_checkpoint(path: Path) -> None:
    import torch

    torch.save({"w": torch.zeros(64, 64)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _cell(text: str) -> str:
    shown = text.replace("<*>", "…").replace("{port}", "PORT").replace("{busy}", "BUSY")
    return "``" + shown.replace("|", "\\|") + "``"


def render() -> str:
    """``docs/bad-inputs.md``: every case, its command and exit status, and the line it prints."""
    lines = [
        "# Bad inputs and what `rs5m` says",
        "",
        "Generated from `tests/cli/bad_inputs.py` (`python -m tests.cli.bad_inputs > docs/bad-inputs.md`);",
        "`tests/cli/test_bad_inputs.py` runs every row and fails when this page is out of date.",
        "",
        "Every error is one line on stderr, printed last: `rs5m <command>: error: <cause>`. Exit status 2 is",
        "bad input, 1 a bug (`internal error`, with where the traceback went), 130 a Ctrl-C. `--debug`",
        "prints the traceback (and Prefect's own log output) before the line; without it, a build's full log",
        "with every traceback is in `<root>/logs/rs5m.log`. A message with several lines (every input",
        "problem a build's pre-flight found) is joined with `; `; one longer than 1,000 characters is cut,",
        "and `--debug` prints it whole. Paths on the command line are shown as typed; paths in a config are",
        "resolved against the config's folder and shown absolute (`…/`). `…` is text that depends on the",
        "machine or a library, `PORT` a closed port, `BUSY` a port that never answers. The build checks its",
        "config, data root, inputs (`rs5m inputs check`), lineage database and Dask scheduler before Prefect",
        "or Dask start and before the version is created: none of the `rs5m build` rows below leaves a version.",
        "Prefect's own log lines may come before the line shown: a temporary API server's start when no",
        "server is configured, and, for the rows marked *in flow* (found only once the command's flow runs),",
        "that flow run's lines (start, the failed task, the failed run). `rs5m evaluate` checks the model",
        "name and checkpoint before its flow starts; a `--pretrained` weights file only open_clip can judge.",
        "",
        "| # | bad input | command | exit | what you see |",
        "|---|---|---|---|---|",
    ]
    for i, case in enumerate(CASES, 1):
        command = " ".join(["rs5m", *(a if a else "''" for a in case.argv)])
        what = case.what + (" *(in flow)*" if case.in_flow else "")
        lines.append(f"| {i} | {what} | {_cell(command)} | {case.status} | {_cell(case.shows)} |")
    lines += [
        "",
        "## Inside a running build",
        "",
        "These surface after Prefect and Dask have started; the CLI prints the cause as the last line, and",
        "Prefect's tracebacks go to the log file instead of the terminal. Checked by the slow tests named.",
        "",
        "| bad input | exit | what you see | test |",
        "|---|---|---|---|",
    ]
    for case in FLOW_CASES:
        lines.append(f"| {case.what} | {case.status} | {_cell(case.shows)} | `{case.test}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
