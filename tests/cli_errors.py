"""The CLI's bad-input contract, checked in-process: exit code 2 and exactly one `camsim: error:` line."""

from __future__ import annotations

import pytest

from camsim.cli import main


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    """Run `camsim argv...`; assert it exits 2 with one error line on stderr, and return that line."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("camsim: error:"), err
    return err[0]
