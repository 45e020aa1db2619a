"""Pair selection: a registry of named strategies over a vectorised pool of active images.

A strategy is a function ``(ctx: PairContext, n: int) -> list[tuple[int, int]]`` returning up to ``n``
candidate pairs as *pool indices*. :func:`select_pairs` drops pairs already judged in the session (no pair
twice), de-duplicates, randomises left/right with the context's seeded RNG and maps indices to image ids.

Built-in strategies:

- ``random``: two distinct images, uniformly.
- ``spec``: the seed's heuristic, kept as a baseline: the first image is drawn with weight
  ``sigma * (1 + 1/(comparison_count + 1))``, the second with weight ``sigma / (|mu1 - mu2| + 1)``.

Register more with :func:`register_strategy`; list them with :func:`list_strategies`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import StrategyNotFoundError

__all__ = [
    "PairContext",
    "Pool",
    "get_strategy",
    "list_strategies",
    "pair_key",
    "pair_keys",
    "register_strategy",
    "select_pairs",
]


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


Strategy = Callable[[PairContext, int], list[tuple[int, int]]]
_REGISTRY: dict[str, Strategy] = {}


def register_strategy(name: str) -> Callable[[Strategy], Strategy]:
    """Decorator: register ``fn(ctx, n) -> [(i, j), ...]`` (pool indices) under ``name``."""

    def wrap(fn: Strategy) -> Strategy:
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted."""
    _load_plugins()
    return sorted(_REGISTRY)


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``.

    Raises:
        StrategyNotFoundError: no such name; the message lists the known ones.
    """
    _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise StrategyNotFoundError(
            f"strategy {name!r} is not registered; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def _load_plugins() -> None:
    # The active strategy lives in its own module (it is large); importing it registers it.
    import importlib

    try:
        importlib.import_module("imagerank.active")
    except ModuleNotFoundError as e:  # pragma: no cover - the module ships with the package
        if e.name != "imagerank.active":
            raise


def _weighted_choice(rng: np.random.Generator, weights: np.ndarray) -> int:
    """Index drawn with probability proportional to ``weights`` (non-negative); O(N) via cumulative sums."""
    cum = np.cumsum(weights)
    total = cum[-1]
    if not np.isfinite(total) or total <= 0:
        return int(rng.integers(len(weights)))
    return int(np.searchsorted(cum, rng.random() * total, side="right").clip(0, len(weights) - 1))


@register_strategy("random")
def random_pairs(ctx: PairContext, n: int) -> list[tuple[int, int]]:
    """Two distinct images uniformly at random, ``n`` times."""
    size = len(ctx.pool)
    out = []
    for _ in range(n):
        i, j = ctx.rng.choice(size, size=2, replace=False)
        out.append((int(i), int(j)))
    return out


@register_strategy("spec")
def spec_pairs(ctx: PairContext, n: int) -> list[tuple[int, int]]:
    """The seed's sigma-weighted heuristic (baseline).

    First image: weight ``sigma * (1 + 1/(comparison_count + 1))``. Second image, among the others: weight
    ``sigma / (|mu1 - mu2| + 1)``. O(N) per pair.
    """
    pool = ctx.pool
    first_w = pool.sigma * (1.0 + 1.0 / (pool.count + 1.0))
    out = []
    for _ in range(n):
        i = _weighted_choice(ctx.rng, first_w)
        second_w = pool.sigma / (np.abs(pool.mu - pool.mu[i]) + 1.0)
        second_w[i] = 0.0
        j = _weighted_choice(ctx.rng, second_w)
        out.append((i, j))
    return out


def pair_key(a: int, b: int) -> tuple[int, int]:
    """The unordered key of a pair of image ids."""
    return (a, b) if a < b else (b, a)


def pair_keys(ids: Sequence[int]) -> set[tuple[int, int]]:
    """The keys of every pair among ``ids`` (one match of N images holds N(N-1)/2 pairs)."""
    return {pair_key(int(a), int(b)) for a, b in itertools.combinations(ids, 2)}


def select_pairs(
    ctx: PairContext,
    strategy: str | Strategy,
    n: int = 1,
    *,
    avoid: Iterable[tuple[int, int]] = (),
    max_rounds: int = 8,
) -> list[tuple[int, int]]:
    """Pick up to ``n`` new pairs of image ids as (left, right), sides randomised.

    Pairs in ``ctx.seen`` or ``avoid`` (e.g. already queued in the browser) are never returned; when the
    strategy keeps proposing seen pairs, up to ``max_rounds`` rounds are tried and then random pairs fill in.
    Fewer than ``n`` come back only when the pool has fewer unseen pairs than that.

    Raises:
        StrategyNotFoundError: ``strategy`` is an unknown name.
    """
    fn = get_strategy(strategy) if isinstance(strategy, str) else strategy
    size = len(ctx.pool)
    if size < 2 or n <= 0:
        return []
    blocked = set(ctx.seen)
    blocked.update(pair_key(int(a), int(b)) for a, b in avoid)
    capacity = size * (size - 1) // 2 - len(blocked)
    want = min(n, max(capacity, 0))
    out: list[tuple[int, int]] = []
    ids = ctx.pool.ids
    for round_ in range(max_rounds + 4):
        if len(out) >= want:
            break
        source = fn if round_ < max_rounds else random_pairs
        for i, j in source(ctx, want - len(out)):
            if i == j:
                continue
            a, b = int(ids[i]), int(ids[j])
            key = pair_key(a, b)
            if key in blocked:
                continue
            blocked.add(key)
            out.append((a, b) if ctx.rng.random() < 0.5 else (b, a))
            if len(out) >= want:
                break
    if len(out) < want:  # tiny pools: enumerate what is left
        for x in range(size):
            for y in range(x + 1, size):
                key = pair_key(int(ids[x]), int(ids[y]))
                if key not in blocked and len(out) < want:
                    blocked.add(key)
                    out.append(key if ctx.rng.random() < 0.5 else (key[1], key[0]))
    return out
