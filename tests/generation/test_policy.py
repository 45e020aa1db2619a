"""next_job: the seed's rule (property test over random trees), the raffle's tickets, thompson, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gen_support import add_file_candidate, example_workspace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagerank.catalog import Catalog
from imagerank.errors import InvalidArgumentError
from imagerank.generation import jobs, policy, tree
from imagerank.generation.policy import CandidateState, plan, tickets

ORDERS = [0, 1, 2, 3]


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[CandidateState], int, int]:
    """Random trees: each candidate hangs under an earlier candidate of the previous column (or is a base)."""
    n_max = draw(st.integers(1, 4))
    nodes: list[tuple[int, int | None]] = []  # (order, parent index)
    for _ in range(draw(st.integers(0, 25))):
        order = draw(st.sampled_from(ORDERS))
        parents = [i for i, (o, _) in enumerate(nodes) if o == order - 1]
        if order == 0:
            nodes.append((0, None))
        elif parents:
            nodes.append((order, draw(st.sampled_from(parents))))
    kids = [sum(1 for _, p in nodes if p == i) for i in range(len(nodes))]
    cands = [CandidateState(id=i + 1, order=o, active=draw(st.booleans()) or draw(st.booleans()),
                            children=kids[i] + draw(st.integers(0, 1)),
                            mu=draw(st.floats(0, 50)), sigma=draw(st.floats(0.5, 9)))
             for i, (o, _) in enumerate(nodes)]
    return cands, n_max, draw(st.integers(1, 5))


@given(trees(), st.sampled_from(policy.POLICIES), st.integers(0, 2**31))
@settings(max_examples=300, deadline=None)
def test_plan_follows_the_rule(t: tuple[list[CandidateState], int, int], pol: str, seed: int) -> None:
    cands, n, target = t
    got = plan(cands, ORDERS, max_children=n, target_finals=target, policy=pol, rng=np.random.default_rng(seed))
    eligible = [c for c in cands if c.active and c.children < n and c.order != ORDERS[-1]]
    finals = sum(1 for c in cands if c.active and c.order == ORDERS[-1])
    if eligible:
        assert got is not None
        parent = next(c for c in cands if c.id == got.parent_id)
        assert parent.active  # never a rejected node
        assert parent.order != ORDERS[-1]  # never a final node
        assert parent.children < n  # never over N
        assert parent.order == max(c.order for c in eligible)  # always the highest eligible column
        assert 0 <= got.seed < 2**32
    elif finals < target:
        assert got is not None
        assert got.parent_id is None
        assert got.order == ORDERS[0]
    else:
        assert got is None
    again = plan(cands, ORDERS, max_children=n, target_finals=target, policy=pol, rng=np.random.default_rng(seed))
    assert again == got  # deterministic


def test_tickets_mapping() -> None:
    assert tickets(25.0) == policy.TICKETS_UNRATED == 1000
    assert list(tickets([25 + 25 / 6, 25 - 25 / 6, 1e9, -1e9])) == [2718, 368, 1_000_000, 1]


def test_raffle_draws_in_proportion_to_tickets() -> None:
    cands = [CandidateState(1, 0, True, 0, mu=25.0), CandidateState(2, 0, True, 0, mu=25 + 25 / 6)]
    rng = np.random.default_rng(0)
    picks = [plan(cands, ORDERS, max_children=3, target_finals=1, rng=rng).parent_id for _ in range(4000)]  # type: ignore[union-attr]
    share = picks.count(2) / len(picks)
    assert abs(share - 2718 / 3718) < 0.03


def test_thompson_tries_the_unseen_branch() -> None:
    """A voted, slightly better candidate (small sigma) against an unvoted one: thompson still tries the unvoted."""
    cands = [CandidateState(1, 0, True, 0, mu=27.0, sigma=1.0), CandidateState(2, 0, True, 0, mu=25.0, sigma=8.33)]
    rng = np.random.default_rng(1)
    picks = [plan(cands, ORDERS, max_children=3, target_finals=1, policy="thompson", rng=rng).parent_id  # type: ignore[union-attr]
             for _ in range(2000)]
    assert 0.25 < picks.count(2) / len(picks) < 0.6


def test_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidArgumentError, match="no steps"):
        plan([], [], max_children=1, target_finals=1, rng=rng)
    with pytest.raises(InvalidArgumentError, match="policy: expected one of raffle, thompson, uniform, got 'best'"):
        plan([], ORDERS, max_children=1, target_finals=1, policy="best", rng=rng)
    with pytest.raises(InvalidArgumentError, match="expected integers >= 1, got 0"):
        plan([], ORDERS, max_children=0, target_finals=1, rng=rng)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30), st.booleans()), max_size=10),
       st.integers(1, 3), st.integers(1, 3), st.sampled_from(policy.POLICIES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_next_job_over_random_catalog_trees(tmp_path_factory: pytest.TempPathFactory,
                                            spec: list[tuple[int, int, bool]], n: int, target: int, pol: str) -> None:
    """The same properties through the catalog: jobs made one after another never push a parent over N (jobs in
    flight count), never take a rejected or final parent, always take the highest eligible column."""
    cat = example_workspace(tmp_path_factory.mktemp("t") / "ws", max_children=n, target_finals=target,
                            job_policy=pol)
    names = ["base", "face", "hand", "upscale"]
    made: list[int] = []
    for order, pick, dead in spec:
        rows = [tree.get_candidate(cat, i) for i in made]
        parents = [r["id"] for r in rows if r["step_order"] == order - 1 and r["child_count"] < n
                   and r["status"] == "active"]
        if order and not parents:
            continue
        made.append(add_file_candidate(cat, names[order], parents[pick % len(parents)] if order else None, seed=pick))
        if dead:
            tree.reject(cat, made[-1])
    for _ in range(6):
        df = tree.candidates_df(cat)
        load = df["child_count"] + df["pending_jobs"]
        eligible = df[(df["status"] == "active") & (load < n) & ~df["is_final"]]
        job = policy.next_job(cat)
        if job is None:
            assert eligible.empty
            assert (df["is_final"] & (df["status"] == "active")).sum() + len(jobs.jobs_df(cat).query(
                "step == 'upscale' and status == 'queued'")) >= target
            break
        if job.parent_id is None:
            assert eligible.empty
            assert job.step == "base"
            continue
        parent = df.set_index("id").loc[job.parent_id]
        assert parent["status"] == "active"
        assert not parent["is_final"]
        assert parent["child_count"] + parent["pending_jobs"] < n
        assert parent["step_order"] == eligible["step_order"].max()
        assert job.step == names[int(parent["step_order"]) + 1]
    df = tree.candidates_df(cat)
    assert (df["child_count"] + df["pending_jobs"] <= n).all()
    cat.close()


def test_next_job_is_deterministic_and_uses_the_live_prior(tmp_path: Path) -> None:
    def build(root: Path) -> tuple[Catalog, list[int]]:
        cat = example_workspace(root, max_children=3, target_finals=1)
        return cat, [add_file_candidate(cat, "base", seed=i) for i in range(4)]

    a, _ids_a = build(tmp_path / "a")
    b, _ids_b = build(tmp_path / "b")
    seq_a = [policy.next_job(a) for _ in range(5)]
    seq_b = [policy.next_job(b) for _ in range(5)]
    assert [(j.parent_id, j.seed, j.step) for j in seq_a] == [(j.parent_id, j.seed, j.step) for j in seq_b]  # type: ignore[union-attr]
    assert len({j.prompt_id for j in seq_a + seq_b}) == 10  # type: ignore[union-attr]
    assert all(jobs.canonical_prompt_id(j.prompt_id) for j in seq_a)  # type: ignore[union-attr]
    assert policy.next_job(a, seed=1) is not None
    a.close()
    b.close()
    # the live prior: an unvoted candidate with a high prior wins the raffle almost always
    cat, ids = build(tmp_path / "c")
    cat.db.execute("UPDATE images SET prior_mu=45.0, prior_sigma=5.0 WHERE id=?", (ids[2],))
    picks = [policy.next_job(cat, max_children=1000).parent_id for _ in range(30)]  # type: ignore[union-attr]
    assert picks.count(ids[2]) >= 27
    # votes win over the prior
    cat.db.execute("UPDATE images SET comparison_count=3, mu=10.0, sigma=2.0 WHERE id=?", (ids[2],))
    picks = [policy.next_job(cat, max_children=1000).parent_id for _ in range(30)]  # type: ignore[union-attr]
    assert picks.count(ids[2]) <= 3
    with pytest.raises(InvalidArgumentError, match="seed: expected an integer >= 0"):
        policy.next_job(cat, seed=-1)
    with pytest.raises(InvalidArgumentError, match="max_children: expected an integer >= 1"):
        policy.next_job(cat, max_children=0)
    cat.close()


def test_base_jobs_until_t_finals_then_nothing(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=1, target_finals=2)
    job = policy.next_job(cat)
    assert job is not None
    assert job.parent_id is None
    assert job.step == "base"
    # the open final-step jobs count toward T: after two base chains there is nothing to do
    b1, b2 = add_file_candidate(cat, "base"), add_file_candidate(cat, "base", seed=1)
    jobs.mark_failed(cat, job.id, "test")
    chain = []
    for b in (b1, b2):
        f = add_file_candidate(cat, "face", b)
        h = add_file_candidate(cat, "hand", f)
        chain.append(add_file_candidate(cat, "upscale", h))
    assert policy.next_job(cat) is None
    tree.reject(cat, chain[0])
    nxt = policy.next_job(cat)
    assert nxt is not None
    assert nxt.parent_id is None  # one final left, no eligible parent (N=1 everywhere): a new base
    assert policy.next_job(cat) is not None  # N=1: the queued base counts for nothing yet; its own child next
    with pytest.raises(InvalidArgumentError, match="no steps"):
        policy.next_job(Catalog.create(tmp_path / "empty"))
