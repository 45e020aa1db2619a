"""Pairing: the registry, the seed's ``spec`` heuristic, no repeats, randomised sides, seeded reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from imagerank.errors import StrategyNotFoundError
from imagerank.pairing import (
    PairContext,
    Pool,
    get_strategy,
    list_strategies,
    pair_key,
    random_pairs,
    register_strategy,
    select_pairs,
    spec_pairs,
)


def _pool(n: int = 6, seed: int = 0) -> Pool:
    rng = np.random.default_rng(seed)
    return Pool.from_arrays(
        ids=np.arange(100, 100 + n), mu=rng.uniform(15, 35, n), sigma=rng.uniform(1, 25 / 3, n),
        count=rng.integers(0, 10, n),
    )


def test_registry_lists_and_finds() -> None:
    names = list_strategies()
    assert {"random", "spec"} <= set(names)
    assert names == sorted(names)
    assert get_strategy("spec") is spec_pairs
    assert get_strategy("random") is random_pairs


def test_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(StrategyNotFoundError, match=r"'nope' is not registered; known: .*random.*spec"):
        get_strategy("nope")
    ctx = PairContext(_pool(), np.random.default_rng(0))
    with pytest.raises(StrategyNotFoundError):
        select_pairs(ctx, "nope", 1)


def test_register_a_strategy() -> None:
    @register_strategy("test_first_two")
    def first_two(ctx: PairContext, n: int) -> list[tuple[int, int]]:
        return [(0, 1)] * n

    try:
        assert "test_first_two" in list_strategies()
        ctx = PairContext(_pool(), np.random.default_rng(0))
        # the strategy keeps proposing one pair: it is returned once, then random pairs fill in
        pairs = select_pairs(ctx, "test_first_two", 3)
        assert pair_key(*pairs[0]) == (100, 101)
        assert len({pair_key(*p) for p in pairs}) == 3
    finally:
        from imagerank.pairing import registry

        registry._REGISTRY.pop("test_first_two", None)


def _tv(counts: np.ndarray, probs: np.ndarray) -> float:
    return float(0.5 * np.abs(counts / counts.sum() - probs).sum())


def test_spec_heuristic_weights() -> None:
    """Empirical pair frequencies match the seed's formula: first ~ sigma*(1+1/(count+1)), second ~
    sigma/(|mu1-mu2|+1) among the others."""
    pool = Pool.from_arrays(
        ids=[1, 2, 3, 4, 5], mu=[20.0, 25.0, 26.0, 32.0, 25.0], sigma=[8.0, 2.0, 5.0, 6.0, 1.0], count=[0, 9, 3, 1, 0]
    )
    ctx = PairContext(pool, np.random.default_rng(1))
    draws = spec_pairs(ctx, 30_000)
    counts = np.zeros((5, 5))
    for i, j in draws:
        counts[i, j] += 1
    assert np.all(np.diag(counts) == 0)
    first = pool.sigma * (1 + 1 / (pool.count + 1))
    first = first / first.sum()
    expected = np.zeros((5, 5))
    for i in range(5):
        w = pool.sigma / (np.abs(pool.mu - pool.mu[i]) + 1)
        w[i] = 0
        expected[i] = first[i] * w / w.sum()
    assert _tv(counts.ravel(), expected.ravel()) < 0.015
    # the check has teeth: uniform pairs or an unweighted first pick are far off
    uniform = (1 - np.eye(5)).ravel() / 20
    assert _tv(counts.ravel(), uniform) > 0.1
    assert _tv(counts.sum(axis=1), np.full(5, 0.2)) > 0.1


def test_no_pair_twice_in_a_session() -> None:
    pool = _pool(5)
    ctx = PairContext(pool, np.random.default_rng(0))
    for strategy in ("spec", "random"):
        ctx.seen.clear()
        got = []
        while True:
            batch = select_pairs(ctx, strategy, 3)
            if not batch:
                break
            got += batch
            ctx.seen.update(pair_key(a, b) for a, b in batch)
        keys = [pair_key(a, b) for a, b in got]
        assert len(keys) == 10
        assert len(set(keys)) == 10
        assert all(a != b for a, b in got)


def test_avoid_and_small_pools() -> None:
    pool = _pool(3)
    ctx = PairContext(pool, np.random.default_rng(0))
    avoid = [(100, 101), (102, 100)]
    assert [pair_key(*p) for p in select_pairs(ctx, "spec", 5, avoid=avoid)] == [(101, 102)]
    assert select_pairs(PairContext(_pool(1), np.random.default_rng(0)), "spec", 2) == []
    assert select_pairs(ctx, "spec", 0) == []


def test_sides_are_randomised() -> None:
    pool = _pool(40)
    ctx = PairContext(pool, np.random.default_rng(3))
    pairs = select_pairs(ctx, "spec", 400)
    left_smaller = sum(a < b for a, b in pairs) / len(pairs)
    assert 0.42 < left_smaller < 0.58
    # each image shows up on both sides
    lefts, rights = {a for a, _ in pairs}, {b for _, b in pairs}
    assert len(lefts & rights) > 30


@pytest.mark.parametrize("strategy", ["spec", "random"])
def test_seeded_runs_reproduce(strategy: str) -> None:
    a = select_pairs(PairContext(_pool(30), np.random.default_rng(7)), strategy, 20)
    b = select_pairs(PairContext(_pool(30), np.random.default_rng(7)), strategy, 20)
    c = select_pairs(PairContext(_pool(30), np.random.default_rng(8)), strategy, 20)
    assert a == b
    assert a != c


def test_collection_sessions_do_not_repeat(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(5)
    col.start_session(strategy="spec", seed=0)
    judged = []
    for _ in range(10):
        (pair,) = col.next_pairs(1)
        col.vote(*pair, "left")
        judged.append(pair_key(*pair))
    assert len(set(judged)) == 10
    assert col.next_pairs(1) == []  # every pair of 5 images judged in this session
    m = col.undo()  # undo frees the pair for this session
    assert m is not None
    assert [pair_key(*p) for p in col.next_pairs(2)] == [pair_key(*m.image_ids)]
    col.start_session(strategy="spec", seed=0)  # a new session may show pairs again
    assert len(col.next_pairs(10)) == 10


def test_collection_seeded_sessions_reproduce(make_collection) -> None:  # type: ignore[no-untyped-def]
    a = make_collection(12, name="a")
    b = make_collection(12, name="b")
    runs = []
    for col in (a, b):
        col.start_session(strategy="spec", seed=42)
        seq = []
        for k in range(15):
            (pair,) = col.next_pairs(1)
            col.vote(*pair, "left" if k % 3 else "right")
            seq.append(pair)
        runs.append(seq)
    ids_a = list(a.images_df()["id"])
    ids_b = list(b.images_df()["id"])
    assert ids_a == ids_b
    assert runs[0] == runs[1]


def test_pool_update_and_index() -> None:
    pool = _pool(4)
    assert pool.index_of(102) == 2
    assert pool.index_of(999) is None
    pool.update(102, 30.0, 2.0, 1)
    assert (pool.mu[2], pool.sigma[2]) == (30.0, 2.0)
    pool.update(999, 1.0, 1.0, 1)  # not in the pool: ignored
    assert len(pool) == 4
