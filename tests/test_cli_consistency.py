"""The command line fits the hand the same way everywhere: named positionals, case-insensitive choices,
--version, help for a bare `camsim`, one --workers default, and a README table that lists every command."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import typing
from pathlib import Path

import pytest

from camsim import __version__, cli

ROOT = Path(__file__).parent.parent


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(list(argv))
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def commands() -> list[tuple[str, ...]]:
    """Every leaf command line: `render-animation`, `convert img-to-npy`, `emulate spad`, ..."""
    out = []
    for name, (spec, _) in cli.COMMANDS.items():
        cls = cli._load(spec)
        if isinstance(cls, type):
            out.append((name,))
        else:
            out += [
                (name, cli.tyro_name(m))
                for m in typing.get_args(cls)
                if typing.get_args(m)[0] is not type(None)
            ]
    return out


def leaf_class(argv: tuple[str, ...]) -> type:
    cls = cli._load(cli.COMMANDS[argv[0]][0])
    if isinstance(cls, type):
        return cls
    return next(typing.get_args(m)[0] for m in typing.get_args(cls) if cli.tyro_name(m) == argv[1])


@pytest.mark.parametrize("argv", commands(), ids=" ".join)
def test_help_names_every_positional(argv):
    code, out, _ = run(*argv, "--help")
    assert code == 0
    usage = " ".join(out.split("\n\n")[0].split())
    positionals = re.sub(r"\[[^\[\]]*\]", "", re.sub(r"\[[^\[\]]*\]", "", usage))  # drop [options]
    assert "PATH" not in positionals and "STR" not in positionals, usage


def test_version_and_bare_camsim():
    assert run("--version") == (0, f"camsim {__version__}\n", "")
    code, out, _ = run()
    assert code == 0 and "usage: camsim" in out and all(name in out for name in cli.COMMANDS)


@pytest.mark.parametrize(
    "flag, value, canonical",
    [("--render-config.device-type", "OPTIX", "optix"), ("--render-config.exr-codec", "ZIP", "zip"),
     ("--render-config.file-format", "jpeg", "JPEG"), ("--sampling", "Random", "random")],
)  # fmt: skip
def test_choices_are_case_insensitive(flag, value, canonical, tmp_path):
    cls = leaf_class(("create-datasets",))
    assert cli._case_insensitive_choices([flag, value], cls) == [flag, canonical]
    assert cli._case_insensitive_choices([f"{flag}={value}"], cls) == [f"{flag}={canonical}"]
    # End to end: the value parses (the run then stops at the missing scenes folder, not at the choice).
    code, _, err = run("create-datasets", f"--scenes-dir={tmp_path / 'none'}", f"--datasets-dir={tmp_path}",
                       flag, value)  # fmt: skip
    assert code == 2 and "not found" in err and "invalid choice" not in err, err


def test_one_workers_default_across_commands():
    defaults = {}
    for argv in commands():
        for f in dataclasses.fields(leaf_class(argv)):
            if f.name == "workers":
                defaults[" ".join(argv)] = f.default
    assert len(defaults) >= 2 and set(defaults.values()) == {0}, defaults


def test_the_readme_table_lists_every_command():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `camsim ([a-z-]+)", readme, flags=re.M))
    assert listed == set(cli.COMMANDS)
