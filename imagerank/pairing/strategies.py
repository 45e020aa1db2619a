"""The baseline strategies: ``random`` and ``spec`` (the seed's sigma-weighted heuristic).

A strategy is a function ``(ctx: PairContext, n: int) -> list[tuple[int, int]]`` returning up to ``n`` candidate
pairs as *pool indices* (see :mod:`.registry`).
"""

from __future__ import annotations

import numpy as np

from .pool import PairContext

__all__ = ["random_pairs", "spec_pairs", "weighted_choice"]


def weighted_choice(rng: np.random.Generator, weights: np.ndarray) -> int:
    """Index drawn with probability proportional to ``weights`` (non-negative); O(N) via cumulative sums."""
    cum = np.cumsum(weights)
    total = cum[-1]
    if not np.isfinite(total) or total <= 0:
        return int(rng.integers(len(weights)))
    return int(np.searchsorted(cum, rng.random() * total, side="right").clip(0, len(weights) - 1))


def random_pairs(ctx: PairContext, n: int) -> list[tuple[int, int]]:
    """Two distinct images uniformly at random, ``n`` times."""
    size = len(ctx.pool)
    out = []
    for _ in range(n):
        i, j = ctx.rng.choice(size, size=2, replace=False)
        out.append((int(i), int(j)))
    return out


def spec_pairs(ctx: PairContext, n: int) -> list[tuple[int, int]]:
    """The seed's sigma-weighted heuristic (baseline).

    First image: weight ``sigma * (1 + 1/(comparison_count + 1))``. Second image, among the others: weight
    ``sigma / (|mu1 - mu2| + 1)``. O(N) per pair.
    """
    pool = ctx.pool
    first_w = pool.sigma * (1.0 + 1.0 / (pool.count + 1.0))
    out = []
    for _ in range(n):
        i = weighted_choice(ctx.rng, first_w)
        second_w = pool.sigma / (np.abs(pool.mu - pool.mu[i]) + 1.0)
        second_w[i] = 0.0
        j = weighted_choice(ctx.rng, second_w)
        out.append((i, j))
    return out
