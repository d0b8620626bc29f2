"""Tests for assistant/core/errors.py: `run_cli`, the wrapper every CLI uses to turn errors into an exit status."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from assistant.core.errors import DataError, MapError, run_cli

ENOSPC = OSError(errno.ENOSPC, "No space left on device", "out.jsonl")


def raising(exc):
    def command():
        raise exc

    return command


@pytest.mark.parametrize(
    "command, options, status, stderr",
    [
        (lambda: None, {}, 0, ""),
        (lambda: 3, {}, 3, ""),
        (raising(DataError("data.jsonl:2: bad")), {}, 2, "error: data.jsonl:2: bad\n"),
        (raising(MapError("no map")), {"os_errors": True}, 2, "error: no map\n"),
        (raising(KeyboardInterrupt()), {"interrupted": "interrupted"}, 130, "interrupted\n"),
        (raising(ENOSPC), {"os_errors": True}, 2, "error: out.jsonl: No space left on device\n"),
        (raising(OSError("odd")), {"os_errors": True}, 2, "error: odd\n"),
    ],
)
def test_run_cli_exit_status_and_message(capsys, command, options, status, stderr):
    assert run_cli(command, **options) == status
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", stderr)


@pytest.mark.parametrize(
    "exc, options",
    [
        (KeyboardInterrupt(), {}),  # no `interrupted` line: Ctrl-C is not this CLI's to report
        (ENOSPC, {}),  # no `os_errors`: an OSError is unexpected here
        (BrokenPipeError(), {"interrupted": "interrupted"}),
        (ValueError("a bug"), {"interrupted": "x", "os_errors": True}),  # a bug keeps its traceback
    ],
)
def test_run_cli_lets_other_errors_through(capsys, exc, options):
    with pytest.raises(type(exc)):
        run_cli(raising(exc), **options)
    assert capsys.readouterr().err == ""


def test_run_cli_broken_pipe_is_silent_status_1(tmp_path, monkeypatch):
    # run_cli points stdout's file descriptor at /dev/null; give it a throwaway descriptor to do that to.
    fd = os.open(tmp_path / "stdout", os.O_WRONLY | os.O_CREAT)
    monkeypatch.setattr(sys, "stdout", os.fdopen(fd, "w"))
    try:
        assert run_cli(raising(BrokenPipeError()), os_errors=True) == 1
        assert os.path.samestat(os.fstat(fd), os.stat(os.devnull))
    finally:
        sys.stdout.close()
