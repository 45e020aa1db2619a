"""``RoundQueue``: the best-of-N rounds a panel shows next (the compare panel's best-of-N mode).

The sibling of :class:`~imagerank.pairing.queue.PairQueue` for rounds of N = 3 or 4 images: the rounds queued
(front first: the front one is on screen), the rounds retired (a late vote for one from a browser that advanced
locally is still accepted), which rounds were judged, the undo stack, and the refill through
:func:`~imagerank.pairing.groups.select_group` (``active``: the top-k boundary duels, two or more on one screen).
A round is stored as one N-way Plackett-Luce match (:func:`~imagerank.pairing.groups.best_of_ranks`: the best rank
0, the worst rank N-1 when marked, the rest tied) or, skipped, as one ``skip`` match over its N images; undo is
:meth:`VoteLog.undo`, so replay and ``doctor`` stay exact.

    q = RoundQueue(col, size=3, depth=4)           # col: a Collection or a Catalog
    r = q.peek()                                   # Round(rid, ids), or None when nothing can be grouped
    q.record(r, best=2, worst=0, decision_ms=900)  # indices into r.ids (screen positions)
    back = q.undo()                                # UndoneRound(round, match, requeued, reason), or None

Not thread-safe: one queue belongs to one panel, used from the kernel's main thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError, NotFoundError
from .groups import GROUP_SIZES, best_of_ranks, select_group
from .pool import PairContext, Pool, PoolCache
from .queue import RETIRED_KEEP, UNDO_KEEP, Check
from .registry import get_strategy

if TYPE_CHECKING:
    from ..catalog import Match

__all__ = ["ROUND_DEPTH_MAX", "Round", "RoundQueue", "UndoneRound"]

#: Rounds kept queued at most (each holds up to 4 thumbnails; the browser decodes the next few ahead).
ROUND_DEPTH_MAX = 4
_FILL_TRIES = 3


@dataclass(frozen=True)
class Round:
    """One queued best-of-N round: ``rid`` (unique within its queue, increasing) and the image ids in screen
    order (position 0 = leftmost; key 1 picks ``ids[0]``)."""

    rid: int
    ids: tuple[int, ...]

    @property
    def pair_keys(self) -> list[tuple[int, int]]:
        """Every unordered pair ``(min id, max id)`` within the round."""
        return [(min(a, b), max(a, b)) for a, b in combinations(self.ids, 2)]


@dataclass(frozen=True)
class UndoneRound:
    """What :meth:`RoundQueue.undo` did: the ``round`` and its undone ``match``; ``requeued`` when the round is back
    at the front of the queue, else ``reason`` (an image is no longer usable)."""

    round: Round
    match: Match
    requeued: bool
    reason: str | None = None


def _index(value: object, name: str, n: int) -> int:
    """A screen index 0..n-1 from a message value (an int, or an integral float as JSON numbers may come)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InvalidArgumentError(f"{name}: expected an image index 0..{n - 1}, got {value!r}")
    k = int(value)
    if not 0 <= k < n:
        raise InvalidArgumentError(f"{name}: expected an image index 0..{n - 1} (this round has {n} images), "
                                   f"got {k}")
    return k


class RoundQueue:
    """The next ``depth`` best-of-N rounds, the rounds retired, the judged ones and the undo stack.

    Args:
        col: a ``Collection`` or :class:`~imagerank.catalog.Catalog`; votes go through its vote log, in its
            current session.
        size: images per round, 3 or 4 (:data:`~imagerank.pairing.groups.GROUP_SIZES`; 2 is a pair and belongs to
            :class:`~imagerank.pairing.queue.PairQueue`). A round has fewer only when the pool has too few images.
        depth: rounds kept queued, 1..:data:`ROUND_DEPTH_MAX`. Default 4.
        strategy: pairing strategy name; default the session's (``Settings.strategy``).
        pool: a :class:`PoolCache` or a function returning a :class:`Pool` (default as for ``PairQueue``).
        check: ``check(image_id) -> None | reason``; a round is never queued with an image it rejects (a panel
            passes the check that loads the thumbnail).
        voter: name stored with each match (default: the session's voter).

    Raises:
        InvalidArgumentError: ``size`` not 3 or 4, ``depth`` outside 1..4.
        StrategyNotFoundError: unknown ``strategy``.
    """

    def __init__(
        self,
        col: CatalogLike,
        size: int = 3,
        depth: int = ROUND_DEPTH_MAX,
        strategy: str | None = None,
        *,
        pool: PoolCache | Callable[[], Pool] | None = None,
        check: Check | None = None,
        voter: str | None = None,
    ) -> None:
        self.catalog = as_catalog(col)
        self.size = size
        self.depth = depth
        self.strategy = strategy or self.catalog.votes.session.strategy
        get_strategy(self.strategy)
        if pool is None:
            cache = getattr(col, "pairs", None)
            pool = cache if isinstance(cache, PoolCache) else PoolCache(self.catalog, follow_votes=False)
        self._pool_source: Callable[[], Pool] = pool.get if isinstance(pool, PoolCache) else pool
        self._check = check
        self.voter = voter
        self._queue: list[Round] = []
        self._retired: OrderedDict[int, Round] = OrderedDict()
        self._judged: set[int] = set()
        self._undo: list[tuple[int, Round]] = []
        self._next_rid = 1
        #: Rounds judged through this queue (a best chosen), minus those undone.
        self.votes = 0
        #: Rounds skipped through this queue, minus those undone.
        self.skips = 0

    # ------------------------------------------------------------------ reading
    @property
    def size(self) -> int:
        """Images per round, 3 or 4; a new size applies to the rounds queued from then on (call :meth:`clear`)."""
        return self._size

    @size.setter
    def size(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) not in GROUP_SIZES[1:]:
            raise InvalidArgumentError(f"size: expected {GROUP_SIZES[1]} or {GROUP_SIZES[2]} images per round, "
                                       f"got {value!r}")
        self._size = int(value)

    @property
    def depth(self) -> int:
        """Rounds kept queued, 1..:data:`ROUND_DEPTH_MAX`."""
        return self._depth

    @depth.setter
    def depth(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= ROUND_DEPTH_MAX:
            raise InvalidArgumentError(f"depth: expected 1..{ROUND_DEPTH_MAX} rounds, got {value!r}")
        self._depth = int(value)

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[Round]:
        return iter(list(self._queue))

    def peek(self) -> Round | None:
        """The front round (on screen), or None when the queue is empty."""
        return self._queue[0] if self._queue else None

    def get(self, rid: int) -> Round | None:
        """The queued or recently retired round ``rid`` (the last 256 retired are remembered), or None."""
        for r in self._queue:
            if r.rid == rid:
                return r
        return self._retired.get(int(rid))

    def is_judged(self, rid: int) -> bool:
        """Whether round ``rid`` has a judgement (or skip) recorded through this queue, not undone."""
        return int(rid) in self._judged

    @property
    def can_undo(self) -> int:
        """Judgements :meth:`undo` can take back."""
        return len(self._undo)

    @property
    def last_match_id(self) -> int | None:
        """The match id of the judgement :meth:`undo` would take back, None when there is none."""
        return self._undo[-1][0] if self._undo else None

    def image_ids(self) -> list[int]:
        """The image ids of the queued rounds, front first, each once."""
        return list(dict.fromkeys(i for r in self._queue for i in r.ids))

    def pool(self) -> Pool:
        """The active images."""
        return self._pool_source()

    def usable(self, image_id: int) -> str | None:
        """None when ``image_id`` can be shown, else the reason it cannot."""
        if self._check is not None:
            return self._check(int(image_id))
        return None if self.pool().index_of(image_id) is not None else "not an active image"

    # ------------------------------------------------------------------ changing the queue
    def retire(self, rnd: Round) -> None:
        """Take ``rnd`` off the queue; a late vote for it is still accepted."""
        if rnd in self._queue:
            self._queue.remove(rnd)
        self._retired[rnd.rid] = rnd
        while len(self._retired) > RETIRED_KEEP:
            self._retired.popitem(last=False)

    def clear(self, *, keep_front: bool = False) -> None:
        """Retire every queued round (with ``keep_front``: not the front one while all its images are active)."""
        keep: list[Round] = []
        if keep_front and self._queue:
            pool = self.pool()
            if all(pool.index_of(i) is not None for i in self._queue[0].ids):
                keep = self._queue[:1]
        for r in list(self._queue):
            if r not in keep:
                self.retire(r)

    def drop_images(self, ids: Iterable[int]) -> list[Round]:
        """Retire every queued round holding one of ``ids``; returns them. Call :meth:`fill` afterwards."""
        bad = {int(i) for i in ids}
        dropped = [r for r in self._queue if bad.intersection(r.ids)]
        for r in dropped:
            self.retire(r)
        return dropped

    def fill(self) -> list[Round]:
        """Top the queue up to :attr:`depth` with rounds from the strategy (:func:`select_group`), never reusing a
        pair of images already queued together, whose images all pass the check; trims it when longer.

        Returns:
            The rounds added (fewer when the pool has too few unseen pairs, e.g. under 2 images). Cost: one
            strategy call per round (``active`` at 100,000 images: a few ms each).
        """
        while len(self._queue) > self._depth:
            self.retire(self._queue[-1])
        added: list[Round] = []
        tries = 0
        rejected: list[tuple[int, int]] = []  # pairs of groups passed over: not seeds of the next try
        while len(self._queue) < self._depth and tries < self._depth * _FILL_TRIES:
            tries += 1
            session = self.catalog.votes.session
            ctx = PairContext(self.pool(), session.rng, session.seen, topk=self.catalog.settings.topk)
            queued = {k for r in self._queue for k in r.pair_keys}
            ids = select_group(ctx, self.strategy, self._size, avoid=[*queued, *rejected])
            if len(ids) < 2:
                break
            bad = [i for i in ids if self.usable(i) is not None]
            if bad:
                self.drop_images(bad)
                continue
            rnd = Round(self._next_rid, tuple(int(i) for i in ids))
            if queued.intersection(rnd.pair_keys):  # two images already on one queued screen together
                rejected += rnd.pair_keys
                continue
            self._next_rid += 1
            self._queue.append(rnd)
            added.append(rnd)
        return added

    # ------------------------------------------------------------------ judging
    def record(
        self,
        rnd: Round | int,
        best: object = None,
        worst: object = None,
        decision_ms: float | None = None,
        *,
        skip: bool = False,
        shown: object = None,
        refill: bool = True,
    ) -> Match:
        """Record round ``rnd`` through the vote log (one N-way match, screen positions 0..N-1), retire it and refill.

        Args:
            rnd: a queued or retired :class:`Round`, or its ``rid``.
            best: index (0..N-1, screen order) of the image chosen as best; ignored with ``skip``.
            worst: index of the image marked worst, or None.
            decision_ms: time to decide, milliseconds; values outside 0..86,400,000 are stored as None.
            skip: store a ``skip`` match over the N images instead (not rated unless ``Settings.skip_as_draw``).
            shown: the image ids the judge saw, checked against the round (a browser out of step).
            refill: top the queue up afterwards (False: a late vote after the panel left best-of-N mode).

        Returns:
            The stored match.

        Raises:
            InvalidArgumentError: ``best``/``worst`` not an index of the round, ``worst == best``, ``shown`` of
                another length (a wrong N) or other ids, or the round was judged already.
            NotFoundError: unknown ``rid``, or an image left the catalog (nothing is recorded; the rounds holding
                it leave the queue, which is refilled).
        """
        r = self.get(rnd.rid if isinstance(rnd, Round) else int(rnd))
        if r is None:
            raise NotFoundError(f"round {rnd.rid if isinstance(rnd, Round) else rnd}: not queued in this panel")
        if r.rid in self._judged:
            raise InvalidArgumentError(f"round {r.rid} was judged already")
        n = len(r.ids)
        if shown is not None:
            if not isinstance(shown, (list, tuple)) or len(shown) != n:
                got = len(shown) if isinstance(shown, (list, tuple)) else repr(shown)
                raise InvalidArgumentError(f"ids: round {r.rid} has {n} images, the browser sent {got}")
            if tuple(shown) != r.ids:
                raise InvalidArgumentError(f"ids: the browser shows {list(shown)} for round {r.rid}, Python queued "
                                           f"{list(r.ids)}")
        ms = decision_ms if isinstance(decision_ms, (int, float)) and not isinstance(decision_ms, bool) else None
        ms = float(ms) if ms is not None and 0 <= ms < 86_400_000 else None
        positions = list(range(n))
        if skip:
            ranks, kind = None, "skip"
        else:
            b = _index(best, "best", n)
            w = None if worst is None else _index(worst, "worst", n)
            ranks = best_of_ranks(r.ids, r.ids[b], None if w is None else r.ids[w])
            kind = "ranking" if n > 2 else "win"
        try:
            match = self.catalog.votes.record(list(r.ids), ranks, positions=positions, kind=kind, decision_ms=ms,
                                              voter=self.voter)
        except NotFoundError:
            self.retire(r)
            present = self.catalog.images.names(r.ids)
            self.drop_images([i for i in r.ids if i not in present])
            self.fill()
            raise
        self._judged.add(r.rid)
        self._undo.append((match.id, r))
        del self._undo[:-UNDO_KEEP]
        if skip:
            self.skips += 1
        else:
            self.votes += 1
        self.retire(r)
        if refill:
            self.fill()
        return match

    def undo(self) -> UndoneRound | None:
        """Undo the last round recorded through this queue (exactly: :meth:`VoteLog.undo`); it goes back to the
        front of the queue when all its images still pass the check.

        Returns:
            What was undone, or None when there is nothing to undo.

        Raises:
            NotFoundError: the match was undone elsewhere already (it leaves this queue's undo stack).
        """
        if not self._undo:
            return None
        mid, rnd = self._undo.pop()
        match = self.catalog.votes.undo(mid)
        if match is None:  # pragma: no cover (undo(match_id) raises instead)
            raise NotFoundError(f"match {mid}: nothing to undo")
        self._judged.discard(rnd.rid)
        if match.kind == "skip":
            self.skips -= 1
        else:
            self.votes -= 1
        self._retired.pop(rnd.rid, None)
        reason = next((x for x in (self.usable(i) for i in rnd.ids) if x is not None), None)
        if reason is not None:
            return UndoneRound(rnd, match, False, reason)
        self._queue.insert(0, rnd)
        while len(self._queue) > self._depth:
            self.retire(self._queue[-1])
        return UndoneRound(rnd, match, True)
