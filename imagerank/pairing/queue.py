"""``PairQueue``: the pairs a panel shows next, shared by every voting panel (compare, triage, burst).

A panel asks the queue for pairs and reports judgements to it; everything else is the queue's: the pairs queued
(front first: the front one is on screen), the pairs retired (no longer queued, but a late vote for them from a
browser that advanced locally is still accepted), which pairs were judged, the undo stack, the refill through the
pairing strategy (never a pair already judged in the session or already queued), opponents for new images, and
dropping pairs whose image became unusable (a file gone, a thumbnail that does not decode).

It knows nothing of widgets or browsers: tests drive it directly.

    q = PairQueue(col, depth=8)               # col: a Collection or a Catalog
    pair = q.peek()                           # Pair(pid, left, right), or None when nothing can be paired
    q.record(pair, "left", decision_ms=840)   # through the vote log; retires the pair and refills
    back = q.undo()                           # Undone(pair, match, requeued, reason), or None
    q.drop_images({7})                        # image 7 became unusable: its pairs leave, call q.fill()

Not thread-safe: one queue belongs to one panel, used from the kernel's main thread (the vote log and the
database it writes through are thread-safe).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar, cast

import numpy as np

from ..catalog import CatalogLike, as_catalog, pair_key
from ..errors import InvalidArgumentError, NotFoundError
from .pool import PairContext, Pool, PoolCache
from .posterior_view import PosteriorView
from .registry import Strategy, get_strategy, select_pairs
from .strategies import weighted_choice

if TYPE_CHECKING:
    from ..catalog import Match, Outcome

__all__ = ["OUTCOMES", "JudgingQueue", "Pair", "PairQueue", "Undone"]

#: The judgements :meth:`PairQueue.record` takes: left wins, right wins, a draw, or a skip (stored, not rated).
OUTCOMES: tuple[str, ...] = ("left", "right", "draw", "skip")

RETIRED_KEEP = 256  # pairs no longer queued whose late votes are still accepted
UNDO_KEEP = 1000  # judgements a queue can undo
_FILL_ROUNDS = 6
_OPPONENT_TRIES = 8

#: ``check(image_id) -> None`` when the image can be shown, else the reason it cannot (a short text).
Check = Callable[[int], "str | None"]

T = TypeVar("T")


@dataclass(frozen=True)
class Pair:
    """One queued pair: ``pid`` (unique within its queue, increasing) and the image ids on the ``left`` (screen
    position 0) and ``right`` (position 1)."""

    pid: int
    left: int
    right: int

    @property
    def ids(self) -> tuple[int, int]:
        """(left id, right id)."""
        return (self.left, self.right)

    @property
    def key(self) -> tuple[int, int]:
        """The unordered key ``(min id, max id)``, as in ``Session.seen``."""
        return pair_key(self.left, self.right)


@dataclass(frozen=True)
class Undone:
    """What :meth:`PairQueue.undo` did.

    Attributes:
        pair: the pair whose judgement was undone.
        match: the undone match as stored (its ``kind`` says whether it was a skip).
        requeued: the pair is back at the front of the queue (show it again).
        reason: why it was not requeued (an image is no longer usable), None when it was.
    """

    pair: Pair
    match: Match
    requeued: bool
    reason: str | None = None


class JudgingQueue(Generic[T]):
    """What a pair queue and a round queue share: the items queued (front first: the front one is on screen), the
    items retired (a late vote for one is still accepted), which were judged, the undo stack, and the pool and check
    the items' images are drawn under. An item has ``ids`` (its image ids) and an id of its own (:meth:`_id`).

    Subclasses (:class:`PairQueue`, :class:`~imagerank.pairing.rounds.RoundQueue`) call :meth:`_setup` from their
    constructor and add the refill, the recording of judgements and undo.
    """

    _queue: list[T]
    _retired: OrderedDict[int, T]
    _judged: set[int]
    _undo: list[tuple[int, T]]
    _pool_source: Callable[[], Pool]
    _check: Check | None

    def _setup(self, col: CatalogLike, strategy: str | None, pool: PoolCache | Callable[[], Pool] | None,
               check: Check | None, voter: str | None) -> None:
        self.catalog = as_catalog(col)
        self.strategy = strategy or self.catalog.votes.session.strategy
        get_strategy(self.strategy)  # unknown names fail here, loudly, with the list of known ones
        if pool is None:
            cache = getattr(col, "pairs", None)
            pool = cache if isinstance(cache, PoolCache) else PoolCache(self.catalog, follow_votes=False)
        self._pool_source = pool.get if isinstance(pool, PoolCache) else pool
        self._check = check
        self.voter = voter
        view = getattr(col, "posterior", None)  # a Collection's EP posterior (the consistent-judge mode)
        self._posterior: PosteriorView | None = view if isinstance(view, PosteriorView) else None
        self._queue = []
        self._retired = OrderedDict()
        self._judged = set()
        self._undo = []

    @staticmethod
    def _id(item: T) -> int:
        """The item's own id (a pair's ``pid``, a round's ``rid``)."""
        raise NotImplementedError

    def _pick(self, ctx: PairContext) -> str | Strategy:
        """The strategy to pick with now: in the consistent-judge mode ``active`` is the boundary screen on the
        collection's EP posterior (:meth:`PosteriorView.strategy`), otherwise :attr:`strategy` itself."""
        if self._posterior is not None and self.strategy == "active":
            pick = self._posterior.strategy(ctx.pool.ids)
            if pick is not None:
                return pick
        return self.strategy

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._queue))

    def peek(self) -> T | None:
        """The front item (on screen), or None when the queue is empty."""
        return self._queue[0] if self._queue else None

    def get(self, item_id: int) -> T | None:
        """The queued or recently retired item ``item_id`` (the last 256 retired are remembered), or None."""
        for it in self._queue:
            if self._id(it) == item_id:
                return it
        return self._retired.get(int(item_id))

    def is_judged(self, item_id: int) -> bool:
        """Whether item ``item_id`` has a judgement recorded through this queue (and not undone)."""
        return int(item_id) in self._judged

    @property
    def can_undo(self) -> int:
        """Judgements :meth:`undo` can take back (at most 1000)."""
        return len(self._undo)

    @property
    def last_match_id(self) -> int | None:
        """The match id of the judgement :meth:`undo` would take back, None when there is none."""
        return self._undo[-1][0] if self._undo else None

    def image_ids(self) -> list[int]:
        """The image ids of the queued items, front first, each once."""
        return list(dict.fromkeys(i for it in self._queue for i in it.ids))  # type: ignore[attr-defined]

    def pool(self) -> Pool:
        """The active images (from the pool source given at construction)."""
        return self._pool_source()

    def usable(self, image_id: int) -> str | None:
        """None when ``image_id`` can be queued, else the reason it cannot (the ``check`` given, or: active)."""
        if self._check is not None:
            return self._check(int(image_id))
        return None if self.pool().index_of(image_id) is not None else "not an active image"

    # ------------------------------------------------------------------ changing the queue
    def retire(self, item: T) -> None:
        """Take ``item`` off the queue; a late vote for it is still accepted (:meth:`get` finds it)."""
        if item in self._queue:
            self._queue.remove(item)
        self._retired[self._id(item)] = item
        while len(self._retired) > RETIRED_KEEP:
            self._retired.popitem(last=False)

    def clear(self, *, keep_front: bool = False) -> None:
        """Retire every queued item; with ``keep_front``, the front one stays when all its images are still in
        the pool (the item on screen survives a rescan)."""
        keep: list[T] = []
        if keep_front and self._queue:
            pool = self.pool()
            if all(pool.index_of(i) is not None for i in self._queue[0].ids):  # type: ignore[attr-defined]
                keep = self._queue[:1]
        for it in list(self._queue):
            if it not in keep:
                self.retire(it)

    def drop_images(self, ids: Iterable[int]) -> list[T]:
        """Retire every queued item holding one of ``ids`` (images that became unusable); returns those items.
        Call ``fill()`` afterwards to top the queue up again."""
        bad = {int(i) for i in ids}
        dropped = [it for it in self._queue if bad.intersection(it.ids)]  # type: ignore[attr-defined]
        for it in dropped:
            self.retire(it)
        return dropped


class PairQueue(JudgingQueue[Pair]):
    """The next ``depth`` pairs to judge, the pairs retired, the judged ones and the undo stack.

    Args:
        col: a ``Collection`` or :class:`~imagerank.catalog.Catalog` (anything :func:`as_catalog` takes); votes go
            through its vote log, in its current session.
        depth: pairs kept queued, 1..64 (a panel keeps them ready in the browser). Default 8.
        strategy: pairing strategy name (see :func:`list_strategies`); default the session's
            (``Settings.strategy``).
        pool: where the active images come from: a :class:`PoolCache` or a function returning a :class:`Pool`.
            Default: ``col.pairs`` when ``col`` has a PoolCache there (a Collection: kept current by the votes,
            with the live prior), else a pool read afresh when the catalog changed.
        check: ``check(image_id) -> None | reason``; pairs with an image it rejects are not queued (and the
            queued pairs holding it are dropped). Default: the image is in the pool (active). A panel passes a
            check that also loads the thumbnail, so a queued pair can always be painted.
        voter: name stored with each match (default: the session's voter).
        rng: the generator for opponents and sides of new images' pairs (default: a fresh one). The strategy's
            own picks use the session's seeded generator.

    Raises:
        InvalidArgumentError: ``depth`` outside 1..64.
        StrategyNotFoundError: ``strategy`` (or the session's default) is not registered.
        TypeError: ``col`` is neither a Catalog nor holds one.
    """

    def __init__(
        self,
        col: CatalogLike,
        depth: int = 8,
        strategy: str | None = None,
        *,
        pool: PoolCache | Callable[[], Pool] | None = None,
        check: Check | None = None,
        voter: str | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self._setup(col, strategy, pool, check, voter)
        self.depth = depth
        self.rng = rng if rng is not None else np.random.default_rng()
        self._next_pid = 1
        #: Wins and draws recorded through this queue (minus those undone).
        self.votes = 0
        #: Skips recorded through this queue (minus those undone).
        self.skips = 0

    # ------------------------------------------------------------------ reading
    @property
    def depth(self) -> int:
        """Pairs kept queued, 1..64. Lowering it retires pairs from the back at the next :meth:`fill`."""
        return self._depth

    @depth.setter
    def depth(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= 64:
            raise InvalidArgumentError(f"depth: expected 1..64 pairs, got {value!r}")
        self._depth = int(value)

    @property
    def pairs(self) -> list[Pair]:
        """The queued pairs, front first (a copy)."""
        return list(self._queue)

    def pop(self) -> Pair | None:
        """Take the front pair off the queue (it is retired: a vote for it is still accepted); None when empty."""
        pair = self.peek()
        if pair is not None:
            self.retire(pair)
        return pair

    @staticmethod
    def _id(item: Pair) -> int:
        return item.pid

    # ------------------------------------------------------------------ changing the queue
    def push(self, left: int, right: int, *, front: bool = False) -> Pair:
        """Queue ``left`` vs ``right`` as given (at the back, or at the ``front``); returns the new pair. No check
        is made: use :meth:`usable` first when the images may be gone.

        Raises:
            InvalidArgumentError: ``left == right``.
        """
        if int(left) == int(right):
            raise InvalidArgumentError(f"push: a pair needs two different images, got {left} twice")
        pair = Pair(self._next_pid, int(left), int(right))
        self._next_pid += 1
        if front:
            self._queue.insert(0, pair)
        else:
            self._queue.append(pair)
        return pair

    def fill(self) -> list[Pair]:
        """Top the queue up to :attr:`depth` with new pairs from the strategy whose images pass the check (pairs
        judged in the session or already queued are never proposed); trims it to ``depth`` when it is longer.

        Returns:
            The pairs added (fewer than needed when the pool has too few unseen pairs, e.g. under 2 images).
        """
        while len(self._queue) > self._depth:
            self.retire(self._queue[-1])
        added: list[Pair] = []
        for _ in range(_FILL_ROUNDS):
            need = self._depth - len(self._queue)
            if need <= 0:
                break
            fresh = self._next_pairs(need)
            if not fresh:
                break
            for left, right in fresh:
                bad = [i for i in (left, right) if self.usable(i) is not None]
                if bad:
                    self.drop_images(bad)
                    continue
                added.append(self.push(left, right))
        return [p for p in added if p in self._queue]

    def _next_pairs(self, n: int) -> list[tuple[int, int]]:
        session = self.catalog.votes.session
        ctx = PairContext(self.pool(), session.rng, session.seen, topk=self.catalog.settings.topk)
        return select_pairs(ctx, self._pick(ctx), n, avoid=[p.ids for p in self._queue])

    def opponent_for(self, image_id: int, pool: Pool | None = None) -> int | None:
        """An opponent for ``image_id`` (a new image, say), drawn with weight ``sigma / (|mu - mu_new| + 1)``
        (the ``spec`` strategy's second pick: uncertain images of similar skill), never forming a pair judged
        in the session or already queued.

        Returns:
            The opponent's image id, or None when ``image_id`` is not in the pool or no opponent is left.
        """
        pool = self.pool() if pool is None else pool
        k = pool.index_of(image_id)
        if k is None or len(pool) < 2:
            return None
        w = pool.sigma / (np.abs(pool.mu - pool.mu[k]) + 1.0)
        w[k] = 0.0
        seen = self.catalog.votes.session.seen
        queued = {p.key for p in self._queue}
        for _ in range(_OPPONENT_TRIES):
            if w.sum() <= 0:
                return None
            j = weighted_choice(self.rng, w)
            opp = int(pool.ids[j])
            key = pair_key(int(image_id), opp)
            if key not in seen and key not in queued:
                return opp
            w[j] = 0.0
        return None

    def introduce(self, image_ids: Iterable[int]) -> list[Pair]:
        """Queue each of ``image_ids`` (new images, after a rescan) against an opponent from
        :meth:`opponent_for`, sides at random, while the queue is shorter than :attr:`depth`; images (or
        opponents) that fail the check are passed over. Returns the pairs queued."""
        pool = self.pool()
        out: list[Pair] = []
        for nid in image_ids:
            if len(self._queue) >= self._depth:
                break
            opp = self.opponent_for(int(nid), pool)
            if opp is None or self.usable(int(nid)) is not None or self.usable(opp) is not None:
                continue
            left, right = (int(nid), opp) if self.rng.random() < 0.5 else (opp, int(nid))
            out.append(self.push(left, right))
        return out

    # ------------------------------------------------------------------ judging
    def record(
        self,
        pair: Pair | int,
        outcome: str,
        decision_ms: float | None = None,
        *,
        shown: tuple[object, object] | None = None,
    ) -> Match:
        """Record a judgement of ``pair`` through the vote log, retire the pair and refill the queue.

        Args:
            pair: a queued or retired :class:`Pair`, or its ``pid``.
            outcome: ``"left"``, ``"right"``, ``"draw"`` or ``"skip"`` (see :data:`OUTCOMES`).
            decision_ms: time to decide, milliseconds; values outside 0..86,400,000 (a day) are stored as None.
            shown: (left id, right id) the judge saw, checked against the pair (a browser out of step); ids of
                any type are compared as given, so a malformed message is an error, never a wrong vote.

        Returns:
            The stored match.

        Raises:
            InvalidArgumentError: unknown ``outcome``; ``shown`` differs from the pair; the pair was judged already.
            NotFoundError: unknown ``pid`` (never queued, or retired long ago), or an image left the catalog
                after it was queued (nothing is recorded; the pair and every queued pair holding that image leave
                the queue, which is refilled).
        """
        if outcome not in OUTCOMES:
            raise InvalidArgumentError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
        p = self.get(pair.pid if isinstance(pair, Pair) else int(pair))
        if p is None:
            raise NotFoundError(f"pair {pair.pid if isinstance(pair, Pair) else pair}: not queued in this panel")
        if p.pid in self._judged:
            raise InvalidArgumentError(f"pair {p.pid} was judged already")
        if shown is not None and tuple(shown) != p.ids:
            raise InvalidArgumentError(f"vote for pair {p.pid}: the browser shows {shown[0]} vs {shown[1]}, "
                                       f"Python queued {p.left} vs {p.right}")
        ms = decision_ms if isinstance(decision_ms, (int, float)) and not isinstance(decision_ms, bool) else None
        ms = float(ms) if ms is not None and 0 <= ms < 86_400_000 else None
        try:
            match = self.catalog.votes.vote(p.left, p.right, cast("Outcome", outcome), decision_ms=ms,
                                            voter=self.voter)
        except NotFoundError:  # an image left the catalog after it was queued: its pairs cannot be judged
            self.retire(p)
            present = self.catalog.images.names(p.ids)
            self.drop_images([i for i in p.ids if i not in present])
            self.fill()
            raise
        self._judged.add(p.pid)
        self._undo.append((match.id, p))
        del self._undo[:-UNDO_KEEP]
        if outcome == "skip":
            self.skips += 1
        else:
            self.votes += 1
        self.retire(p)
        self.fill()
        return match

    def undo(self) -> Undone | None:
        """Undo the last judgement recorded through this queue (exactly: :meth:`VoteLog.undo`); its pair goes back
        to the front of the queue when both images still pass the check (a pair pushed off the back is retired).

        Returns:
            What was undone, or None when there is nothing to undo.

        Raises:
            NotFoundError: the match was undone elsewhere already (it leaves this queue's undo stack).
        """
        if not self._undo:
            return None
        mid, pair = self._undo.pop()
        match = self.catalog.votes.undo(mid)
        assert match is not None  # undo(match_id) raises instead of returning None
        self._judged.discard(pair.pid)
        if match.kind == "skip":
            self.skips -= 1
        else:
            self.votes -= 1
        self._retired.pop(pair.pid, None)
        reason = next((r for r in (self.usable(i) for i in pair.ids) if r is not None), None)
        if reason is not None:
            return Undone(pair, match, False, reason)
        self._queue.insert(0, pair)
        while len(self._queue) > self._depth:
            self.retire(self._queue[-1])
        return Undone(pair, match, True)
