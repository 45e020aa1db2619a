"""The pool of active images as column arrays (the input of every strategy), the strategy context, and the
per-catalog cache that keeps the pool current as votes come in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..catalog import Catalog, VoteEvent

__all__ = ["PairContext", "Pool", "PoolCache"]


@dataclass
class Pool:
    """The active images as column arrays, the input of every strategy.

    Attributes:
        ids: (N,) int64 image ids.
        mu: (N,) float64 OpenSkill means.
        sigma: (N,) float64 OpenSkill standard deviations.
        count: (N,) int64 comparisons each image took part in.
        prior: (N,) float64 ranker scores (standardised, higher is better) or None when no ranker is applied.
    """

    ids: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    count: np.ndarray
    prior: np.ndarray | None = None
    _index: dict[int, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def index_of(self, image_id: int) -> int | None:
        """Pool index of ``image_id``, or None when it is not active."""
        if self._index is None:
            self._index = {int(i): k for k, i in enumerate(self.ids.tolist())}
        return self._index.get(int(image_id))

    def update(self, image_id: int, mu: float, sigma: float, count_delta: int = 0) -> None:
        """Set one image's rating in place (after a vote) without reloading the pool."""
        k = self.index_of(image_id)
        if k is not None:
            self.mu[k] = mu
            self.sigma[k] = sigma
            self.count[k] += count_delta

    @classmethod
    def from_arrays(
        cls,
        ids: Iterable[int],
        mu: Iterable[float],
        sigma: Iterable[float],
        count: Iterable[int],
        prior: Iterable[float] | None = None,
    ) -> Pool:
        """Build a pool from sequences (copied into contiguous numpy arrays)."""
        return cls(
            ids=np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64).copy(),
            mu=np.asarray(list(mu) if not isinstance(mu, np.ndarray) else mu, dtype=np.float64).copy(),
            sigma=np.asarray(list(sigma) if not isinstance(sigma, np.ndarray) else sigma, dtype=np.float64).copy(),
            count=np.asarray(list(count) if not isinstance(count, np.ndarray) else count, dtype=np.int64).copy(),
            prior=None if prior is None else np.asarray(prior, dtype=np.float64).copy(),
        )


@dataclass
class PairContext:
    """What a strategy may look at.

    Attributes:
        pool: the active images.
        rng: the session's seeded generator (reproducible runs).
        seen: unordered pairs of image ids already judged in this session, as ``(min_id, max_id)``.
        topk: the k whose boundary the active strategy sharpens (Settings.topk).
        exploration: share of picks made at random by strategies that support it, 0..1.
    """

    pool: Pool
    rng: np.random.Generator
    seen: set[tuple[int, int]] = field(default_factory=set)
    topk: int = 100
    exploration: float = 0.1


class PoolCache:
    """The :class:`Pool` of one catalog, loaded once and kept current.

    Subscribed to the catalog's vote log: a rated vote (or an undo that restored the before values) updates the
    two images in place, so voting at 100,000 images never reloads; anything else written to the catalog (a scan,
    a status change, new priors, a replay, or another process's commit) reloads it on the next :meth:`get`.
    ``prior_scores`` (image id -> standardised ranker score) become ``Pool.prior`` for the strategies.

    Args:
        catalog: the workspace.
        follow_votes: subscribe to the vote log (the facade's pool); False for a one-off read.
    """

    def __init__(self, catalog: Catalog, *, follow_votes: bool = True) -> None:
        self.catalog = catalog
        self._pool: Pool | None = None
        self._version: tuple[int, int] | None = None
        self._prior_scores: dict[int, float] | None = None
        self.unsubscribe = catalog.votes.subscribe(self._on_event) if follow_votes else (lambda: None)

    def get(self) -> Pool:
        """The active images as arrays (reloaded when the catalog changed other than by a vote)."""
        version = self.catalog.db.version()
        if self._pool is None or version != self._version:
            rows = self.catalog.db.query(
                "SELECT id, mu, sigma, comparison_count FROM images WHERE status='active' ORDER BY id"
            )
            if rows:
                arr = np.array([tuple(r) for r in rows], dtype=np.float64)
                ids, mu, sigma, count = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
            else:
                ids = mu = sigma = count = np.zeros(0)
            prior = None
            if self._prior_scores:
                prior = np.array([self._prior_scores.get(int(i), np.nan) for i in ids], dtype=np.float64)
            self._pool = Pool.from_arrays(ids, mu, sigma, count, prior)
            self._version = version
        return self._pool

    def invalidate(self) -> None:
        """Reload on the next :meth:`get`."""
        self._pool = None

    @property
    def prior_scores(self) -> dict[int, float] | None:
        """image id -> standardised ranker score given to the strategies, or None."""
        return self._prior_scores

    def set_prior_scores(self, scores: dict[int, float] | None) -> None:
        """Give pairing strategies a learned prior: image id -> standardised ranker score (higher is better)."""
        self._prior_scores = dict(scores) if scores else None
        self._pool = None

    def _on_event(self, event: VoteEvent) -> None:
        pool, match = self._pool, event.match
        if pool is None or match is None or self._version is None:
            return
        if self.catalog.db.data_version() != self._version[0]:
            return  # another process wrote too: reload on the next get
        if event.kind == "vote":
            for e in match.entries:
                pool.update(e.image_id, e.mu_after, e.sigma_after, 1)
        elif event.kind == "undo" and (event.restored or not match.rated):
            if match.rated:
                for e in match.entries:
                    pool.update(e.image_id, e.mu_before, e.sigma_before, -1)
        else:
            return
        self._version = self.catalog.db.version()
