"""The judge's consistency, read from the vote log: fit beta, and "you agree with yourself N % of the time".

The maths is :mod:`imagerank.ratings.consistency`; this module reads the kept rated matches and the images' priors
and ratings from a catalog (a snapshot read beside the writer, never under the write lock). :class:`VoteLog`
stores a fitted beta with :meth:`~imagerank.catalog.votes.VoteLog.set_beta` (or together with new priors), and
the live prior (:class:`imagerank.training.prior.LivePrior`) refits it as votes come in.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .. import ratings as R
from ..ratings.consistency import fit_beta, self_agreement
from .db import Database
from .replay import stored_beta

__all__ = ["JudgeConsistency", "fit_log_beta", "judge_consistency"]

_MATCHES = ("SELECT m.id, e.image_id, e.rank FROM matches m JOIN match_entries e ON e.match_id=m.id "
            "WHERE m.undone=0 AND m.rated=1 ORDER BY m.id, e.rowid")
_VOTED = ("SELECT id, COALESCE(prior_mu, ?), COALESCE(prior_sigma, ?), mu FROM images "
          "WHERE id IN (SELECT DISTINCT image_id FROM match_entries)")


@dataclass(frozen=True)
class JudgeConsistency:
    """How consistent the judge is, as stored with the vote log.

    Attributes:
        beta: the performance SD the ratings use (OpenSkill units; openskill's default is 25/6 = 4.17).
        fitted_votes: kept rated matches it was fitted on (0: the default, never fitted).
        agreement: probability of the same answer on a judged pair shown again, 0.5..1 (NaN without a pair).
        pairs: decisive judged pairs ``agreement`` averages over (an N-way ranking gives its N(N-1)/2 pairs).
    """

    beta: float
    fitted_votes: int
    agreement: float
    pairs: int

    @property
    def header(self) -> str:
        """The one line a panel shows, e.g. ``"you agree with yourself 91 % of the time (312 pairs)"``."""
        if not self.pairs or math.isnan(self.agreement):
            return "self-agreement: no decisive votes yet"
        return f"you agree with yourself {100 * self.agreement:.0f} % of the time ({self.pairs:,} pairs)"

    def __str__(self) -> str:
        fitted = (f"fitted on {self.fitted_votes:,} votes" if self.fitted_votes
                  else "openskill's default, not fitted yet")
        return f"{self.header}; judge noise beta {self.beta:.2f} ({fitted}; default {R.BETA:.2f})"


def _log(db: Database) -> tuple[dict[int, int], np.ndarray, list[tuple[list[int], list[int]]]]:
    """(image id -> row, (V, 3) prior mu / prior sigma / mu per voted image, matches as (rows, ranks))."""
    images = db.snapshot_query(_VOTED, (R.DEFAULT_MU, R.DEFAULT_SIGMA))
    row = {int(r[0]): k for k, r in enumerate(images)}
    arr = np.array([tuple(r[1:]) for r in images], dtype=np.float64).reshape(-1, 3)
    matches = []
    for _, group in itertools.groupby(db.snapshot_query(_MATCHES), key=lambda r: r[0]):
        g = list(group)
        if all(int(e[1]) in row for e in g) and len(g) >= 2:
            matches.append(([row[int(e[1])] for e in g], [int(e[2]) for e in g]))
    return row, arr, matches


def fit_log_beta(db: Database) -> tuple[float, int]:
    """Fit beta to the kept rated matches from the stored priors (:func:`imagerank.ratings.consistency.fit_beta`).

    Returns:
        ``(beta, matches)``: the fitted beta (OpenSkill units; 25/6 with fewer than 20 decisive matches) and the
        number of matches it was fitted on. Nothing is written.
    """
    _, arr, matches = _log(db)
    if not matches:
        return R.BETA, 0
    return fit_beta(arr[:, 0], arr[:, 1], matches), len(matches)


def judge_consistency(db: Database) -> JudgeConsistency:
    """The stored beta and the judge's self-agreement on the pairs they judged, from the current ratings
    (:func:`imagerank.ratings.consistency.self_agreement`)."""
    beta = stored_beta(db)
    rows = db.snapshot_query("SELECT fitted_votes FROM rating_model WHERE id=1") if _has_model(db) else []
    _, arr, matches = _log(db)
    a: list[int] = []
    b: list[int] = []
    for idx, ranks in matches:
        for (i, ri), (j, rj) in itertools.combinations(zip(idx, ranks), 2):
            if ri != rj:
                a.append(i)
                b.append(j)
    mu = arr[:, 2] if arr.size else np.zeros(0)
    agreement = self_agreement(mu[a], mu[b], beta) if a else float("nan")
    return JudgeConsistency(beta, int(rows[0][0]) if rows else 0, agreement, len(a))


def _has_model(db: Database) -> bool:
    return bool(db.snapshot_query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='rating_model'"))
