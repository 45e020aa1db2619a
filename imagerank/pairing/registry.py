"""The strategy registry and :func:`select_pairs`, the one way pairs are picked.

A strategy is a function ``(ctx: PairContext, n: int) -> list[tuple[int, int]]`` returning up to ``n`` candidate
pairs as *pool indices*. :func:`select_pairs` drops pairs already judged in the session (no pair twice),
de-duplicates, randomises left/right with the context's seeded RNG and maps indices to image ids.

Built-in strategies (registered here, no import side effects):

- ``random``: two distinct images, uniformly.
- ``spec``: the seed's heuristic, kept as a baseline: the first image is drawn with weight
  ``sigma * (1 + 1/(comparison_count + 1))``, the second with weight ``sigma / (|mu1 - mu2| + 1)``.
- ``active`` (the default): Bayesian LUCB on the top-k boundary (:mod:`.active`).

Register more with :func:`register_strategy`; list them with :func:`list_strategies`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..catalog import CatalogLike, as_catalog
from ..catalog.votes import pair_key
from ..errors import StrategyNotFoundError
from .active import active_pairs
from .pool import PairContext, PoolCache
from .strategies import random_pairs, spec_pairs

__all__ = ["Strategy", "get_strategy", "list_strategies", "next_pairs", "register_strategy", "select_pairs"]

Strategy = Callable[[PairContext, int], list[tuple[int, int]]]
_REGISTRY: dict[str, Strategy] = {"random": random_pairs, "spec": spec_pairs, "active": active_pairs}


def register_strategy(name: str) -> Callable[[Strategy], Strategy]:
    """Decorator: register ``fn(ctx, n) -> [(i, j), ...]`` (pool indices) under ``name``."""

    def wrap(fn: Strategy) -> Strategy:
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted."""
    return sorted(_REGISTRY)


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``.

    Raises:
        StrategyNotFoundError: no such name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise StrategyNotFoundError(
            f"strategy {name!r} is not registered; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


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


def next_pairs(
    col: CatalogLike,
    n: int = 1,
    *,
    strategy: str | Strategy | None = None,
    avoid: Iterable[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Up to ``n`` new (left, right) pairs of image ids for the current session of ``col``'s vote log.

    Pairs already judged in the session and pairs in ``avoid`` are not repeated; sides are randomised;
    ``strategy`` defaults to the session's. With a ``Collection``, its pool (kept current by the votes, with the
    live prior's scores) is used; with a bare :class:`~imagerank.catalog.Catalog`, the pool is read afresh.

    Raises:
        StrategyNotFoundError: unknown strategy name.
    """
    cat = as_catalog(col)
    cache = getattr(col, "pairs", None)
    pool = cache.get() if isinstance(cache, PoolCache) else PoolCache(cat, follow_votes=False).get()
    s = cat.votes.session
    ctx = PairContext(pool, s.rng, s.seen, topk=cat.settings.topk)
    return select_pairs(ctx, strategy or s.strategy, n, avoid=avoid)
