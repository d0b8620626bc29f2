"""`python -m calibration` — the `calibrate` admin CLI (calibration/cli.py)."""

import sys

from .cli import main

sys.exit(main())
