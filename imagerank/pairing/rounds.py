"""``RoundQueue``: the best-of-N rounds a panel shows next (the compare panel's best-of-N mode).

The sibling of :class:`~imagerank.pairing.queue.PairQueue` for rounds of N = 3 or 4 images: the rounds queued
(front first: the front one is on screen), the rounds retired (a late vote for one from a browser that advanced
locally is still accepted), which rounds were judged, the undo stack, and the refill through
:func:`~imagerank.pairing.groups.select_group` (``active``: the top-k boundary duels, two or more on one screen; in
the consistent-judge mode the boundary screen on the collection's EP posterior, as for pairs).
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

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from ..catalog import CatalogLike
from ..errors import InvalidArgumentError, NotFoundError
from .groups import GROUP_SIZES, best_of_ranks, select_group
from .pool import PairContext, Pool, PoolCache
from .queue import UNDO_KEEP, Check, JudgingQueue

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


class RoundQueue(JudgingQueue[Round]):
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
        self._setup(col, strategy, pool, check, voter)
        self.size = size
        self.depth = depth
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

    @staticmethod
    def _id(item: Round) -> int:
        return item.rid

    # ------------------------------------------------------------------ changing the queue
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
            ids = select_group(ctx, self._pick(ctx), self._size, avoid=[*queued, *rejected])
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
