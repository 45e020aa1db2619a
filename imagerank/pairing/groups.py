"""Best-of-N rounds: N images on one screen, the user picks the best (and optionally the worst).

A round is stored as one N-way Plackett-Luce match (``kind = 'ranking'``; the chosen best rank 0, the worst rank
N-1 when given, the rest tied in between), so undo, replay and ``doctor`` treat it exactly like a pair
(:meth:`imagerank.catalog.votes.VoteLog.record`).

- :func:`select_group`: N distinct images from any registered strategy. The strategy's pairs (``active``: the
  top-k boundary duels, challenger against weak member) are taken in order and their images collected until there
  are N, so a group of 4 from ``active`` is two boundary duels on one screen: picking the best settles the most
  open comparisons at once. At least one pair in a group has not been judged in the session.
- :func:`next_group`: the same for the current session of a catalog or collection (``next_pairs``' sibling). In
  the consistent-judge mode of a ``Collection`` (:attr:`~imagerank.pairing.posterior_view.PosteriorView.mode`)
  ``active`` is the boundary screen on the EP posterior (:func:`~imagerank.pairing.screen.screen_pairs`), as for
  pairs: a round of 4 is two screening duels (a candidate with the most boundary mass per vote against the image
  expected closest to the boundary), a round of 3 one duel and the next candidate; the
  :class:`~imagerank.pairing.rounds.RoundQueue` of a panel does the same.
- :func:`best_of_ranks`: the ranks a best (and worst) choice stands for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..catalog import CatalogLike, as_catalog, pair_key
from ..errors import InvalidArgumentError
from .pool import PairContext, PoolCache
from .posterior_view import PosteriorView
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
        avoid: pairs of image ids not to use as the group's seed pairs (e.g. queued elsewhere); the strategy is
            shown them as judged, so it proposes its next best duels in their place.

    Returns:
        A list of ``size`` image ids (fewer only when the pool is smaller or has too few unseen pairs; empty when
        no unseen pair is left). Screen order is shuffled with ``ctx.rng``.

    Raises:
        InvalidArgumentError: ``size`` is not one of :data:`GROUP_SIZES`.
        StrategyNotFoundError: unknown strategy name.
    """
    size = _check_size(size)
    out: list[int] = []
    avoided = {pair_key(int(a), int(b)) for a, b in avoid}
    blocked = set(avoided)
    for _ in range(4):
        # the strategy sees the blocked pairs as judged, so it proposes its next best duels in their place (not
        # the same blocked ones until select_pairs falls back to random pairs)
        view = replace(ctx, seen=ctx.seen | blocked) if blocked else ctx
        pairs = select_pairs(view, strategy, size)
        if not pairs:
            break
        for a, b in pairs:
            new = [int(i) for i in (a, b) if int(i) not in out][: size - len(out)]
            # no two images of the group may form an avoided pair (e.g. two images already on a queued screen)
            if any(pair_key(x, y) in avoided for x in new for y in out):
                continue
            out += new
        if len(out) >= size:
            break
        blocked.update(pair_key(int(a), int(b)) for a, b in pairs)
    if len(out) < 2:
        return []
    order = ctx.rng.permutation(len(out))
    return [out[i] for i in order.tolist()]


def next_group(col: CatalogLike, size: int = 4, *, strategy: str | None = None,
               avoid: Iterable[tuple[int, int]] = ()) -> list[int]:
    """``size`` image ids for the next best-of-N round of the current session of ``col`` (a catalog or a
    ``Collection``, whose pool carries the live prior's scores). See :func:`select_group`. With ``active`` and a
    ``Collection`` in the consistent-judge mode the pairs the group is grown from are the boundary screen's on the
    collection's EP posterior (``col.posterior.strategy``), as ``Collection.next_pairs`` picks them.

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
    name = strategy or s.strategy
    pick: str | Strategy = name
    view = getattr(col, "posterior", None)  # a Collection's EP posterior
    if name == "active" and isinstance(view, PosteriorView):
        pick = view.strategy(pool.ids) or name  # consistent judge: the boundary screen on the posterior
    return select_group(ctx, pick, size, avoid=avoid)


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
