"""The `camsim` command line: parse with tyro, call the library, print. Nothing else lives here.

Each subcommand is a dataclass with a `run()` method (in `camsim.commands.*`); its field
docstrings are the `--help` text. Library errors meant for the user (`UserInputError`) become one
line on stderr and exit code 2; a failed render becomes exit code 1.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

# Registry: subcommand name -> "module:Class". Imported lazily so `camsim --help` stays fast and
# no command pays for another's imports.
COMMANDS: dict[str, str] = {
    "convert": "camsim.commands.convert:Convert",
    "preview": "camsim.commands.preview:Preview",
    "validate": "camsim.commands.validate:Validate",
    "info": "camsim.commands.info:Info",
    "render-animation": "camsim.commands.render:RenderAnimation",
    "create-datasets": "camsim.commands.datasets:CreateDatasets",
    "make-scenes": "camsim.commands.scenes:MakeScenes",
    "demo": "camsim.commands.demo:Demo",
    "emulate": "camsim.commands.emulate:Emulate",
    "interpolate": "camsim.commands.interpolate:Interpolate",
}


def _load(spec: str) -> type:
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _setup_logging() -> None:
    level = os.environ.get("CAMSIM_LOG", "INFO").upper()
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False, markup=False)],
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `camsim` console script (and `python -m camsim`)."""
    import tyro

    from camsim.errors import CamsimError, UserInputError

    args = list(sys.argv[1:] if argv is None else argv)
    # Only build the command that was asked for (tyro needs every class for the top-level help).
    chosen = {name: spec for name, spec in COMMANDS.items() if args and args[0] == name} or COMMANDS
    classes = {name: _load(spec) for name, spec in chosen.items()}
    cmd = tyro.extras.subcommand_cli_from_dict(classes, args=args, prog="camsim")
    _setup_logging()
    try:
        code = cmd.run()
    except UserInputError as exc:
        print(f"camsim: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except CamsimError as exc:
        print(f"camsim: failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("camsim: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(int(code or 0))
