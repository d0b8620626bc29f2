"""The offline calibration tool (`calibrate`): it labels answers, fits maps and measures them.

`labelling/` makes questions and collects the model's graded answers as records, `fitting/` fits
per-domain maps (isotonic, or over fused signals) and their review thresholds, `measuring/`
reports them on held-out records, and `cli/` is the `calibrate` command. The map file format,
the map store and the metrics live in `assistant/calibrated/`, below this package, because the
live chat applies maps too; nothing in `assistant/` imports this package. Importing it is cheap:
scikit-learn, scipy and matplotlib load only when used.
"""

from calibration.fitting.fit import cross_validated_predictions, describe_sources, fit_maps
from calibration.fitting.guarantee import review_threshold
from calibration.measuring.plots import write_plots
from calibration.measuring.report import (
    build_report,
    calibrated_confidences,
    format_maps_summary,
    format_report,
)

__all__ = [
    "fit_maps",
    "review_threshold",
    "cross_validated_predictions",
    "describe_sources",
    "build_report",
    "format_report",
    "format_maps_summary",
    "calibrated_confidences",
    "write_plots",
]
