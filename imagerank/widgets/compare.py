"""The compare panel: keyboard-first A-vs-B voting (an anywidget; ``compare.js`` and ``compare.css`` beside this file).

Protocol (DESIGN §6). Python keeps a queue of the next ``queue_depth`` pairs in the model (``pairs``, synced) and
their thumbnails in the browser as binary buffers (custom messages, never base64). A key press advances the
browser's queue at once and then reports the vote; Python rates, persists and refills. Messages:

browser → Python (``type``):
    ``ready``                      a view is listening: Python (re)sends the thumbnails of every queued pair
    ``vote``   pid, left, right, outcome ("left" | "right" | "draw" | "skip"), ms (time to decide, milliseconds)
    ``undo``                       undo this panel's last judgement; the pair returns to the front of the queue
    ``rescan``                     rescan the folders; new images enter the upcoming pairs
    ``flag``   pid (or ids)        label both images of the pair (or the given ids) ``flag`` for review
    ``zoom``   id, width, height   the original, decoded with Pillow + EXIF orientation, fit into width x height
    ``broken`` id                  the browser could not decode a thumbnail: rebuild it or skip the image
    ``round``  rid, ids, best, worst, outcome, ms   best-of-N mode: round ``rid`` (``ids`` as shown) judged:
                                   ``best`` and ``worst`` (or null) are screen indices 0..N-1; ``outcome``
                                   "skip" skips it (then no best)
    ``mode``   size                2 = pairs, 3 or 4 = best-of-N rounds (sets ``group_size``)

Python → browser (``type``):
    ``images`` ids, px (the thumbnails' longest side, pixels) + one JPEG buffer per id; a later ``images`` with a
                                   larger px replaces an image's thumbnail (the sharper one for high-density screens);
    ``zoom`` id, width, height + one JPEG buffer;
    ``zoom_error`` id, reason (every ``zoom`` gets a ``zoom`` or a ``zoom_error``);  ``undone`` pid (None when
    there was nothing to undo). A panel action changes an image's status only when its file is certainly gone
    (``missing``) or its thumbnail cannot be rebuilt (``corrupt``, by the thumbnail pass).

Best-of-N mode (``group_size`` 3 or 4; the N key cycles pairs → 3 → 4 → pairs): the ``rounds`` trait holds the
queued rounds (``rid`` and the images in screen order), drawn from a :class:`~imagerank.pairing.RoundQueue`;
1..N pick the best, Shift+1..N marks the worst first, and the whole round is stored at once as one N-way
Plackett-Luce match when Python has committed it (the browser advances at once, as for pairs). U undoes the
panel's last judgement, pair or round, exactly (a round undone replies ``undone`` with pid None and its ``rid``).
``group_size`` and ``rounds`` are synced traits like the ones below.

State lives in synced traits (``pairs``, ``header``, ``top``, ``status``, ``skipped``, ``can_undo``), so two
views of one panel show the same thing. The browser sets ``thumb_px``: the device pixels of the longest side of an
image slot as drawn; above the cached size (``Settings.thumb_size``) Python sends the queued pairs again at the
larger cached size (:data:`~imagerank.media.thumbs.LARGE_THUMB_SIZE`), made in a background thread so a vote never
waits for a decode. The ``status`` line describes the last action: a vote clears it unless that vote has
something to say. :meth:`ComparePanel.handle_message` is the whole Python side of the
protocol: tests call it with message dicts and read the replies it returns, without a browser or kernel.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anywidget
import numpy as np
import traitlets as t
from PIL import Image

from ..errors import ImagerankError, InvalidArgumentError, NotFoundError
from ..pairing import GROUP_SIZES, OUTCOMES, ROUND_DEPTH_MAX, PairQueue, Pool, RoundQueue, get_strategy
from ..pairing.queue import JudgingQueue
from ..ratings.posterior import board_score, posterior_stability
from ..ratings.stability import default_k, topk_stability, widening_noise
from .common import LargeThumbs, Message, MessagePanel, as_int, prior_confidence, top_by_ordinal, zoom_jpeg
from .prefetch import AHEAD_PAIRS, ThumbPrefetch

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["OUTCOMES", "ComparePanel"]

log = logging.getLogger(__name__)
T = TypeVar("T")  # a queue's item: a Pair or a Round

_SKIPPED_KEEP = 20
_ZOOM_MIN, _ZOOM_MAX = 64, 4096


class ComparePanel(MessagePanel, anywidget.AnyWidget):
    """Two images side by side; ←/1 left wins, →/2 right wins, S skip, D draw, U undo, R rescan, F flag, Esc.

    Args:
        collection: the open :class:`~imagerank.collection.Collection` to vote on.
        strategy: pairing strategy name (see :func:`imagerank.list_strategies`). Default: the collection's
            session strategy, i.e. ``Settings.strategy``.
        blind: hide mu, sigma, the comparison count and the top-10 strip (no anchoring on current scores).
        queue_depth: pairs kept ready in the browser, 1..64 (DESIGN: 4–16). Default 8.
        refresh_every: recompute totals, stability and the top-10 strip every this many votes. Default 5.
        stability_samples: posterior samples for the stability figure (fewer for very large catalogs so one
            refresh stays under ~0.1 s: at most 4M normal draws). Default 200.
        voter: name stored with each match (default: the session's voter).
        group_size: 2 for pairs (default), 3 or 4 for best-of-N rounds (``min(queue_depth, 4)`` rounds queued).

    The header's *stability* is :func:`imagerank.ratings.stability.topk_stability` of the active images with
    ``k = min(Settings.topk, N // 4)``: the expected share of the current top-k (by ordinal ``mu - 3 sigma``) that
    is also top-k under a draw from the rating posterior, an estimate of the leaderboard's precision@k. About
    ``k / N`` before any vote; 1.0 when the top-k is settled.

    Raises:
        StrategyNotFoundError: ``strategy`` (or the settings' default) is not a registered strategy.
        InvalidArgumentError: ``queue_depth``, ``refresh_every``, ``stability_samples`` or ``group_size`` out of
            range.

    The queue itself (pairs, retired pairs, undo stack, refill, opponents for new images) is
    :attr:`pair_queue`, a :class:`~imagerank.pairing.PairQueue` holding ``queue_depth`` pairs shown in the browser
    plus :data:`~imagerank.widgets.prefetch.AHEAD_PAIRS` pairs ahead whose thumbnails a background thread makes
    (:class:`~imagerank.widgets.prefetch.ThumbPrefetch`), so a vote rarely decodes anything.
    """

    _esm = Path(__file__).parent / "compare.js"
    _css = Path(__file__).parent / "compare.css"

    panel_name = "compare panel"
    internal_note = "; the vote log is intact"

    panel_id = t.Unicode("").tag(sync=True)
    pairs = t.List(t.Dict()).tag(sync=True)
    blind = t.Bool(False).tag(sync=True)
    header = t.Dict().tag(sync=True)
    top = t.List(t.Dict()).tag(sync=True)
    status = t.Dict().tag(sync=True)
    skipped = t.List(t.Dict()).tag(sync=True)
    can_undo = t.Int(0).tag(sync=True)
    queue_depth = t.Int(8).tag(sync=True)
    thumb_px = t.Int(0).tag(sync=True)
    group_size = t.Int(2).tag(sync=True)
    rounds = t.List(t.Dict()).tag(sync=True)

    def __init__(
        self,
        collection: Collection,
        strategy: str | None = None,
        *,
        blind: bool = False,
        queue_depth: int = 8,
        refresh_every: int = 5,
        stability_samples: int = 200,
        voter: str | None = None,
        group_size: int = 2,
    ) -> None:
        _check_group_size(group_size)
        if not 1 <= as_int(queue_depth, "queue_depth") <= 64:
            raise InvalidArgumentError(f"queue_depth: expected 1..64 pairs, got {queue_depth!r}")
        if as_int(refresh_every, "refresh_every") < 1:
            raise InvalidArgumentError(f"refresh_every: expected >= 1 votes, got {refresh_every!r}")
        if as_int(stability_samples, "stability_samples") < 1:
            raise InvalidArgumentError(f"stability_samples: expected >= 1, got {stability_samples!r}")
        self._rng = np.random.default_rng()
        self._thumbs: dict[int, bytes] = {}
        self._names: dict[int, str] = {}
        self.collection = collection
        # Unknown strategy names fail here, loudly, with the list of known ones (before any widget exists).
        self._prefetch = ThumbPrefetch(collection.thumbnail_bytes)
        self.pair_queue = PairQueue(collection, _queued_depth(int(queue_depth)), strategy, check=self._queueable,
                                    voter=voter, rng=self._rng)
        self.round_queue = RoundQueue(collection, max(3, int(group_size)), min(int(queue_depth), ROUND_DEPTH_MAX),
                                      self.pair_queue.strategy, check=self._usable, voter=voter)
        super().__init__(panel_id=uuid.uuid4().hex, blind=bool(blind), queue_depth=int(queue_depth),
                         group_size=int(group_size))
        self.refresh_every = int(refresh_every)
        self.stability_samples = int(stability_samples)
        self._ready = False
        self._held: set[int] = set()  # ids whose thumbnails the browser holds (queue ∪ top at the last publish)
        self._stats: dict[str, Any] = {}
        self._stability: float | None = None
        self._mode = ""  # the rating model's one line (Collection.rating_model)
        self._k = 0
        self._since_refresh = 0
        self._flagged: set[int] = set()  # pids flagged in this panel (F twice on one pair labels once)
        self._large = LargeThumbs(collection, lambda c, b: self.send(c, b))
        self.observe(self._on_depth, names="queue_depth")
        self.observe(self._on_thumb_px, names="thumb_px")
        self.observe(self._on_group_size, names="group_size")
        self.on_msg(self._on_custom_msg)
        # the header's "taste prior" line follows the live prior's background refits as they land
        self._unsubscribe_prior = collection.prior.on_refit(self._on_prior_refit)
        self._fill()
        self._refresh()
        self._publish()

    def close(self) -> None:
        """Stop following the live prior and close the widget."""
        unsubscribe = getattr(self, "_unsubscribe_prior", None)  # absent when __init__ refused its arguments
        if unsubscribe is not None:
            unsubscribe()
        if getattr(self, "_large", None) is not None:
            self._large.stop()
        if getattr(self, "_prefetch", None) is not None:
            self._prefetch.stop()
        super().close()

    def _on_prior_refit(self) -> None:
        self.header = self._header()

    # ------------------------------------------------------------------ public, for tests and notebooks
    @property
    def strategy(self) -> str:
        """The pairing strategy's name."""
        return self.pair_queue.strategy

    @strategy.setter
    def strategy(self, name: str) -> None:
        get_strategy(name)
        self.pair_queue.strategy = name

    @property
    def voter(self) -> str | None:
        """The name stored with each match (None: the session's voter)."""
        return self.pair_queue.voter

    @voter.setter
    def voter(self, name: str | None) -> None:
        self.pair_queue.voter = name

    @property
    def queue(self) -> list[tuple[int, int]]:
        """The pairs queued in the browser as (left id, right id), front first (the front one is on screen)."""
        return [p.ids for p in self._window()]

    @property
    def votes(self) -> int:
        """Judgements made in this panel (wins and draws; skips are counted apart)."""
        return self.pair_queue.votes

    @property
    def large_thumbnails(self) -> bool:
        """True when the browser draws more device pixels than the cached thumbnails have (``thumb_px``), so the
        queued pairs are sent again at :data:`~imagerank.media.thumbs.LARGE_THUMB_SIZE`."""
        return self._large.wanted(self.thumb_px)

    def wait_thumbnails(self, timeout: float = 30.0) -> bool:
        """Wait until the background thread has sent every larger thumbnail asked for so far; True when it has
        (False after ``timeout`` seconds). For tests and scripts: the panel itself never waits."""
        return self._large.wait(timeout)

    def handle_message(self, content: dict[str, Any], buffers: Sequence[Any] | None = None) -> list[Message]:
        """Handle one message from the browser (see the module docstring) and return the replies it sent.

        Never raises: bad input and failures become a ``status`` with level ``error`` (and a log record), so a
        bad message cannot break the panel. Each reply is (content, [bytes buffers]) as also sent to the
        browser through the widget's comm.
        """
        with self._prefetch.paused():  # the thumbnail worker waits while a message is handled
            return self._handle(content)

    def _handle(self, content: dict[str, Any]) -> list[Message]:
        return self._dispatch(content, {
            "ready": self._on_ready,
            "vote": self._on_vote,
            "undo": self._on_undo,
            "rescan": self._on_rescan,
            "flag": self._on_flag,
            "zoom": self._on_zoom,
            "broken": self._on_broken,
            "round": self._on_round,
            "mode": self._on_mode,
        })

    # ------------------------------------------------------------------ comm plumbing

    def _on_depth(self, change: dict[str, Any]) -> None:
        self.pair_queue.depth = _queued_depth(int(change["new"]))
        self.round_queue.depth = min(int(change["new"]), ROUND_DEPTH_MAX)
        self._fill()
        self._publish()

    def _on_thumb_px(self, change: dict[str, Any]) -> None:
        if self.large_thumbnails and self._ready:
            self._large.ask(self._queued_ids())

    # ------------------------------------------------------------------ handlers
    def _on_ready(self, m: dict[str, Any]) -> None:
        self._ready = True
        self._large.reset()  # a new view holds only what is sent from now on
        ids = self._wanted_ids()
        self._send_images(ids)
        self._held = set(ids)

    def _judgeable(self, q: JudgingQueue[T], item_id: int, kind: str) -> T | None:
        """The queued or retired ``kind`` (``pair`` / ``round``) ``item_id`` when it can take a vote now, else None
        with the reason reported (this panel no longer knows it, or another view judged it). A vote is a new
        action: the last action's status line is cleared."""
        item = q.get(item_id)
        if item is None:
            self._report(f"a vote for {kind} {item_id}, which this panel no longer knows, was ignored", "warning")
            return None
        if q.is_judged(item_id):
            self._report(f"{kind} {item_id} was already judged (in another view); the second vote was ignored",
                         "warning")
            self._publish()
            return None
        self._large.touch()
        if self.status.get("text"):  # the last action's message is about that action, not this one
            self._status_seq += 1
            self.status = {"text": "", "level": "info", "seq": self._status_seq}
        return item

    def _on_vote(self, m: dict[str, Any]) -> None:
        pid = as_int(m.get("pid"), "pid")
        outcome = m.get("outcome")
        if outcome not in OUTCOMES:
            raise InvalidArgumentError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
        q = self.pair_queue
        pair = self._judgeable(q, pid, "pair")
        if pair is None:
            return
        shown = (m.get("left"), m.get("right")) if "left" in m else None
        try:
            q.record(pair, str(outcome), m.get("ms"), shown=shown)
            if self.rounds_mode:  # a late pair vote after a switch to rounds: no pairs queued in this mode
                q.clear()
        except NotFoundError:  # an image left the catalog: its pairs left the queue; show the new front
            self._publish()
            raise
        self._judged(str(outcome))

    def _judged(self, outcome: str) -> None:
        """After a pair's or a round's judgement was stored: count it, warn when the queue starves, refresh the
        ratings every ``refresh_every`` judgements, and publish."""
        if outcome != "skip":
            self._stats["comparisons"] = self._stats.get("comparisons", 0) + 1
        self._warn_if_starved()
        self._since_refresh += 1
        if self._since_refresh >= self.refresh_every:
            self._refresh()
        self._publish()

    def _on_undo(self, m: dict[str, Any]) -> None:
        if (self.round_queue.last_match_id or 0) > (self.pair_queue.last_match_id or 0):
            self._undo_round()  # the panel's last judgement was a round
            return
        try:
            done = self.pair_queue.undo()
        except NotFoundError as e:
            self._report(f"undo: {e}", "warning")
            self._emit({"type": "undone", "pid": None})
            self._publish()
            return
        if done is None:
            self._report("nothing to undo in this panel")
            self._emit({"type": "undone", "pid": None})
            return
        if done.match.kind != "skip":
            self._stats["comparisons"] = max(0, self._stats.get("comparisons", 0) - 1)
        pair = done.pair
        if done.requeued:
            self._send_images(pair.ids)  # the browser may have let them go
            self._report(f"undone: {self._name(pair.left)} vs {self._name(pair.right)} is back")
            self._emit({"type": "undone", "pid": pair.pid})
        else:
            self._report("undone; the pair is not shown again (an image is no longer available)", "warning")
            self._emit({"type": "undone", "pid": None})
        self._refresh(stability=False)
        self._publish()

    def _on_rescan(self, m: dict[str, Any]) -> None:
        known = set(self.collection.pool().ids.tolist())
        report = self.collection.scan(progress=False)
        new_ids = [int(i) for i in self.collection.pool().ids.tolist() if int(i) not in known]
        self.pair_queue.clear(keep_front=True)  # the pair on screen stays
        self.round_queue.clear(keep_front=True)  # so does the round on screen
        queued_new = [] if self.rounds_mode else self.pair_queue.introduce(new_ids)
        self._fill()
        self._refresh()
        self._publish()
        self._report(f"{report}; {len(new_ids)} new image(s), {len(queued_new)} queued next")

    def _on_flag(self, m: dict[str, Any]) -> None:
        if m.get("ids") is not None:
            ids = [as_int(i, "ids") for i in m["ids"]]
        else:
            pair = self.pair_queue.get(as_int(m.get("pid"), "pid"))
            if pair is None:
                raise InvalidArgumentError(f"flag: no queued pair {m.get('pid')!r}")
            ids = list(pair.ids)
            if pair.pid in self._flagged:
                self._report("already flagged for review: " + ", ".join(self._name(i) for i in ids))
                return
            self._flagged.add(pair.pid)
        for i in ids:
            self.collection.images.add_label(i, "flag", note="flagged for review in the compare panel")
        self._report("flagged for review: " + ", ".join(self._name(i) for i in ids))

    def _on_zoom(self, m: dict[str, Any]) -> None:
        """Reply ``zoom`` with the original, or ``zoom_error`` with the reason: every zoom request gets one of the
        two (the browser's caption waits for it). The status changes only when an active image's file is gone
        (``missing``); a decode failure, an unreadable file or a refused size leaves the status as it is."""
        raw_id = m.get("id")
        image_id: int | None = None
        try:
            image_id = as_int(raw_id, "id")
            width = min(max(as_int(m.get("width", 1600), "width"), _ZOOM_MIN), _ZOOM_MAX)
            height = min(max(as_int(m.get("height", 1200), "height"), _ZOOM_MIN), _ZOOM_MAX)
            data, size, original = self._zoom_jpeg(image_id, width, height)
        except Exception as e:  # whatever failed, the browser gets its answer
            if not isinstance(e, (OSError, ValueError, SyntaxError, ImagerankError, Image.DecompressionBombError)):
                log.exception("compare panel: zoom of %r failed", raw_id)
            reason = f"{type(e).__name__}: {e}"[:300]
            self._emit({"type": "zoom_error", "id": raw_id if image_id is None else image_id, "reason": reason})
            name = repr(raw_id) if image_id is None else self._name(image_id)
            self._report(f"cannot show {name} larger: {reason}", "warning")
            return
        self._emit(
            {"type": "zoom", "id": image_id, "width": size[0], "height": size[1], "original": list(original),
             "name": self._name(image_id)},
            [data],
        )

    def _on_broken(self, m: dict[str, Any]) -> None:
        image_id = as_int(m.get("id"), "id")
        self._thumbs.pop(image_id, None)
        self._prefetch.forget(image_id)
        try:
            row = self.collection.images.get(image_id)
        except NotFoundError:
            self._report(f"the browser reported a broken thumbnail for image {image_id}, which is not in the "
                         "catalog; ignored", "warning")
            return
        if row["status"] == "active" and _gone(row["filepath"]):
            self._usable(image_id)  # marks it missing (a rebuild would call it corrupt) and reports the skip
        else:
            self.collection.build_thumbnails([image_id], progress=False, force=True)
            reason = self._usable(image_id)
            if reason is None:
                self._send_images([image_id])
                return
            self._skip(image_id, f"its thumbnail cannot be shown ({reason})")
        self.pair_queue.drop_images({image_id})
        self.round_queue.drop_images({image_id})
        self._fill()
        self._publish()

    # ------------------------------------------------------------------ best-of-N rounds
    @property
    def rounds_mode(self) -> bool:
        """True in best-of-N mode (``group_size`` 3 or 4), False for pairs."""
        return int(self.group_size) > 2

    @property
    def round_ids(self) -> list[tuple[int, ...]]:
        """The queued rounds' image ids in screen order, front first (the front one is on screen)."""
        return [r.ids for r in self.round_queue]

    @t.validate("group_size")
    def _valid_group_size(self, proposal: dict[str, Any]) -> int:
        return _check_group_size(proposal["value"])

    def _on_group_size(self, change: dict[str, Any]) -> None:
        """Switch between pairs and rounds (or between 3 and 4): the other mode's queue is emptied (its late votes
        are still accepted), this mode's is filled, and the status says which keys do what."""
        new = int(change["new"])
        self.pair_queue.clear()
        self.round_queue.clear()
        if new > 2:
            self.round_queue.size = new
        self._fill()
        self._publish()
        if new > 2:
            self._report(f"best of {new}: 1–{new} picks the best, Shift+1–{new} marks the worst first, S skips, "
                         f"U undoes, N switches to {'best of 4' if new == 3 else 'pairs'}")
        else:
            self._report("pairs: ←/1 left wins, →/2 right wins, N switches to best of 3")

    def _on_mode(self, m: dict[str, Any]) -> None:
        size = _check_group_size(m.get("size"))
        if size == self.group_size:
            self._publish()  # a view out of step gets the current state again
            return
        self.group_size = size

    def _on_round(self, m: dict[str, Any]) -> None:
        rid = as_int(m.get("rid"), "rid")
        outcome = m.get("outcome", "best")
        if outcome not in ("best", "skip"):
            raise InvalidArgumentError(f"outcome: expected best or skip, got {outcome!r}")
        q = self.round_queue
        rnd = self._judgeable(q, rid, "round")
        if rnd is None:
            return
        q.voter = self.voter
        try:
            q.record(rnd, m.get("best"), m.get("worst"), m.get("ms"), skip=outcome == "skip", shown=m.get("ids"),
                     refill=self.rounds_mode)
        except NotFoundError:  # an image left the catalog: its rounds left the queue; show the new front
            self._publish()
            raise
        self._judged(str(outcome))

    def _undo_round(self) -> None:
        try:
            done = self.round_queue.undo()
        except NotFoundError as e:
            self._report(f"undo: {e}", "warning")
            self._emit({"type": "undone", "pid": None, "rid": None})
            self._publish()
            return
        if done is None:  # pragma: no cover (called only when the round queue has something to undo)
            return
        if done.match.kind != "skip":
            self._stats["comparisons"] = max(0, self._stats.get("comparisons", 0) - 1)
        rnd = done.round
        names = ", ".join(self._name(i) for i in rnd.ids)
        if done.requeued and self.rounds_mode:
            self._send_images(rnd.ids)  # the browser may have let them go
            self._report(f"undone: the round of {names} is back")
            self._emit({"type": "undone", "pid": None, "rid": rnd.rid})
        else:
            if done.requeued:  # undone in pairs mode: the log is exact; the round is not shown again
                self.round_queue.retire(rnd)
            why = done.reason or "the panel shows pairs now"
            self._report(f"undone: the round of {names}; it is not shown again ({why})", "warning")
            self._emit({"type": "undone", "pid": None, "rid": None})
        self._refresh(stability=False)
        self._publish()

    def _queued_ids(self) -> list[int]:
        """Image ids of the pairs in the browser's window and of the queued rounds, front first, each once (the
        look-ahead pairs are the prefetch's)."""
        return list(dict.fromkeys([*self._window_ids(), *self.round_queue.image_ids()]))

    def _rounds_state(self, pool: Pool) -> list[dict[str, Any]]:
        return [{"rid": r.rid, "images": [self._image_state(i, pool) for i in r.ids]} for r in self.round_queue]

    # ------------------------------------------------------------------ queue
    def _fill(self) -> None:
        """Top the queue up (see :meth:`PairQueue.fill`; in best-of-N mode the rounds, :meth:`RoundQueue.fill`);
        say so when there is too little to pair."""
        if self.rounds_mode:
            self.round_queue.strategy = self.strategy
            self.round_queue.fill()
        else:
            self.pair_queue.fill()
        self._warn_if_starved()

    def _warn_if_starved(self) -> None:
        q = self.pair_queue
        if len(q) < q.depth and len(q.pool()) < 2:
            self._report("fewer than two active images: add images to the workspace folders and press R", "warning")

    def _window(self) -> list[Any]:
        """The queued pairs shown in the browser (the first ``queue_depth``; the rest are the look-ahead)."""
        return self.pair_queue.pairs[: self.queue_depth]

    def _window_ids(self) -> list[int]:
        return list(dict.fromkeys(i for p in self._window() for i in p.ids))

    def _settle(self) -> None:
        """Make sure every pair shown in the browser has its thumbnails (pairs with an image that cannot be shown
        leave the queue, reported, and the queue is refilled), then hand the whole queue to the prefetch."""
        q = self.pair_queue
        for _ in range(q.depth + 1):
            bad = [i for i in self._window_ids() if self._usable(i) is not None]
            # images the worker could not decode (queued ahead, or already out of the queue): report them now
            bad += [i for i in self._prefetch.failed() if i not in bad and self._usable(i) is not None]
            if not bad:
                break
            q.drop_images(bad)
            self._fill()
        self._prefetch.ask(i for i in [*q.image_ids(), *(int(d["id"]) for d in self.top)] if i not in self._thumbs)

    def _queueable(self, image_id: int) -> str | None:
        """The queue's check (cheap: the catalog row and the file); the thumbnail is made ahead by the prefetch
        and checked when the pair enters the browser's window (:meth:`_settle`)."""
        return self._usable(image_id, thumbnail=False)

    def _usable(self, image_id: int, *, thumbnail: bool = True) -> str | None:
        """None when the image can be shown (thumbnail bytes cached; with ``thumbnail`` False the bytes are not
        needed yet); else the reason it was skipped (a missing file is marked ``missing``, an undecodable one
        ``corrupt``; both are reported)."""
        if image_id in self._thumbs:
            return None
        try:
            row = self.collection.images.get(image_id)
        except NotFoundError:
            return "not in the catalog"
        self._names[int(image_id)] = row["filename"]
        if row["status"] != "active":
            if thumbnail and row["status"] == "corrupt" and self._prefetch.take(image_id)[0]:
                # the prefetch found it undecodable (the thumbnail pass marked it corrupt): report the skip here
                self._prefetch.forget(image_id)
                why = row["status_reason"] or "no thumbnail could be made"
                self._skip(image_id, f"cannot be decoded: {why}", row["filepath"])
                return "cannot be decoded"
            return f"status {row['status']}" + (f" ({row['status_reason']})" if row["status_reason"] else "")
        if _gone(row["filepath"]):
            self.collection.images.set_status(image_id, "missing", "file not found when queued for comparison")
            self._skip(image_id, "file not found", row["filepath"])
            return "file not found"
        if not thumbnail:
            return None
        data = self._thumbnail(image_id)
        if data is None:
            why = self.collection.images.get(image_id)["status_reason"] or "no thumbnail could be made"
            self._skip(image_id, f"cannot be decoded: {why}", row["filepath"])
            return "cannot be decoded"
        self._thumbs[int(image_id)] = data
        return None

    def _thumbnail(self, image_id: int) -> bytes | None:
        """The thumbnail's bytes: from the prefetch when its worker made it, else made here."""
        done, data = self._prefetch.take(image_id)
        return data if done else self.collection.thumbnail_bytes(image_id)

    def _skip(self, image_id: int, reason: str, path: str | None = None) -> None:
        name = self._name(image_id)
        known: int | None = int(image_id)
        if path is None:
            try:
                path = self.collection.images.get(image_id)["filepath"]
            except NotFoundError:  # a failure row may not point at an image the catalog does not have
                known = None
        self.collection.images.record_failures([(known, path, "compare", reason)])
        self.skipped = [*self.skipped, {"id": int(image_id), "name": name, "reason": reason}][-_SKIPPED_KEEP:]
        self._report(f"skipped {name}: {reason}", "warning")

    # ------------------------------------------------------------------ state
    def _name(self, image_id: int) -> str:
        image_id = int(image_id)
        if image_id not in self._names:
            self._load_names([image_id])
        return self._names.get(image_id, f"#{image_id}")

    def _load_names(self, ids: Iterable[int]) -> None:
        missing = [int(i) for i in ids if int(i) not in self._names]
        if missing:
            self._names.update(self.collection.images.names(missing))

    def _image_state(self, image_id: int, pool: Pool) -> dict[str, Any]:
        d: dict[str, Any] = {"id": int(image_id), "name": self._name(image_id)}
        if not self.blind:
            k = pool.index_of(image_id)
            if k is not None:
                d.update(mu=round(float(pool.mu[k]), 3), sigma=round(float(pool.sigma[k]), 3), n=int(pool.count[k]))
            else:
                row = dict(self.collection.image(image_id))
                d.update(mu=round(row["mu"], 3), sigma=round(row["sigma"], 3), n=int(row["comparison_count"]))
        return d

    def _refresh(self, *, stability: bool = True) -> None:
        """Recompute totals (catalog counts), the stability estimate and the top-10 strip."""
        self._since_refresh = 0
        self._stats = self.collection.stats()
        pool = self.collection.pool()
        n = len(pool)
        self._k = default_k(n, self.collection.settings.topk)
        # the consistent-judge mode ranks by the EP posterior (never waits for a rebuild in flight)
        snap = self.collection.posterior.peek()
        post = snap if snap is not None and snap[3].consistent and np.array_equal(snap[0], pool.ids) else None
        self._mode = "" if snap is None else snap[3].reason
        if stability:
            if n >= 2:
                samples = max(32, min(self.stability_samples, 4_000_000 // n))
                noise = widening_noise(self.collection.prior.peek()[1])  # the judge sets it while a prior is on
                self._stability = (posterior_stability(post[1], post[2], self._k, samples=samples, rng=self._rng,
                                                       ratio=post[3].ratio)
                                   if post is not None else
                                   topk_stability(pool.mu, pool.sigma, self._k, samples=samples, rng=self._rng,
                                                  judge_noise=noise))
            else:
                self._stability = None
        if self.blind or n == 0:
            self.top = []
            return
        ranked = pool if post is None else Pool.from_arrays(pool.ids, board_score(post[1], post[2]),
                                                             np.zeros(n), pool.count)
        idx, ordinal = top_by_ordinal(ranked, 10)  # the leaderboard's order
        self._load_names(pool.ids[idx].tolist())
        self.top = [
            {"rank": r + 1, "id": int(pool.ids[i]), "name": self._name(int(pool.ids[i])),
             "ordinal": round(float(ordinal[i]), 2)}
            for r, i in enumerate(idx.tolist())
        ]

    def _header(self) -> dict[str, Any]:
        s = self._stats
        prior_status, prior_report = self.collection.prior.peek()  # never waits for a refit in flight
        return {
            "votes": self.pair_queue.votes + self.round_queue.votes,
            "skips": self.pair_queue.skips + self.round_queue.skips,
            "comparisons": int(s.get("comparisons", 0)),
            "images": int(s.get("images", 0)),
            "active": int(s.get("active", 0)),
            "missing": int(s.get("missing", 0)),
            "corrupt": int(s.get("corrupt", 0)),
            "stability": None if self._stability is None else round(self._stability, 3),
            "k": self._k,
            "strategy": self.strategy,
            "session": self.collection.session.id,
            "prior": prior_status,
            "prior_confidence": prior_confidence(prior_report),
            "rating_model": self._mode,
        }

    def _wanted_ids(self) -> list[int]:
        ids = self._queued_ids()
        ids.extend(int(d["id"]) for d in self.top)
        return list(dict.fromkeys(ids))

    def _send_images(self, ids: Iterable[int]) -> list[int]:
        """Send thumbnails (binary JPEG buffers) for ``ids``; only once a view has said ``ready``. Returns the ids
        sent."""
        out_ids: list[int] = []
        if not self._ready:
            return out_ids
        bufs = []
        for i in ids:
            data = self._thumbs.get(int(i))
            if data is None:
                data = self._thumbnail(int(i))
                if data is None:
                    continue
                self._thumbs[int(i)] = data
            out_ids.append(int(i))
            bufs.append(data)
        if out_ids:
            self._emit({"type": "images", "ids": out_ids, "mime": "image/jpeg", "px": self.collection.thumbs.size},
                       bufs)
            if self.large_thumbnails:
                queued = set(self._queued_ids())
                self._large.ask(i for i in out_ids if i in queued)
        return out_ids

    def _publish(self) -> None:
        """Send thumbnails the browser does not hold yet, then sync the model's state."""
        self._settle()
        wanted = self._wanted_ids()
        fresh = [i for i in wanted if i not in self._held]
        # the window's thumbnails are ready (_settle); top-10 images new to the strip are sent once the prefetch
        # has made them (a later publish), so a vote that changes the strip decodes nothing on this thread
        window = set(self._queued_ids())  # the pairs in the browser's window and the queued rounds
        sent = self._send_images(i for i in fresh if i in window or i in self._thumbs or self._prefetch.ready(i))
        if self._ready:
            self._held = {i for i in wanted if i in self._held or i in sent}
        keep = set(wanted)
        self._large.keep(self._queued_ids())
        self._thumbs = {i: b for i, b in self._thumbs.items() if i in keep}
        pool = self.collection.pool()
        self._load_names(wanted)
        with self.hold_sync():
            self.pairs = [
                {"pid": p.pid, "left": self._image_state(p.left, pool), "right": self._image_state(p.right, pool)}
                for p in self._window()
            ]
            self.rounds = self._rounds_state(pool)
            self.header = self._header()
            self.can_undo = self.pair_queue.can_undo + self.round_queue.can_undo

    # ------------------------------------------------------------------ zoom
    def _zoom_jpeg(self, image_id: int, width: int, height: int) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
        """The original of ``image_id`` upright, fit into ``width`` x ``height`` pixels, as JPEG (quality 90).

        Raises:
            NotFoundError: no such image, or it is not active (the message gives its status and reason).
            FileNotFoundError: the file is gone (an active image is then marked ``missing``).
            OSError / ValueError / SyntaxError / PIL.Image.DecompressionBombError: the file cannot be read or
                decoded, or has more pixels than ``Settings.max_image_pixels`` (the status is left as it is).
        """
        row = self.collection.image(image_id)
        path = row["filepath"]
        if row["status"] != "active":
            why = f" ({row['status_reason']})" if row["status_reason"] else ""
            raise NotFoundError(f"image {image_id} is {row['status']}{why}; only active images are shown")
        if _gone(path):
            self.collection.images.set_status(image_id, "missing", "file not found when opened in the compare panel")
            raise FileNotFoundError(f"{path} is gone")
        return zoom_jpeg(path, width, height, self.collection.settings.max_image_pixels)


def _check_group_size(value: Any) -> int:
    """``value`` as a group size (2 = pairs, 3 or 4 = best-of-N rounds).

    Raises:
        InvalidArgumentError: anything else, naming ``group_size``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in GROUP_SIZES:
        raise InvalidArgumentError(f"group_size: expected one of {GROUP_SIZES} (2 = pairs, 3 or 4 = best-of-N "
                                   f"rounds), got {value!r}")
    return int(value)


def _queued_depth(shown: int) -> int:
    """Pairs queued in Python for ``shown`` pairs in the browser: the look-ahead on top, at most 64."""
    return min(64, shown + AHEAD_PAIRS)


def _gone(path: str) -> bool:
    """True only when ``path`` certainly does not exist (no such file, or a parent is not a folder); a file that
    cannot be checked (permission, I/O error, a name the file system refuses) is not called gone."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):
        return False
    return False
