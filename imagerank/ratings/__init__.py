"""Ratings (floor 1, below the catalog): OpenSkill Plackett-Luce updates and predictions (:mod:`.openskill`), rating
priors from a learned scorer (:mod:`.priors`), the judge's fitted consistency
(:mod:`.consistency`), the top-k stability estimate (:mod:`.stability`) and a batch EP posterior over the
vote log (:mod:`.posterior`, an experiment for consistent judges).

``from imagerank import ratings as R`` gives the OpenSkill names: ``R.DEFAULT_MU``, ``R.rate_ranking``,
``R.ordinal`` ...; numpy and openskill only.
"""

from .openskill import (
    BETA,
    BETA_RANGE,
    DEFAULT_MU,
    DEFAULT_SIGMA,
    MODEL,
    Rated,
    expected_sigma_after,
    model_for,
    ordinal,
    predict_win_matrix,
    predict_win_pairs,
    rate_ranking,
)

__all__ = [
    "BETA",
    "BETA_RANGE",
    "DEFAULT_MU",
    "DEFAULT_SIGMA",
    "MODEL",
    "Rated",
    "expected_sigma_after",
    "model_for",
    "ordinal",
    "predict_win_matrix",
    "predict_win_pairs",
    "rate_ranking",
]
