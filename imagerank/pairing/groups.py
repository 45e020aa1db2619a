"""Best-of-N rounds: N images on one screen, the user picks the best (and optionally the worst).

A round is stored as one N-way Plackett-Luce match (``kind = 'ranking'``; the chosen best rank 0, the worst rank
N-1 when given, the rest tied in between), so undo, replay and ``doctor`` treat it exactly like a pair
(:meth:`imagerank.catalog.votes.VoteLog.record`).

- :func:`select_group`: N distinct images from any registered strategy. The strategy's pairs (``active``: the
  top-k boundary duels, challenger against weak member) are taken in order and their images collected until there
  are N, so a group of 4 from ``active`` is two boundary duels on one screen: picking the best settles the most
  open comparisons at once. At least one pair in a group has not been judged in the session.
- :func:`next_group`: the same for the current session of a catalog or collection (``next_pairs``' sibling).
- :func:`best_of_ranks`: the ranks a best (and worst) choice stands for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError
from .pool import PairContext, PoolCache
from .registry import Strategy, select_pairs

__all__ = ["GROUP_SIZES", "best_of_ranks", "next_group", "select_group"]

#: Images per best-of-N round the API accepts (the issue's 3 or 4; 2 is a plain pair).
GROUP_SIZES = (2, 3, 4)


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size not in GROUP_SIZES:
        raise InvalidArgumentError(f"size: expected one of {GROUP_SIZES} images per round, got {size!r}")
    return size


def select_group(ctx: PairContext, strategy: str | Strategy, size: int = 4, *,
                 avoid: Iterable[tuple[int, int]] = ()) -> list[int]:
    """``size`` distinct image ids for one best-of-N round, in screen order (see the module docstring).

    Args:
        ctx: the pool, the session's RNG and seen pairs, ``topk``, ``exploration``.
        strategy: a registered name (``"active"`` ...) or a strategy function.
        size: images per round, one of :data:`GROUP_SIZES`.
        avoid: pairs of image ids not to use as the group's seed pairs (e.g. queued elsewhere).

    Returns:
        A list of ``size`` image ids (fewer only when the pool is smaller or has too few unseen pairs; empty when
        no unseen pair is left). Screen order is shuffled with ``ctx.rng``.

    Raises:
        InvalidArgumentError: ``size`` is not one of :data:`GROUP_SIZES`.
        StrategyNotFoundError: unknown strategy name.
    """
    size = _check_size(size)
    out: list[int] = []
    blocked = list(avoid)
    for _ in range(4):
        pairs = select_pairs(ctx, strategy, size, avoid=blocked)
        if not pairs:
            break
        for a, b in pairs:
            for i in (a, b):
                if i not in out and len(out) < size:
                    out.append(int(i))
        if len(out) >= size:
            break
        blocked += pairs
    if len(out) < 2:
        return []
    order = ctx.rng.permutation(len(out))
    return [out[i] for i in order.tolist()]


def next_group(col: CatalogLike, size: int = 4, *, strategy: str | None = None,
               avoid: Iterable[tuple[int, int]] = ()) -> list[int]:
    """``size`` image ids for the next best-of-N round of the current session of ``col`` (a catalog or a
    ``Collection``, whose pool carries the live prior's scores). See :func:`select_group`.

    Raises:
        InvalidArgumentError: ``size`` is not one of :data:`GROUP_SIZES`.
        StrategyNotFoundError: unknown strategy name.
    """
    _check_size(size)
    cat = as_catalog(col)
    cache = getattr(col, "pairs", None)
    pool = cache.get() if isinstance(cache, PoolCache) else PoolCache(cat, follow_votes=False).get()
    s = cat.votes.session
    ctx = PairContext(pool, s.rng, s.seen, topk=cat.settings.topk)
    return select_group(ctx, strategy or s.strategy, size, avoid=avoid)


def best_of_ranks(image_ids: Sequence[int], best: int, worst: int | None = None) -> list[int]:
    """Ranks for one best-of-N round: 0 for ``best``, ``N - 1`` for ``worst`` (when given and N > 2), 1 for the
    rest (tied: the user said nothing about their order).

    Args:
        image_ids: the N >= 2 distinct image ids shown.
        best: the id chosen as best; worst: the id chosen as worst, or None.

    Returns:
        N ints, in the order of ``image_ids``.

    Raises:
        InvalidArgumentError: fewer than 2 or repeated ids, ``best`` / ``worst`` not among them, or
            ``worst == best``.
    """
    ids = [int(i) for i in image_ids]
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise InvalidArgumentError(f"image_ids: expected at least 2 distinct image ids, got {ids}")
    if best not in ids:
        raise InvalidArgumentError(f"best: expected one of the images shown {ids}, got {best!r}")
    if worst is not None and worst not in ids:
        raise InvalidArgumentError(f"worst: expected one of the images shown {ids} or None, got {worst!r}")
    if worst is not None and worst == best:
        raise InvalidArgumentError(f"worst: expected another image than best ({best}), got the same")
    last = len(ids) - 1
    return [0 if i == best else (last if (i == worst and last > 1) else 1) for i in ids]
