"""The `calibrate` command line: `parser` reads the flags and dispatches, `commands` does each subcommand.

`main` is the console script (`calibrate`) and `python -m calibration`.
"""

from calibration.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
