"""Plots (floor 6, matplotlib figures): rankings (:mod:`.ranking`), features (:mod:`.features`), culls
(:mod:`.cull`) and auto-pick candidates (:mod:`.autopick`)."""

from .autopick import candidate_grid
from .cull import bucket_grid
from .features import (
    duplicate_groups_grid,
    feature_map_plot,
    quality_distributions,
    quality_extremes,
    thumbnail_grid,
)
from .ranking import (
    comparisons_histogram,
    decision_time_histogram,
    left_right_win_rate,
    mu_sigma_scatter,
    side_bias,
    topk_overlap_over_time,
    topk_overlap_series,
)

__all__ = [
    "bucket_grid",
    "candidate_grid",
    "comparisons_histogram",
    "decision_time_histogram",
    "duplicate_groups_grid",
    "feature_map_plot",
    "left_right_win_rate",
    "mu_sigma_scatter",
    "quality_distributions",
    "quality_extremes",
    "side_bias",
    "thumbnail_grid",
    "topk_overlap_over_time",
    "topk_overlap_series",
]
