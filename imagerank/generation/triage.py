"""Triage of the generation tree: which A-vs-B question to ask next, and the kill-left walk (no widgets here).

The questions steer the tree: :func:`~imagerank.generation.policy.next_job` draws parents by their ratings, and
the user's kills stop branches. :class:`Triage` keeps one current :class:`Question` and answers four actions:

- **vote** (``left``, ``right``, ``draw`` or ``skip``): recorded through the catalog's
  :class:`~imagerank.catalog.VoteLog` exactly like the compare panel's votes (same ratings, same exact undo,
  the same replay by ``doctor``).
- **kill** an image on screen: :func:`imagerank.generation.tree.reject` (status ``rejected``; it is never a
  parent again, and its queued jobs are cancelled). The next question walks left (see below).
- **stop**: end a walk without a vote (the last kill was the root cause).
- **undo**: the last action of this triage, exactly: a vote through :meth:`VoteLog.undo`, a kill through
  :func:`~imagerank.generation.tree.restore` (active again); the question that was on screen comes back.

Pair questions, in this order (every pair counted once per kept match, skips included, so nothing is asked twice):

1. pairs of active candidates of the **final column** that no kept match has compared yet;
2. then the same in the other columns, right to left (the highest columns first: that is where ``next_job``
   draws parents, so those ratings steer the next jobs).

Inside a column the candidate with the fewest comparisons goes first (ties: lower id), beside the
fewest-compared candidate it has not met; sides are shuffled by a generator seeded with ``(seed, number of
matches)``, so the same database state gives the same question.

**The kill-left walk.** Killing candidate X on a pair question asks about X's parent P next: P on the left,
beside one of P's siblings S on the right (the best-rated active sibling by ``mu``, else a rejected one as a
reference, else P alone). The user looks for the root cause of what went wrong in X:

- kill P (it is bad too): the walk goes one column further left, to P's parent beside one of its siblings;
- kill S: S is rejected and P is shown beside another sibling;
- vote P against S, or stop: P is fine, so the last kill was the root cause; the walk ends and pair questions
  resume.

A walk also ends at the base column (a base candidate has no parent) and skips ancestors that are rejected
already. Source of the idea: the seed of issue 11 ("K kill → the panel walks left ... until the user kills the
root cause").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from ..catalog import CatalogLike, Match, as_catalog
from ..catalog.votes import Outcome, pair_key
from ..errors import InvalidArgumentError
from . import tree

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OUTCOMES", "Question", "Triage", "Undone", "voted_pairs"]

OUTCOMES = ("left", "right", "draw", "skip")
QuestionKind = Literal["pair", "walk", "done"]


@dataclass(frozen=True)
class Question:
    """One question on screen.

    Attributes:
        qid: increases with every new question of this :class:`Triage` (a browser names it with its action, so
            an action meant for an older question is refused, never applied to the wrong images).
        kind: ``pair`` (an A-vs-B triage pair), ``walk`` (the kill-left walk: ``left`` is the suspect, the killed
            candidate's nearest active ancestor, and ``right`` one of its siblings or None), ``done`` (nothing
            left to ask until new candidates come).
        left / right: candidate ids (None where there is none).
        step: the column's step name (None for ``done``).
        step_order: the column's order (None for ``done``).
        is_final: the question is about the final column.
        killed: the candidates killed in this walk, first killed first (empty for a pair question).
        unvoted: pairs never compared left in the question's column (``pair``), 0 otherwise.
        text: one line for a header, saying where in the triage or the walk the user is.
    """

    qid: int
    kind: QuestionKind
    left: int | None = None
    right: int | None = None
    step: str | None = None
    step_order: int | None = None
    is_final: bool = False
    killed: tuple[int, ...] = ()
    unvoted: int = 0
    text: str = ""

    @property
    def ids(self) -> tuple[int, ...]:
        """The candidate ids on screen, left first."""
        return tuple(i for i in (self.left, self.right) if i is not None)

    def as_dict(self) -> dict[str, Any]:
        """The question as JSON-ready values (the widget syncs this)."""
        return {"qid": self.qid, "kind": self.kind, "left": self.left, "right": self.right, "step": self.step,
                "step_order": self.step_order, "is_final": self.is_final, "killed": list(self.killed),
                "unvoted": self.unvoted, "text": self.text}


@dataclass(frozen=True)
class Undone:
    """What :meth:`Triage.undo` undid: ``action`` (``vote``, ``kill`` or ``stop``), ``match`` (the undone match,
    for a vote), ``image_id`` (the restored candidate, for a kill), ``question`` (the question back on screen)."""

    action: str
    question: Question
    match: Match | None = None
    image_id: int | None = None


@dataclass
class _Entry:
    action: str
    question: Question  # on screen before the action
    match_id: int | None = None
    image_id: int | None = None


@dataclass
class _Walk:
    killed: list[int] = field(default_factory=list)
    subject: int | None = None
    dismissed: set[int] = field(default_factory=set)  # siblings killed beside this subject


def voted_pairs(col: CatalogLike) -> set[tuple[int, int]]:
    """Every pair of candidates that a kept (not undone) match compared, skips included, as ``(low id, high
    id)``; a ranking of k images counts its k(k-1)/2 pairs."""
    cat = as_catalog(col)
    rows = cat.db.query(
        "SELECT a.image_id, b.image_id FROM match_entries a "
        "JOIN match_entries b ON b.match_id = a.match_id AND b.image_id > a.image_id "
        "JOIN matches m ON m.id = a.match_id "
        "JOIN images ia ON ia.id = a.image_id JOIN images ib ON ib.id = b.image_id "
        "WHERE m.undone = 0 AND ia.step_id IS NOT NULL AND ib.step_id IS NOT NULL")
    return {(int(r[0]), int(r[1])) for r in rows}


def _as_id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{name}: expected a candidate id (int), got {value!r}")
    return int(value)


class Triage:
    """The triage questions and the kill-left walk over one workspace's generation tree (module docstring).

    Args:
        col: the workspace (Catalog or Collection). Candidates are read from it at every question, so candidates
            a runner adds meanwhile (another thread or process) are asked about as they come.
        voter: name stored with each vote (default: the session's voter).
        seed: seeds the side shuffle (int >= 0).

    Raises:
        InvalidArgumentError: a negative or non-integer seed.
    """

    def __init__(self, col: CatalogLike, *, voter: str | None = None, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidArgumentError(f"seed: expected an integer >= 0, got {seed!r}")
        self.catalog = as_catalog(col)
        self.voter = voter
        self.seed = seed
        self._qid = 0
        self._walk: _Walk | None = None
        self._undo: list[_Entry] = []
        self.votes = 0
        self.kills = 0
        self.question = self._next()

    # ------------------------------------------------------------------ reading
    @property
    def can_undo(self) -> int:
        """Actions this triage can undo (votes, kills and stops, newest last)."""
        return len(self._undo)

    @property
    def in_walk(self) -> bool:
        """True while the kill-left walk is on."""
        return self._walk is not None

    def refresh(self) -> Question:
        """A fresh question when the current one is ``done`` or lost a candidate elsewhere (killed in another
        panel): call it when new candidates may have come. Otherwise the current question stays."""
        q = self.question
        stale = q.kind == "done" or self._not_active(q.ids if q.kind == "pair" else q.ids[:1])
        if stale:
            self.question = self._next()
        return self.question

    # ------------------------------------------------------------------ actions
    def vote(self, outcome: str, *, qid: int | None = None, decision_ms: float | None = None) -> Match:
        """Judge the question on screen: ``left``/``right`` wins, ``draw``, or ``skip`` (a skip match, so the pair
        is not asked again). In a walk, a vote (not a skip) compares the suspect with its sibling and ends the walk;
        a skip ends it too.

        Args:
            outcome: one of :data:`OUTCOMES`. qid: the question the judge saw (None: the current one).
            decision_ms: time to decide in milliseconds; outside 0..86,400,000 it is stored as None.

        Returns:
            The stored match.

        Raises:
            InvalidArgumentError: unknown outcome; ``qid`` is not the current question; the question has no pair
                (``done``, or a walk with the suspect alone: use :meth:`stop`).
        """
        if outcome not in OUTCOMES:
            raise InvalidArgumentError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
        q = self._check_qid(qid)
        if q.left is None or q.right is None:
            raise InvalidArgumentError(f"question {q.qid} ({q.kind}) has no pair to vote on; "
                                       + ("kill the suspect or stop the walk" if q.kind == "walk"
                                          else "nothing is left to triage"))
        ms = decision_ms if isinstance(decision_ms, (int, float)) and not isinstance(decision_ms, bool) else None
        ms = float(ms) if ms is not None and math.isfinite(ms) and 0 <= ms < 86_400_000 else None
        match = self.catalog.votes.vote(q.left, q.right, cast("Outcome", outcome), decision_ms=ms, voter=self.voter)
        self._undo.append(_Entry("vote", q, match_id=match.id))
        self.votes += 1
        self._walk = None  # a judgement in a walk: the suspect is not the cause, the walk ends
        self.question = self._next()
        return match

    def kill(self, image_id: int, *, qid: int | None = None, reason: str | None = None) -> Question:
        """Kill (reject) a candidate on screen and move to the next question of the walk (module docstring).

        Args:
            image_id: the left or right candidate of the current question.
            qid: the question the judge saw (None: the current one).
            reason: stored as the candidate's status reason (default says it was killed in triage).

        Returns:
            The next question.

        Raises:
            InvalidArgumentError: ``image_id`` is not on screen, or ``qid`` is not the current question.
        """
        q = self._check_qid(qid)
        image_id = _as_id(image_id, "image_id")
        if image_id not in q.ids:
            raise InvalidArgumentError(f"image_id: expected one of the candidates on screen {list(q.ids)}, "
                                       f"got {image_id}")
        status = tree.get_candidate(self.catalog, image_id)["status"]
        if status != "active":
            raise InvalidArgumentError(f"image_id: candidate {image_id} is {status} already (shown for reference); "
                                       "only an active candidate can be killed")
        tree.reject(self.catalog, image_id, reason or "killed in triage")
        self._undo.append(_Entry("kill", q, image_id=image_id))
        self.kills += 1
        if q.kind == "walk" and image_id == q.right:  # the sibling: same suspect, another sibling
            assert self._walk is not None
            self._walk.dismissed.add(image_id)
        else:
            killed = [*(self._walk.killed if self._walk else []), image_id]
            self._walk = _Walk(killed=killed, subject=self._active_ancestor(image_id))
            if self._walk.subject is None:  # the base column: the walk is over
                self._walk = None
        self.question = self._next()
        return self.question

    def stop(self, *, qid: int | None = None) -> Question:
        """End the walk without a vote (the last kill was the root cause); pair questions resume.

        Raises:
            InvalidArgumentError: no walk is on, or ``qid`` is not the current question.
        """
        q = self._check_qid(qid)
        if self._walk is None:
            raise InvalidArgumentError("stop: no kill-left walk is on (stop ends one)")
        self._undo.append(_Entry("stop", q))
        self._walk = None
        self.question = self._next()
        return self.question

    def undo(self) -> Undone | None:
        """Undo the last vote, kill or stop of this triage exactly; the question it answered comes back (a new
        ``qid``), with the walk as it was.

        Returns:
            What was undone, or None when there is nothing to undo.

        Raises:
            NotFoundError: the vote was undone elsewhere already (it leaves the undo stack).
        """
        if not self._undo:
            return None
        e = self._undo.pop()
        match = None
        if e.action == "vote":
            assert e.match_id is not None
            match = self.catalog.votes.undo(e.match_id)
            self.votes -= 1
        elif e.action == "kill":
            assert e.image_id is not None
            tree.restore(self.catalog, e.image_id)
            self.kills -= 1
        q = e.question
        self._walk = _Walk(killed=list(q.killed), subject=q.left) if q.kind == "walk" else None
        if self._walk is not None:
            self._walk.dismissed = self._dismissed_before(q)
        self._qid += 1
        self.question = replace(q, qid=self._qid)
        return Undone(e.action, self.question, match=match, image_id=e.image_id)

    # ------------------------------------------------------------------ internals
    def _dismissed_before(self, q: Question) -> set[int]:
        """Siblings killed beside the suspect of walk question ``q`` by actions still on the undo stack."""
        return {e.image_id for e in self._undo if e.action == "kill" and e.question.kind == "walk"
                and e.question.left == q.left and e.image_id == e.question.right and e.image_id is not None}

    def _check_qid(self, qid: int | None) -> Question:
        q = self.question
        if qid is not None and (isinstance(qid, bool) or not isinstance(qid, (int, np.integer)) or int(qid) != q.qid):
            raise InvalidArgumentError(f"qid: the action was meant for question {qid!r}, the current one is {q.qid} "
                                       "(the screen was out of step; nothing was recorded)")
        return q

    def _not_active(self, ids: tuple[int, ...]) -> bool:
        if not ids:
            return False
        rows = self.catalog.db.query(f"SELECT COUNT(*) FROM images WHERE status='active' AND id IN "
                                     f"({','.join('?' * len(ids))})", tuple(ids))
        return int(rows[0][0]) != len(ids)

    def _active_ancestor(self, image_id: int) -> int | None:
        """The nearest active ancestor of ``image_id`` (rejected ones are skipped), None at the base."""
        anc = tree.ancestry(self.catalog, image_id)
        up = anc[anc["id"] != image_id].sort_values("depth", ascending=False)
        act = up[up["status"] == "active"]
        return None if act.empty else int(act.iloc[0]["id"])

    def _next(self) -> Question:
        self._qid += 1
        df = tree.candidates_df(self.catalog)
        if self._walk is not None:
            q = self._walk_question(df)
            if q is not None:
                return q
            self._walk = None
        return self._pair_question(df)

    def _walk_question(self, df: pd.DataFrame) -> Question | None:
        w = self._walk
        assert w is not None
        subject = w.subject
        if subject is None or subject not in set(df["id"]):
            return None
        me = df[df["id"] == subject].iloc[0]
        if me["status"] != "active":  # killed elsewhere: walk on from it
            w.subject = self._active_ancestor(subject)
            return self._walk_question(df) if w.subject is not None else None
        if _isna(me["parent_id"]):
            sib = df[df["parent_id"].isna() & (df["step_id"] == me["step_id"]) & (df["id"] != subject)]
        else:
            sib = df[(df["parent_id"] == me["parent_id"]) & (df["id"] != subject)]
        sib = sib[~sib["id"].isin(w.dismissed) & ~sib["id"].isin(w.killed)]
        active = sib[sib["status"] == "active"].sort_values(["mu", "id"], ascending=[False, True])
        rejected = sib[sib["status"] == "rejected"].sort_values(["mu", "id"], ascending=[False, True])
        pick = active if not active.empty else rejected
        right = None if pick.empty else int(pick.iloc[0]["id"])
        last = w.killed[-1]
        step = str(me["step"])
        beside = (f"beside sibling #{right}" + (" (rejected, for reference)" if active.empty else "")
                  if right is not None else "alone (no sibling)")
        text = (f"Walk left: killed {' → '.join(f'#{k}' for k in w.killed)}; is #{subject} ({step}, column "
                f"{int(me['step_order']) + 1}) the cause? It is on the left, {beside}. "
                f"K then ← kills it too; a vote or S says it is fine (#{last} was the root cause).")
        return Question(qid=self._qid, kind="walk", left=subject, right=right, step=step,
                        step_order=int(me["step_order"]), is_final=bool(me["is_final"]), killed=tuple(w.killed),
                        text=text)

    def _pair_question(self, df: pd.DataFrame) -> Question:
        act = df[df["status"] == "active"]
        if act.empty:
            return Question(qid=self._qid, kind="done", text="No active candidates yet; the runner adds them.")
        voted = voted_pairs(self.catalog)
        n_matches = int(self.catalog.db.query("SELECT COUNT(*) FROM matches")[0][0])
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, n_matches]))
        for order in sorted(act["step_order"].unique(), reverse=True):
            col = act[act["step_order"] == order].sort_values(["comparison_count", "id"])
            ids = [int(i) for i in col["id"]]
            n, idset = len(ids), set(ids)
            if n < 2:
                continue
            done = sum(1 for k in voted if k[0] in idset and k[1] in idset)
            left_pairs = n * (n - 1) // 2 - done
            if left_pairs <= 0:
                continue
            pair = next(((a, b) for i, a in enumerate(ids) for b in ids[i + 1:] if pair_key(a, b) not in voted),
                        None)
            if pair is None:
                continue
            a, b = pair if rng.random() < 0.5 else (pair[1], pair[0])
            row = col.iloc[0]
            step, final = str(row["step"]), bool(row["is_final"])
            where = "final column" if final else f"column {int(order) + 1}"
            text = (f"{step} ({where}): {left_pairs} pair{'s' if left_pairs != 1 else ''} never compared. "
                    "←/→ the better one, K then ←/→ kills one, U undoes.")
            return Question(qid=self._qid, kind="pair", left=a, right=b, step=step, step_order=int(order),
                            is_final=final, unvoted=left_pairs, text=text)
        return Question(qid=self._qid, kind="done",
                        text=f"Every pair of active candidates is compared ({len(act)} active); new candidates "
                             "bring new questions.")

    def __repr__(self) -> str:
        return f"Triage({self.catalog.root}, question={self.question.kind} {list(self.question.ids)})"


def _isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
