"""``next_job``: which single job to run next, decided from the catalog's state.

The rule (the seed's, kept exactly):

1. Eligible parents are candidates that are ``active``, have fewer than N children (``max_children``; jobs queued
   or in flight with that parent count as children, so two runners never overshoot), and are not in the final
   step.
2. The highest step order among the eligible parents wins: finishing branches comes before starting new ones.
3. Inside that column one parent is drawn by the policy:

   - ``raffle`` (default, the seed's): a lottery weighted by tickets from the rating,
     ``tickets = clip(round(1000 * exp((mu - 25) / beta)), 1, 1_000_000)`` with OpenSkill's ``beta = 25/6``.
     An unrated candidate (no votes, no prior) has ``mu = 25``: 1,000 tickets. Each ``beta`` of rating above
     the default multiplies the odds by e (about 2.7): a candidate one beta above the default has 2,718
     tickets, one beta below 368; the clip keeps every candidate a chance (1 ticket) and bounds a runaway.
     Only ``mu`` counts: uncertainty does not buy tickets (that is what ``thompson`` is for).
   - ``thompson``: posterior (Thompson) sampling: every eligible candidate draws ``theta ~ Normal(mu, sigma)``
     and the largest ``theta`` wins, so a branch the votes have not seen (large ``sigma``) still gets tried
     (Thompson 1933; Russo et al., "A Tutorial on Thompson Sampling", 2018).
   - ``uniform``: every eligible candidate equally likely (the benchmark's baseline).

   The rating of a candidate nobody has voted on is the learned taste prior (the live prior:
   ``prior_mu``/``prior_sigma``, written by :class:`imagerank.training.prior.LivePrior`) when there is one, else
   the default (25, 25/3). A voted candidate uses its OpenSkill ``mu``/``sigma``.
4. When no parent is eligible and the active final candidates (plus jobs in flight in the final step) are fewer
   than T (``target_finals``), a new base job (no parent). Otherwise there is nothing to do: ``None``.

Deterministic: the random generator is seeded with ``(job_seed, number of jobs ever made)`` and candidates are
taken in id order, so the same database state and seed give the same job (and the same ComfyUI seed, drawn from
the same generator in ``[0, 2**32)``).

:func:`plan` is the pure rule over arrays (the property test and the simulation use it); :func:`next_job` reads
the catalog, plans and inserts the queued job in one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import ratings as R
from ..catalog import CatalogLike, as_catalog
from ..errors import InvalidArgumentError
from .jobs import Job, get_job, insert_job
from .steps import PipelineStep, list_steps

__all__ = ["POLICIES", "TICKETS_UNRATED", "CandidateState", "Plan", "next_job", "plan", "tickets"]

POLICIES = ("raffle", "thompson", "uniform")
TICKETS_UNRATED = 1000
TICKETS_MAX = 1_000_000
SEED_SPACE = 2**32


def tickets(mu: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Raffle tickets for ratings ``mu`` (float or array): ``clip(round(1000 * exp((mu - 25) / beta)), 1, 10**6)``
    as int64, with OpenSkill's default ``mu = 25`` and ``beta = 25/6`` (so the default rating has 1,000)."""
    z = (np.asarray(mu, dtype=float) - R.DEFAULT_MU) / R.BETA
    return np.clip(np.round(TICKETS_UNRATED * np.exp(np.clip(z, -50, 50))), 1, TICKETS_MAX).astype(np.int64)


@dataclass(frozen=True)
class CandidateState:
    """What :func:`plan` needs of one candidate: ``id``, ``order`` (its step's order), ``active``, ``children``
    (child_count plus open jobs with it as parent), ``mu``/``sigma`` (the rating used: votes, else prior, else
    default)."""

    id: int
    order: int
    active: bool
    children: int
    mu: float = R.DEFAULT_MU
    sigma: float = R.DEFAULT_SIGMA


@dataclass(frozen=True)
class Plan:
    """What to run: ``order`` (the step's order), ``parent_id`` (None: a base job), ``seed`` (ComfyUI seed in
    ``[0, 2**32)``), ``eligible`` (how many parents were eligible in the chosen column), ``weight`` (the chosen
    parent's tickets for ``raffle``, its draw for ``thompson``, 1 for ``uniform`` and base jobs)."""

    order: int
    parent_id: int | None
    seed: int
    eligible: int
    weight: float


def plan(
    candidates: Sequence[CandidateState],
    orders: Sequence[int],
    *,
    max_children: int,
    target_finals: int,
    open_finals: int = 0,
    policy: str = "raffle",
    rng: np.random.Generator,
) -> Plan | None:
    """The rule of the module docstring over plain values.

    Args:
        candidates: every candidate (any status), in id order.
        orders: the step orders, ascending (the last is the final step; the first the base step).
        max_children: N >= 1. target_finals: T >= 1.
        open_finals: jobs queued or in flight whose step is the final one.
        policy: ``raffle``, ``thompson`` or ``uniform``.
        rng: the generator (``next_job`` seeds it from the database state).

    Returns:
        The :class:`Plan`, or None when nothing is to be done.

    Raises:
        InvalidArgumentError: no steps, an unknown policy, N or T < 1.
    """
    if not orders:
        raise InvalidArgumentError("the pipeline has no steps; add them with generation.steps.add_step first")
    if policy not in POLICIES:
        raise InvalidArgumentError(f"policy: expected one of {', '.join(POLICIES)}, got {policy!r}")
    if max_children < 1 or target_finals < 1:
        raise InvalidArgumentError(f"max_children and target_finals: expected integers >= 1, got {max_children} "
                                   f"and {target_finals}")
    final = orders[-1]
    eligible = [c for c in candidates if c.active and c.children < max_children and c.order != final]
    if eligible:
        top = max(c.order for c in eligible)
        column = [c for c in eligible if c.order == top]
        mu = np.array([c.mu for c in column], dtype=float)
        if policy == "raffle":
            t = tickets(mu)
            k = int(rng.choice(len(column), p=t / t.sum()))
            weight = float(t[k])
        elif policy == "thompson":
            draws = rng.normal(mu, np.array([c.sigma for c in column], dtype=float))
            k = int(np.argmax(draws))
            weight = float(draws[k])
        else:
            k = int(rng.integers(len(column)))
            weight = 1.0
        return Plan(order=top, parent_id=column[k].id, seed=int(rng.integers(SEED_SPACE)), eligible=len(column),
                    weight=weight)
    finals = sum(1 for c in candidates if c.active and c.order == final)
    if finals + open_finals < target_finals:
        return Plan(order=orders[0], parent_id=None, seed=int(rng.integers(SEED_SPACE)), eligible=0, weight=1.0)
    return None


def _rating(row: dict) -> tuple[float, float]:
    """Votes, else the live prior, else the default."""
    if int(row["comparison_count"] or 0) > 0:
        return float(row["mu"]), float(row["sigma"])
    if row["prior_mu"] is not None and row["prior_sigma"] is not None and math.isfinite(row["prior_mu"]):
        return float(row["prior_mu"]), float(row["prior_sigma"])
    return R.DEFAULT_MU, R.DEFAULT_SIGMA


def next_job(
    col: CatalogLike,
    *,
    policy: str | None = None,
    max_children: int | None = None,
    target_finals: int | None = None,
    seed: int | None = None,
    server: str | None = None,
    runner: str | None = None,
) -> Job | None:
    """Decide the next job from the catalog and queue it, in one ``BEGIN IMMEDIATE`` transaction (so two runners
    on one workspace never overshoot N).

    Args:
        col: the workspace.
        policy: ``raffle``, ``thompson`` or ``uniform`` (default ``Settings.generation.job_policy``).
        max_children: N (default ``Settings.generation.max_children``).
        target_finals: T (default ``Settings.generation.target_finals``).
        seed: the RNG seed (default ``Settings.generation.job_seed``).
        server / runner: hold the new job for this server and runner at once (what a runner's worker does, so no
            other runner takes it); default: a queued job anyone may take.

    Returns:
        The queued :class:`~imagerank.generation.jobs.Job` (a child job of the chosen parent in the next step, or
        a base job), or None when nothing is to be done (T finals and no eligible parent).

    Raises:
        InvalidArgumentError: no steps, an unknown policy, N or T < 1, a negative seed.
    """
    cat = as_catalog(col)
    g = cat.settings.generation
    policy = g.job_policy if policy is None else policy
    n = g.max_children if max_children is None else max_children
    t = g.target_finals if target_finals is None else target_finals
    s = g.job_seed if seed is None else seed
    if isinstance(s, bool) or not isinstance(s, int) or s < 0:
        raise InvalidArgumentError(f"seed: expected an integer >= 0, got {seed!r}")
    for name, v in (("max_children", n), ("target_finals", t)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidArgumentError(f"{name}: expected an integer >= 1, got {v!r}")
    steps: list[PipelineStep] = list_steps(cat)
    if not steps:
        raise InvalidArgumentError("the pipeline has no steps; add them with generation.steps.add_step first")
    orders = [st.order for st in steps]
    with cat.db.atomic() as conn:
        rows = conn.execute(
            "SELECT i.id, s.step_order, i.status, COALESCE(i.child_count, 0) AS child_count, i.mu, i.sigma, "
            "i.prior_mu, i.prior_sigma, i.comparison_count, "
            "(SELECT COUNT(*) FROM generation_jobs j WHERE j.parent_id = i.id "
            " AND j.status IN ('queued', 'submitted', 'running')) AS pending "
            "FROM images i JOIN pipeline_steps s ON s.id = i.step_id WHERE s.output_node IS NOT NULL ORDER BY i.id"
        ).fetchall()
        cands = []
        for r in rows:
            mu, sigma = _rating(dict(r))
            cands.append(CandidateState(id=int(r["id"]), order=int(r["step_order"]), active=r["status"] == "active",
                                        children=int(r["child_count"]) + int(r["pending"]), mu=mu, sigma=sigma))
        open_finals = int(conn.execute(
            "SELECT COUNT(*) FROM generation_jobs WHERE step_id=? AND status IN ('queued', 'submitted', 'running')",
            (steps[-1].id,)).fetchone()[0])
        made = int(conn.execute("SELECT COUNT(*) FROM generation_jobs").fetchone()[0])
        rng = np.random.default_rng(np.random.SeedSequence([s, made]))
        p = plan(cands, orders, max_children=n, target_finals=t, open_finals=open_finals, policy=policy, rng=rng)
        if p is None:
            return None
        # a base job goes to the first column; a child job to the column right of its parent's
        step = steps[0] if p.parent_id is None else next(st for st in steps if st.order > p.order)
        job_id = insert_job(conn, step_id=step.id, parent_id=p.parent_id, seed=p.seed, policy=policy, server=server,
                            runner=runner)
    return get_job(cat, job_id)
