"""What the live chat needs to apply calibration maps: the map file format and store (`maps`, `mapstore`),
the combiner's scoring half (`fusion`, `questions`), a figure's range and its distance from the fitting
questions (`intervals`, `ood`, `support`), and the metrics the dashboard shows (`metrics`, `measures`).
Fitting them is `calibration/`, which sits above this package; nothing here imports it."""
