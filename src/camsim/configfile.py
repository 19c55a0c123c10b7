"""A command's options in a YAML file: `--config FILE` reads one, `--print-config` writes one.

The file is a mapping of the command's fields, nested configs as nested mappings::

    scenes_dir: scenes
    datasets_dir: datasets
    render_config: {width: 320, height: 240, depths: true}
    spad: {flux: 2.0e6}

`args_from_file` turns it into the command-line flags that say the same (`--render-config.width 320`),
so tyro parses and checks the values exactly as it does typed flags, and flags after them win. Relative
paths in the file are relative to the file's folder. `to_yaml` writes the full configuration of a command
(every field, defaults included) in that form; `to_plain` is the same as JSON-able data.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from collections.abc import Iterator
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Union

from camsim.errors import UserInputError

OWN_FIELDS = ("config", "print_config")
"""The fields that name or print the file itself: never written into one, refused inside one."""


@dataclasses.dataclass(frozen=True)
class _Field:
    """One command-line option of a (nested) dataclass field."""

    key: str  # dotted field path, as in the file: render_config.width
    flag: str  # --render-config.width
    hint: Any  # the type, Annotated and Optional taken off
    optional: bool  # None is allowed
    has_default: bool


def _omit_marker() -> object:
    import tyro

    return typing.get_args(tyro.conf.OmitArgPrefixes[int])[1]


def _strip(hint: Any) -> tuple[Any, tuple[Any, ...], bool]:
    """(the type without Annotated and None, the Annotated extras, None allowed)."""
    extras: tuple[Any, ...] = ()
    while typing.get_origin(hint) is Annotated:
        extras += typing.get_args(hint)[1:]
        hint = typing.get_args(hint)[0]
    optional = False
    if typing.get_origin(hint) in (Union, UnionType):
        members = [m for m in typing.get_args(hint) if m is not NoneType]
        optional = len(members) < len(typing.get_args(hint))
        if len(members) == 1:
            hint, more, _ = _strip(members[0])
            extras += more
    return hint, extras, optional


def _name(field: dataclasses.Field[Any], extras: tuple[Any, ...]) -> str:
    for e in extras:  # tyro.conf.arg(name=...)
        name = getattr(e, "name", None)
        if isinstance(name, str) and type(e).__name__ == "_ArgConfig":
            return name
    return field.name.replace("_", "-")


def _fields(
    cls: type, key: str = "", flag: str = "", omit: bool = False
) -> Iterator[tuple[_Field, type | None]]:
    """Every option of `cls` (nested dataclasses as (field, their class) before their own options)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    marker = _omit_marker()
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint, extras, optional = _strip(hints[f.name])
        name = _name(f, extras)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        this = _Field(f"{key}{f.name}", f"--{flag}{name}", hint, optional, has_default)
        nested = hint if dataclasses.is_dataclass(hint) and isinstance(hint, type) else None
        yield this, nested
        if nested is not None:
            inner_omit = omit or marker in extras
            yield from _fields(nested, f"{this.key}.", "" if inner_omit else f"{flag}{name}.", inner_omit)


@functools.lru_cache(maxsize=32)
def _options(cls: type) -> dict[str, tuple[_Field, type | None]]:
    return {f.key: (f, nested) for f, nested in _fields(cls)}


def _is_path(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Path)


def _sequence(hint: Any) -> tuple[bool, Any]:
    """(a tuple/list field, its element type when one type)."""
    origin = typing.get_origin(hint)
    if origin not in (tuple, list, set, frozenset):
        return False, None
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    element = args[0] if args and all(a == args[0] for a in args) else None
    return True, (_strip(element)[0] if element is not None else None)


def _text(value: Any, path_type: bool, folder: Path) -> str:
    if path_type and str(value):
        return str(folder / Path(str(value)).expanduser())  # an absolute path stays as it is
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def reads_config_file(cls: object) -> bool:
    """A command that reads `--config FILE`: a dataclass with a `config: Path | None` field."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return False
    hints = typing.get_type_hints(cls, include_extras=True)
    return any(f.name == "config" and _is_path(_strip(hints[f.name])[0]) for f in dataclasses.fields(cls))


def load_mapping(path: Path) -> dict[str, Any]:
    """The YAML file's top-level mapping; a missing file, bad YAML or another shape is a UserInputError."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot read --config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserInputError(f"--config {path} is not a text file (UTF-8)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserInputError(f"--config {path}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserInputError(
            f"--config {path} must hold a mapping of options (like `render_config: {{width: 320}}`), "
            f"got {type(data).__name__}"
        )
    return data


def args_from_file(path: Path | str, cls: type) -> list[str]:
    """The command-line flags that the YAML file `path` stands for, as options of the dataclass `cls`.

    Unknown keys, values of the wrong shape (a list for one value, a mapping for a non-config) and the
    file's own options (`config`, `print_config`) are a UserInputError naming the key and the file."""
    path = Path(path)
    folder = path.expanduser().absolute().parent
    options = _options(cls)
    args: list[str] = []

    def bad(key: str, why: str) -> UserInputError:
        return UserInputError(f"--config {path}: {key}: {why}")

    def walk(mapping: dict[Any, Any], prefix: str) -> None:
        for raw_key, value in mapping.items():
            if not isinstance(raw_key, str):
                raise bad(f"{prefix}{raw_key!r}", "option names are strings")
            key = prefix + raw_key.replace("-", "_")
            if key in OWN_FIELDS:
                raise bad(key, "cannot be set inside a config file")
            if key not in options:
                raise bad(f"{prefix}{raw_key}", f"no such option of this command{_suggest(key, options)}")
            field, nested = options[key]
            if nested is not None:
                if value is None and field.optional:
                    args.extend([field.flag, "None"])
                elif not isinstance(value, dict):
                    raise bad(key, f"is a group of options: write a mapping, got {value!r}")
                else:
                    walk(value, f"{key}.")
                continue
            args.extend(_flag(field, value, folder, bad))

    walk(load_mapping(path), "")
    return args


def _suggest(key: str, options: dict[str, Any]) -> str:
    """' (did you mean render_config.width?)': a close key, or the same name in another group."""
    names = [k for k in options if k not in OWN_FIELDS]
    close = difflib.get_close_matches(key, names, n=1)
    if not close:
        last = key.rpartition(".")[2]
        close = [k for k in names if k.rpartition(".")[2] == last][:1]
    return f" (did you mean {close[0]}?)" if close else ""


def _flag(field: _Field, value: Any, folder: Path, bad: Any) -> list[str]:
    if isinstance(value, dict):
        raise bad(field.key, f"takes a value, not a mapping: {value!r}")
    if value is None:
        if not field.optional:
            raise bad(field.key, "cannot be null")
        return [field.flag, "None"]
    if field.hint is bool and not field.optional and field.has_default:
        if not isinstance(value, bool):
            raise bad(field.key, f"must be true or false, got {value!r}")
        return [field.flag if value else _no_flag(field.flag)]
    many, element = _sequence(field.hint)
    if many:
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, (list, dict)) or v is None for v in values):
            raise bad(field.key, f"must be a list of values, got {value!r}")
        return [field.flag, *(_text(v, _is_path(element), folder) for v in values)]
    if isinstance(value, list):
        raise bad(field.key, f"takes one value, got a list: {value!r}")
    return [f"{field.flag}={_text(value, _is_path(field.hint), folder)}"]


def _no_flag(flag: str) -> str:
    """--overwrite -> --no-overwrite, --render-config.depths -> --render-config.no-depths (tyro puts `no-`
    on the last part)."""
    head, dot, last = flag[2:].rpartition(".")
    return f"--{head}{dot}no-{last}"


# ------------------------------------------------------------------------------------------- writing


def to_plain(instance: Any) -> dict[str, Any]:
    """Every option of a command instance as JSON-able data (nested configs as dicts, paths as strings,
    tuples as lists), without the file's own options (`config`, `print_config`)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (tuple, list, set, frozenset)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    out = plain(instance)
    for name in OWN_FIELDS:
        out.pop(name, None)
    return out


def to_yaml(instance: Any) -> str:
    """The full configuration of a command instance as YAML that `--config` reads back to the same
    instance (every field, defaults included; `config` and `print_config` left out)."""
    import yaml

    from camsim import __version__

    body = yaml.safe_dump(to_plain(instance), sort_keys=False, default_flow_style=False, allow_unicode=True)
    return (
        f"# camsim {__version__}: the full configuration (use it with --config FILE; flags given on the\n"
        "# command line override it). Relative paths are relative to this file's folder.\n" + body
    )


__all__ = ["OWN_FIELDS", "args_from_file", "load_mapping", "reads_config_file", "to_plain", "to_yaml"]
