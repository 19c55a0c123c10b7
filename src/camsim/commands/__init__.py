"""CLI subcommands: one dataclass with a run() method each; field docstrings are the --help text."""
