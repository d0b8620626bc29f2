"""Turn raw verbalized confidence into calibrated confidence, and measure it.

`maps` holds the isotonic calibrator, map files and the versioned map store;
`metrics` the calibration metrics; `fitting` fits per-domain maps and review
thresholds; `report` builds held-out reports (the stated-only baseline beside
the fused pipeline) and `plots` draws them. Importing the package
is cheap: scikit-learn, scipy and matplotlib load only when used.
"""

from assistant.calibrated.isotonic import IsotonicCalibrator
from assistant.calibrated.maps import SCHEMA_VERSION, CalibrationMaps, DomainMap, load_maps, save_maps
from assistant.calibrated.mapstore import MapStore, map_store
from assistant.calibrated.metrics import (
    adaptive_calibration_error,
    aurc,
    auroc,
    brier_score,
    coverage,
    expected_calibration_error,
    maximum_calibration_error,
    overconfidence,
    reliability_bins,
    risk_coverage_curve,
    selective_risk,
)
from assistant.core.domains import MAP_DOMAINS
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
    "MAP_DOMAINS",
    "SCHEMA_VERSION",
    "CalibrationMaps",
    "DomainMap",
    "IsotonicCalibrator",
    "MapStore",
    "map_store",
    "load_maps",
    "save_maps",
    "fit_maps",
    "review_threshold",
    "cross_validated_predictions",
    "describe_sources",
    "build_report",
    "format_report",
    "format_maps_summary",
    "calibrated_confidences",
    "write_plots",
    "expected_calibration_error",
    "adaptive_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "auroc",
    "aurc",
    "risk_coverage_curve",
    "overconfidence",
    "reliability_bins",
    "selective_risk",
    "coverage",
]
