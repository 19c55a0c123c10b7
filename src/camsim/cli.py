"""camsim: turn animated Blender scenes into sensor-realistic computer-vision datasets.

The command line: parse with tyro, call the library, print. Nothing else lives here.

Each subcommand is a dataclass with a `run()` method (in `camsim.commands.*`); its field
docstrings are the `--help` text. Library errors meant for the user (`UserInputError`) become one
line on stderr and exit code 2; a failed render becomes exit code 1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Union

# Registry: subcommand name -> "module:Class". Imported lazily so `camsim --help` stays fast and
# no command pays for another's imports.
COMMANDS: dict[str, tuple[str, str]] = {
    "make-scenes": ("camsim.commands.scenes:MakeScenes", "Build procedural animated demo scenes."),
    "render-animation": ("camsim.commands.render:RenderAnimation", "Render one scene with every ground truth."),
    "create-datasets": ("camsim.commands.create_datasets:CreateDatasets",
                        "Sample sequences from many scenes and render them with warm workers."),
    "interpolate": ("camsim.commands.interpolate:Interpolate", "Raise the frame rate using exact flow and depth."),
    "emulate": ("camsim.commands.emulate:Emulate", "Emulate a sensor: spad, rgb, events, imu, itof or lidar."),
    "preview": ("camsim.commands.preview:Preview", "Colorized ground-truth videos and a grid video."),
    "validate": ("camsim.commands.validate:Validate", "Check a dataset (and repair it with --purge)."),
    "info": ("camsim.commands.info:Info", "Summarise a dataset."),
    "convert": ("camsim.commands.convert:Convert", "Convert between per-frame files (IMG) and arrays (NPY)."),
    "export": ("camsim.commands.export:Export", "Export sequences for other tools: nerfstudio, COCO (pycocotools), BOP."),
    "demo": ("camsim.commands.demo:Demo", "Build demo scenes and render a small dataset with every extra."),
}  # fmt: skip


def tyro_name(member: object) -> str:
    """The subcommand name of an `Annotated[Cls, tyro.conf.subcommand(name)]` union member."""
    import typing

    cls, *extras = typing.get_args(member)
    for e in extras:
        name = getattr(e, "name", None)
        if isinstance(name, str):
            return name
    return str(cls)


def _load(spec: str) -> type:
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _setup_logging() -> None:
    level = os.environ.get("CAMSIM_LOG", "INFO").upper()
    from rich.console import Console
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[
            RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False)
        ],
    )


@contextlib.contextmanager
def _one_line_parse_errors(args: list[str]) -> Iterator[None]:
    """Turn tyro's error panel (bad flag, bad value, missing argument) into the one `camsim: error:` line
    and exit code 2 that every other bad input gets; `--help` output passes through untouched."""
    import io

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except SystemExit as exc:
        text = captured.getvalue()
        if exc.code in (0, None) or not text.strip():
            sys.stderr.write(text)
            raise
        sections: list[list[str]] = [[]]
        for raw in text.splitlines():
            line = raw.strip().strip("│╭╮╰╯").strip()
            if line and not line.strip("─-"):  # a rule between the panel's sections
                sections.append([])
            elif line.strip("─ "):
                sections[-1].append(line.strip("─ "))
        # tyro's panel: a title (in the top border, or a section of its own), the problem, then help text.
        sections = [s for s in sections if s]
        first = sections[0] if sections else []
        body = first[1:] if len(first) > 1 else sections[1] if len(sections) > 1 else first
        message = " ".join(" ".join(body).split()) or "invalid command line"
        command = f"camsim {args[0]}" if args and args[0] in COMMANDS else "camsim"
        print(f"camsim: error: {message} (see {command} --help)", file=sys.stderr)
        sys.exit(2)
    else:
        sys.stderr.write(captured.getvalue())


def _choices(cls: type, prefix: str = "", seen: frozenset[type] = frozenset()) -> dict[str, tuple[str, ...]]:
    """{flag name: string choices} of every Literal field of a command dataclass (nested configs included)."""
    import dataclasses
    import typing

    out: dict[str, tuple[str, ...]] = {}
    if not dataclasses.is_dataclass(cls) or cls in seen:
        return out
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        omit = "OmitArgPrefixes" in repr(hint)
        while typing.get_origin(hint) is Annotated:
            hint = typing.get_args(hint)[0]
        options = (
            [hint, *typing.get_args(hint)]
            if typing.get_origin(hint) is Union or "|" in repr(hint)
            else [hint]
        )
        for t in options:
            if typing.get_origin(t) is typing.Literal:
                values = tuple(v for v in typing.get_args(t) if isinstance(v, str))
                if values:
                    out[f"--{prefix}{f.name.replace('_', '-')}"] = values
            elif dataclasses.is_dataclass(t):
                inner = "" if omit else f"{prefix}{f.name.replace('_', '-')}."
                out.update(_choices(t, inner, seen | {cls}))  # type: ignore[arg-type]
    return out


def _case_insensitive_choices(args: list[str], cls: type) -> list[str]:
    """`--render-config.device-type OPTIX` and `--render-config.exr-codec=ZIP` mean the choice in its own case."""
    choices = _choices(cls)

    def canonical(flag: str, value: str) -> str:
        matches = [c for c in choices.get(flag, ()) if c.lower() == value.lower()]
        return matches[0] if len(matches) == 1 else value

    out = list(args)
    for i, a in enumerate(out):
        if a.startswith("--") and "=" in a:
            flag, _, value = a.partition("=")
            out[i] = f"{flag}={canonical(flag, value)}"
        elif i > 0 and out[i - 1] in choices and not a.startswith("--"):
            out[i] = canonical(out[i - 1], a)
    return out


def _expand_config(args: list[str], cls: type) -> list[str]:
    """`--config FILE` (or `--config=FILE`) -> the file's options as flags, placed before the command line's
    own so that those win (argparse keeps the last value); `--config FILE` stays, for the instance."""
    from camsim.configfile import args_from_file

    path = None
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif a.startswith("--config="):
            path = a.partition("=")[2]
    return [*args_from_file(path, cls), *args] if path is not None else args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `camsim` console script (and `python -m camsim`)."""
    try:
        _main(argv)
    except KeyboardInterrupt:  # Ctrl-C (SIGTERM too, once a Blender exists), while parsing or running
        print("camsim: interrupted", file=sys.stderr)
        sys.exit(130)


def _main(argv: Sequence[str] | None) -> None:
    import tyro

    from camsim import __version__
    from camsim.configfile import reads_config_file
    from camsim.errors import CamsimError, UserInputError

    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        print(f"camsim {__version__}")
        sys.exit(0)
    if not args:
        args = ["--help"]
    if args[0] == "create-datasets":  # its first Blender starts while the rest of the command line is read
        from camsim import prestart

        prestart.begin(args[1:])
    if args[0] in COMMANDS and reads_config_file(command := _load(COMMANDS[args[0]][0])):
        try:
            args = [args[0], *_expand_config(args[1:], command)]
        except UserInputError as exc:
            print(f"camsim: error: {exc}", file=sys.stderr)
            sys.exit(2)
    with _one_line_parse_errors(args):
        if args and args[0] in COMMANDS:  # build only the command asked for: fast start, no unrelated imports
            spec, text = COMMANDS[args[0]]
            cls = _load(spec)
            if isinstance(cls, type):
                args = [args[0], *_case_insensitive_choices(args[1:], cls)]
            else:  # a union of subcommands (convert, emulate, export)
                import typing

                members = {
                    tyro_name(m): typing.get_args(m)[0] for m in typing.get_args(cls) if typing.get_args(m)
                }
                if len(args) > 1 and args[1] in members:
                    args = [*args[:2], *_case_insensitive_choices(args[2:], members[args[1]])]
            cmd = tyro.cli(cls, args=args[1:], prog=f"camsim {args[0]}", description=text)
        else:
            options = tuple(
                Annotated[_load(spec), tyro.conf.subcommand(name, description=text)]  # type: ignore[valid-type]
                for name, (spec, text) in COMMANDS.items()
            )
            cmd = tyro.cli(Union[options], args=args, prog="camsim", description=__doc__.splitlines()[0])  # type: ignore[arg-type]  # noqa: UP007
    _setup_logging()
    try:
        code = cmd.run()
    except UserInputError as exc:
        print(f"camsim: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except CamsimError as exc:
        print(f"camsim: failed: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(int(code or 0))
