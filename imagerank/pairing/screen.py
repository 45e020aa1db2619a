"""A boundary screen for a consistent judge, on a batch posterior: ``active``'s pick in the consistent-judge mode.

:func:`screen_pairs` chooses pairs from a Gaussian posterior that settles images as fast as the votes say (the
expectation-propagation posterior of :class:`imagerank.ratings.posterior.EPPosterior`), the way the
simulation's cheating ``gatekeeper`` reference does, but without knowing the true boundary:

1. The boundary t is the midpoint of the current #k and #k+1 by posterior mean.
2. Each pick screens the image with the largest ``pdf((mu - t) / sigma) * sigma^2 / sqrt(sigma^2 + 2 beta^2)``:
   probability mass at the boundary times how far one vote with per-image performance SD beta moves it (the
   gatekeeper's rule; for a probit observation this is the expected fall of the membership uncertainty to first
   order, cf. Frazier, Powell & Dayanik 2008, "A knowledge-gradient policy for sequential information
   collection", SIAM J. Control Optim. 47(5)).
3. Its opponent is the image whose skill is expected closest to the boundary, ``min sqrt((mu - t)^2 +
   sigma^2)`` over the images near t, not yet paired with it: the best available stand-in for "the true #k".
4. A share ``ctx.exploration`` of the picks screen an image drawn among the least compared, as ``active`` does.

Where it is used: :class:`imagerank.pairing.posterior_view.PosteriorView` hands it to ``Collection.next_pairs`` and
the panels' :class:`~imagerank.pairing.queue.PairQueue` in place of ``active`` while the judge is consistent (the EP
posterior's fitted beta / skill SD < 0.75, or ``Settings.posterior = "on"``), and the collection's leaderboard is
then the same posterior. In ``benchmarks/ranking_sim.py`` (``--strategies ep-adaptive``, the same functions; 5,000
images, rho 0.75, 3,000 votes, 5 seeds) that finds about 0.9 of the top-100 for a noiseless judge where ``active``
finds 0.78 (README, "Finding the true top-100"). With the fitted Thurstone and crowd judges alone it does worse
than ``active`` (0.64 / 0.38 against 0.67 / 0.47), so they stay on ``active``.

Cost per call: O(N) numpy (a partition, an exp and two ``argpartition``), 2.7 ms at 100,000 images
(``benchmarks/bench_pairing.py``).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from .pool import PairContext

__all__ = ["NEAR", "screen_pairs"]

#: How many images nearest the boundary may serve as opponents.
NEAR = 64


def screen_pairs(ctx: PairContext, n: int, mu: np.ndarray, sigma: np.ndarray, beta: float) -> list[tuple[int, int]]:
    """Up to ``n`` screening duels (pool indices) at the top-k boundary of a batch posterior.

    Args:
        ctx: the pool (ids, counts), the session's RNG and seen pairs, ``topk``, ``exploration`` (0..1).
        n: pairs wanted.
        mu, sigma: (N,) float posterior means and SDs over the pool (OpenSkill units, sigma > 0).
        beta: the judge's per-image performance SD (OpenSkill units, >= 0): the fitted beta.

    Returns:
        Up to ``n`` pairs of pool indices, no image twice, no pair in ``ctx.seen``. Cost O(N) numpy.

    Raises:
        InvalidArgumentError: ``mu`` / ``sigma`` do not match the pool, or a sigma is not positive.
    """
    pool = ctx.pool
    size = len(pool)
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.shape != (size,) or sigma.shape != (size,):
        raise InvalidArgumentError(f"mu, sigma: expected two ({size},) arrays, got {mu.shape} and {sigma.shape}")
    if size < 2 or n <= 0:
        return []
    if not bool(np.all(sigma > 0)):
        raise InvalidArgumentError("sigma: expected every posterior SD > 0, got a zero, negative or NaN one")
    rng = ctx.rng
    k = int(min(max(ctx.topk, 1), size - 1))
    top = np.partition(-mu, [k - 1, k])
    t = -0.5 * (top[k - 1] + top[k])
    v = sigma * sigma
    d = mu - t
    # the score squared (same order, no square root): exp(-d^2 / v) v^2 / (v + 2 beta^2); 1 / (2 pi) drops out
    score = np.exp(-d * d / v) * (v * v) / (v + 2.0 * float(beta) ** 2)
    m = min(NEAR, size - 1)
    dist = d * d + v  # expected squared distance of the skill to t
    near = np.argpartition(dist, m - 1)[:m]
    near = near[np.argsort(dist[near])]
    n_cand = min(4 * n + 8, size)
    cand = np.argpartition(-score, n_cand - 1)[:n_cand] if n_cand < size else np.arange(size)
    order = cand[np.argsort(-score[cand])].tolist()
    share = min(max(float(ctx.exploration), 0.0), 1.0)
    n_cov = int(rng.binomial(n, share)) if share > 0 else 0
    if n_cov:
        least = np.flatnonzero(pool.count == pool.count.min())
        order = [int(least[rng.integers(least.shape[0])]) for _ in range(n_cov)] + order
    ids, seen = pool.ids, ctx.seen
    out: list[tuple[int, int]] = []
    used: set[int] = set()
    for i in order:
        if len(out) >= n:
            break
        if i in used:
            continue
        for j in near.tolist():
            x, y = int(ids[i]), int(ids[j])
            if j != i and j not in used and ((x, y) if x < y else (y, x)) not in seen:
                out.append((i, j))
                used.update((i, j))
                break
    return out
