"""Run `camsim ...` in this process, as the console script would, for tests of the command line."""

from __future__ import annotations

import contextlib
import io

from camsim.cli import main


def exit_code(*argv: object) -> int:
    """The exit code of `camsim ARGV` (output goes where it goes)."""
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def run_ok(*argv: object) -> None:
    """Run `camsim ARGV` quietly; fail with its stderr unless it exits 0."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = exit_code(*argv)
    assert code == 0, err.getvalue()
