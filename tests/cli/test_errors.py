# ruff: noqa: E501  (a table of messages, one per line)
"""One line per error, printed last; the traceback in the log file or, with ``--debug``, on the terminal
(issue #17 item 14)."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

import pytest
from pydantic import BaseModel

import cli.commands.funnel as funnel_command
from cli import logs
from cli.errors import CliError, describe, exit_status
from cli.main import main
from tests.cli.bad_inputs import FLOW_CASES, match


def _fail_with(exc: BaseException, log: Path | None = None):  # noqa: ANN202
    def run(args: argparse.Namespace) -> int:
        if log is not None:
            logs.configure(log)  # as a command that knows its data root does (prefect_env)
        try:
            raise RuntimeError("the cause's cause")
        except RuntimeError as inner:
            raise exc from inner

    return run


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip("\n").splitlines()


def test_a_bug_is_one_line_with_where_the_traceback_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "rs5m.log"
    monkeypatch.setattr(funnel_command, "run", _fail_with(TypeError("boom\nsecond line"), log))
    assert main(["funnel"]) == 1
    lines = _err_lines(capsys)
    assert lines == [f"rs5m funnel: error: internal error: TypeError: boom; second line (traceback: {log})"]
    pattern = FLOW_CASES[-1].shows.replace("<type>: <message>", "<*>").replace("<root>/logs/rs5m.log", "<*>")
    assert match(pattern.replace("rs5m build", "rs5m funnel"), lines[0])
    text = log.read_text(encoding="utf-8")
    assert "rs5m funnel: the error below ended the command" in text
    assert "Traceback" in text and "the cause's cause" in text and "TypeError: boom" in text


def test_without_a_log_file_it_says_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(funnel_command, "run", _fail_with(KeyError("k")))
    assert main(["funnel"]) == 1
    assert _err_lines(capsys) == [
        "rs5m funnel: error: internal error: KeyError: 'k' (rerun with --debug for the traceback)"
    ]


@pytest.mark.parametrize("argv", [["--debug", "funnel"], ["funnel", "--debug"]])
def test_debug_prints_the_traceback_then_the_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(funnel_command, "run", _fail_with(ValueError("bad input")))
    assert main(argv) == 2
    lines = _err_lines(capsys)
    assert lines[0] == "Traceback (most recent call last):" and "the cause's cause" in "\n".join(lines)
    assert lines[-1] == "rs5m funnel: error: bad input"


def test_ctrl_c_in_a_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(funnel_command, "run", _fail_with(KeyboardInterrupt()))
    assert main(["funnel"]) == 130
    assert _err_lines(capsys) == ["rs5m funnel: interrupted"]


class _Settings(BaseModel):
    port: int
    name: str


def _validation_error() -> Exception:
    try:
        _Settings(port="x")  # type: ignore[arg-type]
    except Exception as exc:
        return exc
    raise AssertionError("no validation error")


@pytest.mark.parametrize(
    ("exc", "line", "status"),
    [
        (ValueError("two\nlines"), "two; lines", 2),
        (ValueError("2 problems:\n  a: x\n  b:  y\n"), "2 problems: a: x; b: y", 2),
        (CliError("plain"), "plain", 2),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.yaml"), "no such file or directory: x.yaml", 2),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "adir"), "is a directory: adir", 2),
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied (the file was not reported)", 2),
        (
            PermissionError(errno.EACCES, "Permission denied", "/nope/file"),
            "permission denied: /nope/file (check its permissions (the data root must be writable by you))",
            2,
        ),
        (OSError(errno.EROFS, "Read-only file system", "/ro/x"), "read-only file system: /ro/x (the file system is read-only: choose a writable data root (--root))", 2),
        (OSError("Couldn't deserialize thrift: \x0f\nDeserializing page header failed."), "OSError: Couldn't deserialize thrift: \\x0f; Deserializing page header failed.", 2),
        (OSError(errno.ENOSPC, "No space left on device", "/d/f"), "no space left on device writing /d/f: free space there and rerun the same command (finished stages are not redone)", 2),
        (_validation_error(), "invalid _Settings: port: Input should be a valid integer, unable to parse string as an integer; name: Field required", 2),
        (RuntimeError(""), "RuntimeError", 1),
        (AttributeError("'list' object has no attribute 'get'"), "AttributeError: 'list' object has no attribute 'get'", 1),
    ],
)  # fmt: skip
def test_describe(exc: BaseException, line: str, status: int) -> None:
    assert describe(exc) == line
    assert exit_status(exc) == status


def test_a_long_message_is_cut() -> None:
    text = describe(ValueError("x" * 5000))
    assert len(text) == 1000 and text.endswith("x… (cut: --debug prints it whole)")
