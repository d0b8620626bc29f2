"""Fitting maps from graded records: `fit` (per-domain maps, cross-validation), `mapfit` (one map's knots),
`fusion_fit` (the combiner), `populations` (weights per population), `guarantee` (the review threshold)
and `sources` (which records a map rests on)."""
