"""The compare panel's best-of-N rounds (``group_size`` 3 or 4): the mode switch, a round's judgement and its undo.

:class:`RoundsMixin` is one of the bases of :class:`~imagerank.widgets.compare.ComparePanel` (whose module
docstring describes the browser messages); its methods are typed against :class:`_Panel`, the part of the panel
they use, so mypy checks them without this module importing the panel. Moved unchanged from ``compare.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import traitlets as t

from ..errors import InvalidArgumentError, NotFoundError
from ..pairing import GROUP_SIZES, Pool, RoundQueue
from .common import as_int

if TYPE_CHECKING:
    from ..pairing import PairQueue
    from ..pairing.queue import JudgingQueue

__all__ = ["RoundsMixin"]

T = TypeVar("T")  # a queue's item: a Pair or a Round


class _Panel(Protocol):
    """What the rounds' handlers use of the compare panel."""

    group_size: int
    pair_queue: PairQueue
    round_queue: RoundQueue
    _stats: dict[str, Any]

    @property
    def voter(self) -> str | None: ...
    @property
    def rounds_mode(self) -> bool: ...
    def _fill(self) -> None: ...
    def _publish(self) -> None: ...
    def _report(self, text: str, level: str = "info") -> None: ...
    def _emit(self, content: dict[str, Any], buffers: Sequence[bytes] | None = None) -> None: ...
    def _name(self, image_id: int) -> str: ...
    def _send_images(self, ids: Iterable[int]) -> list[int]: ...
    def _refresh(self, *, stability: bool = True) -> None: ...
    def _image_state(self, image_id: int, pool: Pool) -> dict[str, Any]: ...
    def _judgeable(self, q: JudgingQueue[T], item_id: int, kind: str) -> T | None: ...
    def _judged(self, outcome: str) -> None: ...


class RoundsMixin:
    """Best-of-N mode of the compare panel: ``rounds_mode``, ``round_ids`` and the ``round`` / ``mode`` handlers."""

    @property
    def rounds_mode(self: _Panel) -> bool:
        """True in best-of-N mode (``group_size`` 3 or 4), False for pairs."""
        return int(self.group_size) > 2

    @property
    def round_ids(self: _Panel) -> list[tuple[int, ...]]:
        """The queued rounds' image ids in screen order, front first (the front one is on screen)."""
        return [r.ids for r in self.round_queue]

    @t.validate("group_size")
    def _valid_group_size(self, proposal: dict[str, Any]) -> int:
        return _check_group_size(proposal["value"])

    def _on_group_size(self: _Panel, change: dict[str, Any]) -> None:
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

    def _on_mode(self: _Panel, m: dict[str, Any]) -> None:
        size = _check_group_size(m.get("size"))
        if size == self.group_size:
            self._publish()  # a view out of step gets the current state again
            return
        self.group_size = size

    def _on_round(self: _Panel, m: dict[str, Any]) -> None:
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

    def _undo_round(self: _Panel) -> None:
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

    def _rounds_state(self: _Panel, pool: Pool) -> list[dict[str, Any]]:
        return [{"rid": r.rid, "images": [self._image_state(i, pool) for i in r.ids]} for r in self.round_queue]


def _check_group_size(value: Any) -> int:
    """``value`` as a group size (2 = pairs, 3 or 4 = best-of-N rounds).

    Raises:
        InvalidArgumentError: anything else, naming ``group_size``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in GROUP_SIZES:
        raise InvalidArgumentError(f"group_size: expected one of {GROUP_SIZES} (2 = pairs, 3 or 4 = best-of-N "
                                   f"rounds), got {value!r}")
    return int(value)
