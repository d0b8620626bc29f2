"""`python -m calibration` — the `calibrate` admin CLI (calibration/cli/)."""

import sys

from calibration.cli import main

sys.exit(main())
