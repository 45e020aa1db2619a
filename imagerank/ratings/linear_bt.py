"""A linear Bradley-Terry ranker of image features: the scorer the taste prior
(:func:`imagerank.ratings.priors.bt_prior`) and the training package fit on the vote
log (Bradley & Terry 1952, with a ridge penalty; scipy's L-BFGS-B)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, NoVotesError

__all__ = ["LinearBT", "fit_linear_bt"]


@dataclass
class LinearBT:
    """A fitted linear Bradley-Terry scorer: ``score(X) = ((X - mean) / std) @ w``.

    Attributes:
        w: (D,) float64 weights on standardised features.
        mean, std: (D,) float64 standardisation fitted on the training features.
        l2: the ridge penalty used.
        n_pairs: number of pairwise outcomes fitted.
    """

    w: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    l2: float
    n_pairs: int

    def score(self, X: np.ndarray) -> np.ndarray:
        """(N,) float64 utilities (log-odds scale: a difference of 1 means P(win) = 0.73)."""
        return ((np.asarray(X, dtype=np.float64) - self.mean) / self.std) @ self.w

    def to_dict(self) -> dict[str, Any]:
        return {"w": self.w.tolist(), "mean": self.mean.tolist(), "std": self.std.tolist(), "l2": self.l2,
                "n_pairs": self.n_pairs}


def fit_linear_bt(
    X: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = 1.0,
    max_iter: int = 200,
    w0: np.ndarray | None = None,
) -> LinearBT:
    """Fit a ridge-regularised linear Bradley-Terry model by L-BFGS (scipy), in milliseconds for D <= 1024.

    Args:
        X: (N, D) features of all images (rows indexed by ``a`` / ``b``).
        a, b: (M,) int row indices of the two sides of each outcome.
        y: (M,) float outcome for ``a``: 1 win, 0 loss, 0.5 draw.
        l2: ridge penalty on ``w`` (sum of squares times l2 / 2), in units of pairs.
        w0: warm start (D,), e.g. the previous fit.

    Returns:
        A :class:`LinearBT`.

    Raises:
        NoVotesError: no outcomes (M == 0).
        InvalidArgumentError: shapes disagree.
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    X = np.asarray(X, dtype=np.float64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=np.float64)
    if a.size == 0:
        raise NoVotesError("no pairwise outcomes to fit a ranker on; vote first")
    if not (a.shape == b.shape == y.shape):
        raise InvalidArgumentError(f"a, b, y: expected equal shapes, got {a.shape}, {b.shape}, {y.shape}")
    mean = X.mean(0)
    std = X.std(0)
    std[std < 1e-12] = 1.0
    Z = (X - mean) / std
    D = Z[a] - Z[b]  # (M, D)

    def f(w: np.ndarray) -> tuple[float, np.ndarray]:
        d = D @ w
        nll = -(y * log_expit(d) + (1 - y) * log_expit(-d)).sum()
        grad = D.T @ (expit(d) - y) + l2 * w
        return float(nll + 0.5 * l2 * w @ w), grad

    start = np.zeros(Z.shape[1]) if w0 is None else np.asarray(w0, dtype=np.float64)
    res = minimize(f, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return LinearBT(np.asarray(res.x), mean, std, float(l2), int(a.size))
