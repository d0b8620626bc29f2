"""Measuring maps on held-out records: `report`, `heldout` (several held-out sets side by side), `plots`
and `compare` (two models or map versions)."""
