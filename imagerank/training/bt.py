"""Bradley-Terry and Plackett-Luce losses and a fast linear Bradley-Terry fit.

Shared by the Lightning ranker (:mod:`imagerank.training.ranker`) and the learned prior of the active pairing
strategy (which refits every few hundred votes, so it needs a fit that takes milliseconds, not a Trainer).

Model: an image with feature vector x has utility s(x); P(a beats b) = sigmoid(s_a - s_b) (Bradley & Terry 1952).
A draw counts as half a win each way (Rao & Kupper's tie model is not used: it needs a tie parameter the votes
rarely pin down). An N-way ranking uses the Plackett-Luce likelihood (Plackett 1975, Luce 1959):
P(order) = prod_k exp(s_k) / sum_{j >= k} exp(s_j).

Torch is imported lazily by the torch losses; :func:`fit_linear_bt` is numpy + scipy only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ratings.priors import LinearBT, fit_linear_bt

if TYPE_CHECKING:
    import torch

__all__ = [
    "LinearBT",
    "bradley_terry_loss",
    "fit_linear_bt",
    "pairwise_arrays",
    "plackett_luce_loss",
    "plackett_luce_ranks_loss",
]


def bradley_terry_loss(s_a: torch.Tensor, s_b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of pairwise outcomes.

    Args:
        s_a, s_b: (B,) float scores of the two sides.
        y: (B,) float outcome for side a: 1 win, 0 loss, 0.5 draw.

    Returns:
        Scalar tensor: mean of ``-(y log sigmoid(d) + (1-y) log sigmoid(-d))`` with ``d = s_a - s_b``.
    """
    import torch.nn.functional as F

    d = s_a - s_b
    return -(y * F.logsigmoid(d) + (1 - y) * F.logsigmoid(-d)).mean()


def plackett_luce_loss(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean negative log-likelihood of rankings under Plackett-Luce.

    Args:
        scores: (B, K) scores in ranked order, best first.
        mask: (B, K) bool, True where an entry exists (rankings shorter than K are right-padded).

    Returns:
        Scalar tensor: mean over rankings of ``-sum_k [s_k - logsumexp(s_k..s_K)]`` (last term is 0).
    """
    import torch

    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    neg_inf = torch.finfo(scores.dtype).min
    s = scores.masked_fill(~mask, neg_inf)
    # reverse cumulative logsumexp: lse_k = log sum_{j>=k} exp(s_j)
    lse = torch.logcumsumexp(s.flip(-1), dim=-1).flip(-1)
    terms = (s - lse).masked_fill(~mask, 0.0)
    return -(terms.sum(-1)).mean()


def plackett_luce_ranks_loss(scores: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of rankings with ties, in any entry order (Plackett-Luce, Breslow ties).

    Each entry i that is not in the worst rank group contributes ``s_i - log sum_{j: rank_j >= rank_i} exp(s_j)``
    (Breslow's approximation for tied groups, Breslow 1974); the worst group contributes nothing, since the order
    inside it is unknown. Without ties this equals :func:`plackett_luce_loss` on the entries sorted best first;
    a "best of N" choice (winner rank 0, the rest tied at rank 1) is the multinomial-logit choice likelihood
    ``s_w - logsumexp(s)``.

    Args:
        scores: (B, K) float scores, entries in any order.
        ranks: (B, K) int ranks, 0 best, ties share a rank.
        mask: (B, K) bool, True where an entry exists.

    Returns:
        Scalar tensor: the mean over rows of the negative log-likelihood (0 for rows with a single rank group).
        Cost O(B K^2).
    """
    import torch

    neg_inf = torch.finfo(scores.dtype).min
    r = ranks.masked_fill(~mask, -1)
    # (B, K_i, K_j): j competes with i when rank_j >= rank_i
    risk = (r[:, None, :] >= r[:, :, None]) & mask[:, None, :]
    lse = torch.logsumexp(scores[:, None, :].expand(-1, scores.shape[1], -1).masked_fill(~risk, neg_inf), dim=-1)
    worst = r.max(dim=-1, keepdim=True).values
    counted = mask & (r < worst)
    terms = (scores - lse).masked_fill(~counted, 0.0)
    return -(terms.sum(-1)).mean()


def pairwise_arrays(image_ids: list[int], ranks: list[int]) -> list[tuple[int, int, float]]:
    """Decompose one match into (a, b, y) pairs: every pair of entries, y = 1 if a ranked better, 0.5 if tied."""
    out = []
    for x in range(len(image_ids)):
        for z in range(x + 1, len(image_ids)):
            ra, rb = ranks[x], ranks[z]
            if ra < rb:
                out.append((image_ids[x], image_ids[z], 1.0))
            elif ra > rb:
                out.append((image_ids[z], image_ids[x], 1.0))
            else:
                out.append((image_ids[x], image_ids[z], 0.5))
    return out
