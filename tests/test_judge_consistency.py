"""Issue 14: the judge's fitted consistency (beta) stored with the vote log, replayed exactly, and best-of-N rounds
stored as N-way Plackett-Luce matches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imagerank import ratings as R
from imagerank.errors import InvalidArgumentError
from imagerank.pairing import GROUP_SIZES, best_of_ranks
from imagerank.ratings.consistency import MIN_FIT_VOTES, fit_beta, match_loglik, self_agreement
from imagerank.ratings.priors import duel_loglik, rate_duel


# ------------------------------------------------------------------------------------------ the rating model
def test_default_beta_is_the_openskill_model_bit_for_bit() -> None:
    assert R.model_for(R.BETA) is R.MODEL
    before = [(27.0, 6.0), (24.0, 7.5), (25.5, 3.0)]
    assert R.rate_ranking(before, [1, 0, 2]) == R.rate_ranking(before, [1, 0, 2], R.BETA)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(InvalidArgumentError, match="beta"):
            R.rate_ranking(before, [0, 1, 2], bad)


@pytest.mark.parametrize("beta", [0.2, 1.0, R.BETA])
def test_fast_updates_equal_openskill_for_any_beta(beta: float) -> None:
    for outcome, ranks in ((1.0, [0, 1]), (0.0, [1, 0]), (0.5, [0, 0])):
        got = rate_duel(26.0, 5.0, 23.0, 7.0, outcome, beta)
        (ma, sa), (mb, sb) = R.rate_ranking([(26.0, 5.0), (23.0, 7.0)], ranks, beta)
        assert np.allclose(got, (ma, sa, mb, sb), atol=1e-9)
    # the N-way prequential update of the beta fit is openskill's Algorithm 4 too (ties included)
    mu, var = [26.0, 23.0, 25.0, 30.0], [25.0, 49.0, 9.0, 64.0]
    ranks = [1, 0, 1, 3]
    match_loglik(mu, var, [([0, 1, 2, 3], ranks)], beta)
    want = R.rate_ranking([(26.0, 5.0), (23.0, 7.0), (25.0, 3.0), (30.0, 8.0)], ranks, beta)
    assert np.allclose(mu, [m for m, _ in want], atol=1e-9)
    assert np.allclose(np.sqrt(var), [s for _, s in want], atol=1e-9)


def test_match_loglik_of_pairs_is_the_duel_loglik() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 10, 50), rng.integers(10, 20, 50)
    y = rng.choice([0.0, 0.5, 1.0], 50)
    ranks = [(0, 1) if o == 1 else (1, 0) if o == 0 else (0, 0) for o in y]
    one = duel_loglik([25.0] * 20, [40.0] * 20, a, b, y, 1.3)
    two = match_loglik([25.0] * 20, [40.0] * 20, [((int(x), int(w)), r) for x, w, r in zip(a, b, ranks)], 1.3)
    assert one == pytest.approx(two, rel=1e-12)
    assert one < 0


def _votes(n: int, m: int, noise: float, seed: int) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1, n)
    out = []
    for _ in range(m):
        i, j = rng.choice(n, 2, replace=False)
        d = u[i] - u[j] + noise * rng.normal()
        out.append(((int(i), int(j)), (0, 1) if d > 0 else (1, 0)))
    return u, out


def test_fit_beta_learns_how_consistent_the_judge_is() -> None:
    n = 80
    mu0, s0 = np.full(n, R.DEFAULT_MU), np.full(n, R.DEFAULT_SIGMA)
    _, consistent = _votes(n, 600, 0.0, 1)
    _, noisy = _votes(n, 600, 3.0, 1)
    b_consistent = fit_beta(mu0, s0, consistent)
    b_noisy = fit_beta(mu0, s0, noisy)
    assert R.BETA_RANGE[0] <= b_consistent < 0.5 * R.BETA
    assert b_noisy > 2 * b_consistent
    assert b_noisy <= R.BETA_RANGE[1]
    # few decisive votes keep the default; draws do not count
    assert fit_beta(mu0, s0, consistent[: MIN_FIT_VOTES - 1]) == R.BETA
    assert fit_beta(mu0, s0, [((0, 1), (0, 0))] * 50) == R.BETA
    # N-way rankings are fitted too: a noiseless best-of-4 judge is consistent
    rng = np.random.default_rng(2)
    u = rng.normal(0, 1, n)
    groups = []
    for _ in range(200):
        g = rng.choice(n, 4, replace=False).tolist()
        best = g[int(np.argmax(u[g]))]
        groups.append((g, [0 if i == best else 1 for i in g]))
    assert fit_beta(mu0, s0, groups) < 0.5 * R.BETA


def test_fit_beta_rejects_bad_input() -> None:
    mu0, s0 = np.full(5, 25.0), np.full(5, 8.0)
    with pytest.raises(InvalidArgumentError, match="one length"):
        fit_beta(mu0, s0[:4], [])
    with pytest.raises(InvalidArgumentError, match="positive"):
        fit_beta(mu0, np.zeros(5), [])
    with pytest.raises(InvalidArgumentError, match="out of range"):
        fit_beta(mu0, s0, [((0, 9), (0, 1))])
    with pytest.raises(InvalidArgumentError, match="length >= 2"):
        fit_beta(mu0, s0, [((0,), (0,))])
    with pytest.raises(InvalidArgumentError, match="prior_sd"):
        fit_beta(mu0, s0, [], prior_sd=0.0)


def test_self_agreement() -> None:
    assert self_agreement(np.full(4, 25.0), np.full(4, 25.0), R.BETA) == pytest.approx(0.5)
    assert self_agreement(np.array([40.0]), np.array([10.0]), 1.0) == pytest.approx(1.0)
    assert 0.5 < self_agreement(np.array([27.0]), np.array([25.0]), R.BETA) < 0.9
    assert math.isnan(self_agreement(np.zeros(0), np.zeros(0), 1.0))
    with pytest.raises(InvalidArgumentError, match="equal shapes"):
        self_agreement(np.zeros(2), np.zeros(3), 1.0)
    with pytest.raises(InvalidArgumentError, match="beta"):
        self_agreement(np.zeros(2), np.zeros(2), 0.0)


# ------------------------------------------------------------------------------------------ the catalog
def _vote_consistently(col, rounds: int) -> None:
    """A noiseless judge who prefers higher image ids."""
    for _ in range(rounds):
        a, b = col.next_pairs(1)[0]
        col.vote(a, b, "left" if a > b else "right")


def test_beta_is_stored_with_the_log_and_every_replay_uses_it(make_collection) -> None:
    col = make_collection(24, strategy="random")
    assert col.votes.beta == R.BETA
    assert col.consistency.fitted_votes == 0
    _vote_consistently(col, 150)
    beta, m = col.votes.fit_beta()
    assert m == 150
    assert beta < 0.6 * R.BETA  # a consistent judge
    changed = col.votes.set_beta(beta, fitted_votes=m)
    assert changed > 0
    assert col.votes.beta == beta
    assert col.doctor().ok
    # a new vote is rated with the stored beta
    a, b = col.next_pairs(1)[0]
    before = {r["id"]: (r["mu"], r["sigma"]) for r in (col.image(a), col.image(b))}
    match = col.vote(a, b, "left")
    want = R.rate_ranking([before[a], before[b]], [0, 1], beta)
    assert [(e.mu_after, e.sigma_after) for e in match.entries if e.image_id == a] == [want[0]]
    assert col.doctor().ok
    # undo in place and undo with a replay stay exact
    col.undo()
    assert col.doctor().ok
    col.undo(5)  # later matches touched its images: the log is replayed with the stored beta
    assert col.doctor().ok
    # the self-agreement the panels show
    cons = col.consistency
    assert cons.beta == beta
    assert cons.fitted_votes == m
    assert cons.pairs >= 140
    assert 0.5 <= cons.agreement <= 1.0
    assert cons.header.startswith("you agree with yourself ")
    assert "% of the time" in cons.header
    assert "judge noise beta" in str(cons)
    with pytest.raises(InvalidArgumentError, match="beta"):
        col.votes.set_beta(-1.0)
    assert col.votes.beta == beta


def test_swap_priors_installs_beta_with_the_priors(make_collection) -> None:
    col = make_collection(12, strategy="random")
    _vote_consistently(col, 40)
    ids = [int(i) for i in col.pool().ids]
    priors = [(25.0 + 0.1 * k, 6.0, i) for k, i in enumerate(ids)]
    col.votes.swap_priors(priors, beta=1.5, fitted_votes=40)
    assert col.votes.beta == 1.5
    assert col.doctor().ok
    col.votes.set_priors(None, beta=R.BETA)
    assert col.votes.beta == R.BETA
    assert col.doctor().ok
    with pytest.raises(InvalidArgumentError, match="beta"):
        col.votes.swap_priors(priors, beta=math.nan)


def test_consistency_without_votes(make_collection) -> None:
    col = make_collection(4)
    cons = col.consistency
    assert cons.pairs == 0
    assert math.isnan(cons.agreement)
    assert cons.header == "self-agreement: no decisive votes yet"
    assert col.votes.fit_beta() == (R.BETA, 0)


# ------------------------------------------------------------------------------------------ best-of-N
def test_best_of_ranks() -> None:
    assert best_of_ranks([5, 6, 7, 8], 7) == [1, 1, 0, 1]
    assert best_of_ranks([5, 6, 7, 8], 7, worst=5) == [3, 1, 0, 1]
    assert best_of_ranks([5, 6, 7], 6, worst=7) == [1, 0, 2]
    assert best_of_ranks([5, 6], 6, worst=5) == [1, 0]
    with pytest.raises(InvalidArgumentError, match="best"):
        best_of_ranks([5, 6, 7], 9)
    with pytest.raises(InvalidArgumentError, match="worst"):
        best_of_ranks([5, 6, 7], 5, worst=9)
    with pytest.raises(InvalidArgumentError, match="another image"):
        best_of_ranks([5, 6, 7], 5, worst=5)
    with pytest.raises(InvalidArgumentError, match="distinct"):
        best_of_ranks([5, 5, 7], 5)


@pytest.mark.parametrize("size", [3, 4])
def test_best_of_n_rounds_are_chosen_stored_undone_and_replayed(make_collection, size: int) -> None:
    col = make_collection(20, strategy="active")
    for _ in range(6):
        group = col.next_group(size)
        assert len(group) == size == len(set(group))
        assert set(group) <= {int(i) for i in col.pool().ids}
        match = col.vote_best(group, max(group), worst=min(group), decision_ms=2500.0)
        assert match.kind == "ranking"
        assert match.rated
        assert match.positions == list(range(size))
        assert sorted(match.ranks) == sorted(best_of_ranks(group, max(group), min(group)))
    assert col.doctor().ok
    n_before = len(col.matches_df())
    undone = col.undo()
    assert undone is not None
    assert undone.kind == "ranking"
    assert len(col.matches_df()) == n_before - size
    assert col.doctor().ok
    # a replay with a fitted beta keeps N-way matches exact
    col.votes.set_beta(1.0, fitted_votes=5)
    assert col.doctor().ok
    assert col.votes.replay() == 0


def test_next_group_rejects_bad_sizes(make_collection) -> None:
    col = make_collection(6)
    for bad in (1, 5, 0, True, 3.0):
        with pytest.raises(InvalidArgumentError, match="size"):
            col.next_group(bad)
    assert GROUP_SIZES == (2, 3, 4)
    with pytest.raises(InvalidArgumentError, match="best"):
        col.vote_best(col.next_group(3), best=10_000)


# ------------------------------------------------------------------------------------------ the simulations
def _load(name: str):
    import importlib.util
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(bench))
    return mod


def test_best_of_n_simulation_gives_every_mode_the_same_user_time() -> None:
    bon = _load("best_of_n_sim")
    sim = bon.S
    assert bon.round_seconds(2) == pytest.approx(1.0 + math.log2(3))
    assert bon.round_seconds(2) < bon.round_seconds(3) < bon.round_seconds(4)
    world = sim.make_world(50, 0.5, 5, np.random.default_rng(0), None)
    judge = sim.Judge("noiseless", world, 0.62, np.random.default_rng(0))
    group = [3, 17, 29, 41]
    assert group[bon.judge_best(judge, group)] == group[int(np.argmax(world.u[group]))]
    cfg = sim.SimConfig(n=300, k=15, budgets=(150, 300), refit_every=100, ratio=0.62, stability_samples=50)
    out = {size: bon.run_groups(size, "noiseless", 0.75, 0, cfg, None) for size in (2, 4)}
    for cps in out.values():
        assert len(cps) == 2
        assert cps[-1][0] == pytest.approx(300 * bon.round_seconds(2) / 60, rel=0.02)  # minutes, equal for all
        assert all(0.0 <= p <= 1.0 and 0.0 <= st <= 1.0 for _, p, st in cps)
    # rounds of four find more of the top-k per minute than pairs for a consistent judge (2 seeds are enough here)
    more = [bon.run_groups(4, "noiseless", 0.75, s, cfg, None)[-1][1] for s in (1, 2)]
    less = [bon.run_groups(2, "noiseless", 0.75, s, cfg, None)[-1][1] for s in (1, 2)]
    assert np.mean([*more, out[4][-1][1]]) > np.mean([*less, out[2][-1][1]])
    # the app's consistent-judge mode: rounds grown from the boundary screen on the EP posterior find more of the
    # top-k than active's rounds on OpenSkill under the same EP leaderboard (seeded, so deterministic)
    ep = {st: bon.run_groups(4, "noiseless", 0.75, 0, cfg, None, strategy=st) for st in ("ep-board", "ep-adaptive")}
    assert all(0.0 <= p <= 1.0 and 0.0 <= st <= 1.0 for cps in ep.values() for _, p, st in cps)
    assert ep["ep-adaptive"][-1][1] > ep["ep-board"][-1][1]
    with pytest.raises(ValueError, match="strategy"):
        bon.run_groups(4, "noiseless", 0.75, 0, cfg, None, strategy="nope")


def test_the_ranking_simulation_fits_the_judges_beta() -> None:
    sim = _load("ranking_sim")
    seen: list[float] = []
    fit = sim.fit_beta

    def spy(*args, **kw):
        seen.append(fit(*args, **kw))
        return seen[-1]

    sim.fit_beta = spy
    try:
        cfg = sim.SimConfig(n=300, k=15, budgets=(300,), refit_every=100, ratio=0.62, stability_samples=20)
        sim.run_one("active", "noiseless", 0.75, 0, cfg, None)
        assert len(seen) == 3
        assert seen[-1] < 0.6 * R.BETA
        seen.clear()
        sim.run_one("active", "noiseless", 0.75, 0, sim.SimConfig(**{**cfg.__dict__, "fit_beta": False}), None)
        assert seen == []
    finally:
        sim.fit_beta = fit


def test_votes_during_swaps_that_change_beta_are_kept_and_the_log_stays_exact(make_collection) -> None:
    import threading

    col = make_collection(300, prior_refit_every=0, strategy="random")
    ids = [int(i) for i in col.pool().ids]
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = rng.choice(ids, 2, replace=False)
        col.vote(int(a), int(b), "left")
    errors: list[BaseException] = []
    betas = [1.0, 2.5, 0.5, R.BETA, 1.7, 0.3]

    def swapper() -> None:
        try:
            for beta in betas:
                z = rng.standard_normal(len(ids))
                col.votes.swap_priors([(25 + 2 * float(v), 6.0, i) for v, i in zip(z, ids)], beta=beta)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=swapper)
    t.start()
    acknowledged: list[int] = []
    vote_rng = np.random.default_rng(1)
    while t.is_alive() or len(acknowledged) < 30:
        a, b = vote_rng.choice(ids, 2, replace=False)
        acknowledged.append(col.vote(int(a), int(b), "right").id)
    t.join()
    assert not errors
    assert col.votes.beta == betas[-1]
    assert set(acknowledged) <= set(col.matches_df()["match_id"].unique())
    assert col.doctor().ok
    # and set_priors with the same beta gives the same state as the swap did
    before = col.images_df().set_index("id")[["mu", "sigma"]]
    assert col.votes.replay() == 0
    assert col.images_df().set_index("id")[["mu", "sigma"]].equals(before)


def test_an_old_read_only_workspace_has_the_default_beta(tmp_path) -> None:
    """A 0.1.0 workspace read as it is (schema 1, no rating_model table): openskill's beta, doctor exact."""
    import shutil
    from pathlib import Path

    import imagerank

    ws = tmp_path / "ws"
    shutil.copytree(Path(__file__).parent / "data" / "workspace-0.1.0", ws)
    col = imagerank.open(ws, read_only=True)
    try:
        assert col.votes.beta == R.BETA
        cons = col.consistency
        assert cons.beta == R.BETA
        assert cons.fitted_votes == 0
        assert col.doctor().ok
    finally:
        col.close()
