"""`python -m calibration` — the `calibrate` admin CLI (calibration/cli.py)."""

import sys

from calibration.cli import main

sys.exit(main())
