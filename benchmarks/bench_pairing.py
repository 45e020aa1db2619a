"""Cost of one pick per pairing strategy, at 5,000 and 100,000 images.

Two pool states per size: ``fresh`` (every image unseen, the default rating: the worst case for tie-breaking)
and ``prior`` (ratings seeded from a ranker prior, 3,000 images with some votes, like a session under way).
A pick is ``select_pairs(ctx, strategy, n)`` with the session's seen-pair set, as ``Collection.next_pairs``
calls it; the panel asks for 1-4 pairs at a time. The last line times ``Collection.next_pairs`` itself on a
fresh 100,000-image catalog (the pool is loaded once and cached, as in a session). The last lines time the live
prior's refit (``Collection.refit_prior``, every 250 votes in a session) with 3,000 votes on 512-d features, and
how long a vote waits while such a refit runs on the live prior's background thread.

Run:  python benchmarks/bench_pairing.py
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from imagerank import ratings as R
from imagerank.collection import Collection
from imagerank.pairing import PairContext, Pool, pair_key, pair_keys, select_group, select_pairs
from imagerank.pairing.screen import screen_pairs
from imagerank.ratings.priors import prior_to_rating

STRATEGIES = ("random", "spec", "active")


def make_pool(n: int, state: str, rng: np.random.Generator) -> Pool:
    """A pool of ``n`` images in the given state (``fresh`` or ``prior``)."""
    ids = np.arange(1, n + 1)
    if state == "fresh":
        return Pool.from_arrays(ids, np.full(n, R.DEFAULT_MU), np.full(n, R.DEFAULT_SIGMA), np.zeros(n, np.int64))
    z = rng.standard_normal(n)
    mu, sigma = prior_to_rating(z, 0.7)
    count = np.zeros(n, np.int64)
    voted = rng.choice(n, size=min(3000, n), replace=False)
    count[voted] = rng.integers(1, 30, size=voted.shape[0])
    sigma[voted] = sigma[voted] / np.sqrt(1 + count[voted] / 3)
    mu[voted] += rng.normal(0, 2, size=voted.shape[0])
    return Pool.from_arrays(ids, mu, sigma, count, prior=z)


def time_picks(pool: Pool, strategy: str, n_pairs: int, repeats: int) -> float:
    """Median milliseconds of one ``select_pairs`` call (seen set grows as in a session)."""
    ctx = PairContext(pool, np.random.default_rng(0), set(), topk=100, exploration=0.1)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        pairs = select_pairs(ctx, strategy, n_pairs)
        times.append(time.perf_counter() - t)
        for a, b in pairs:
            ctx.seen.add((a, b) if a < b else (b, a))
    return 1000.0 * float(np.median(times))


def time_groups(pool: Pool, size: int, repeats: int) -> float:
    """Median milliseconds of one best-of-``size`` pick, ``select_group(ctx, "active", size)``."""
    ctx = PairContext(pool, np.random.default_rng(0), set(), topk=100, exploration=0.1)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        group = select_group(ctx, "active", size)
        times.append(time.perf_counter() - t)
        ctx.seen.update(pair_keys(group))
    return 1000.0 * float(np.median(times))


def print_groups(sizes: list[int], repeats: int, rng: np.random.Generator) -> None:
    """One line per pool size and state: the cost of a best-of-3 and a best-of-4 pick with ``active``."""
    for n in sizes:
        for state in ("fresh", "prior"):
            pool = make_pool(n, state, rng)
            ms = {g: time_groups(pool, g, repeats) for g in (3, 4)}
            print(f"select_group('active') at {n:,} images ({state}): best-of-3 {ms[3]:.2f} ms, "
                  f"best-of-4 {ms[4]:.2f} ms")


def print_screen(sizes: list[int], repeats: int, rng: np.random.Generator) -> None:
    """One line per pool size: the cost of one ``screen_pairs`` pick (1 and 4 pairs) on the pool's ratings as the
    posterior (the experiment for consistent judges, :mod:`imagerank.pairing.screen`)."""
    for n in sizes:
        pool = make_pool(n, "prior", rng)
        ms = {}
        for n_pairs in (1, 4):
            ctx = PairContext(pool, np.random.default_rng(0), set(), topk=100, exploration=0.1)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                pairs = screen_pairs(ctx, n_pairs, pool.mu, pool.sigma, 0.5)
                times.append(time.perf_counter() - t)
                ctx.seen.update(pair_key(int(pool.ids[i]), int(pool.ids[j])) for i, j in pairs)
            ms[n_pairs] = 1000.0 * float(np.median(times))
        print(f"screen_pairs at {n:,} images (prior): 1 pair {ms[1]:.2f} ms, 4 pairs {ms[4]:.2f} ms")


def _fake_catalog(col: Collection, n: int) -> None:
    """``n`` catalog rows at the default rating (no files: pairing and refits never read them)."""
    with col.db.atomic() as conn:
        conn.executemany(
            "INSERT INTO images (filepath, filename, mu, sigma) VALUES (?,?,?,?)",
            [(f"/bench/{i}.jpg", f"{i}.jpg", R.DEFAULT_MU, R.DEFAULT_SIGMA) for i in range(n)],
        )


def time_collection(n: int, repeats: int, posterior: str = "auto") -> float:
    """Median ms of ``Collection.next_pairs(1)`` (default strategy) on a fresh catalog of ``n`` images; with
    ``posterior="on"`` in the consistent-judge mode (the boundary screen on the EP posterior, read without waiting),
    then the vote latency there: ``repeats * 10`` votes timed one by one, an ADF step each, EP passes in the
    background every 50 and a rebuild every 100 (``imagerank.pairing.posterior_view``); ``"off"``: the same votes
    without the posterior, for comparison."""
    from imagerank.collection import init

    with tempfile.TemporaryDirectory() as tmp:
        col = init(tmp, posterior=posterior, prior_refit_every=0)
        _fake_catalog(col, n)
        col.posterior.ensure()
        col.next_pairs(1)  # loads and caches the pool
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            pairs = col.next_pairs(1)
            times.append(time.perf_counter() - t)
            assert len(pairs) == 1
        strategy = col.session.strategy
        mode = col.rating_model
        votes = []
        if posterior in ("on", "off"):
            for _ in range(10 * repeats):
                (a, b), = col.next_pairs(1)
                t = time.perf_counter()
                col.vote(a, b, "left")
                votes.append(time.perf_counter() - t)
        col.close()
    print(f"Collection.next_pairs(1), strategy {strategy!r}, fresh catalog of {n:,}"
          f"{' (' + mode.reason + ')' if posterior == 'on' else ''}: {1000 * float(np.median(times)):.2f} ms")
    if votes:
        v = 1000 * np.asarray(votes)
        print(f"  votes with posterior={posterior} ({len(v)}; 'on': EP passes every 50): median {np.median(v):.1f}"
              f" / p99 {np.percentile(v, 99):.1f} / max {v.max():.1f} ms")
    return 1000.0 * float(np.median(times))


def time_consistent_pick(n: int, repeats: int) -> None:
    """``Collection.next_pairs(1)`` at ``n`` images with the consistent-judge mode on and off, interleaved in one
    process (``Settings.posterior`` switched between calls), min and median of ``2 * repeats`` each: the cost the
    EP posterior adds to a pick (reading its means and SDs, ``screen_pairs``), robust to a busy machine."""
    from imagerank.collection import init

    with tempfile.TemporaryDirectory() as tmp:
        col = init(tmp, posterior="on", prior_refit_every=0)
        _fake_catalog(col, n)
        col.posterior.ensure()
        col.next_pairs(1)
        times: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(2 * repeats):
            for mode in ("on", "off"):
                col.settings = col.settings.replace(posterior=mode)
                t = time.perf_counter()
                col.next_pairs(1)
                times[mode].append(time.perf_counter() - t)
        col.close()
    for mode, label in (("off", "active on OpenSkill"), ("on", "consistent mode, screen_pairs on the EP posterior")):
        v = 1000 * np.asarray(times[mode])
        print(f"next_pairs(1) at {n:,}, {label}: min {v.min():.2f} / median {np.median(v):.2f} ms")


def _voted_catalog(tmp: str, n: int, votes: int, dim: int, seed: int) -> tuple[Collection, np.ndarray, np.ndarray,
                                                                            dict[int, float]]:
    """A fake catalog of ``n`` images, ``dim``-d synthetic features X and ``votes`` votes by a judge of the
    utility ``X @ w + noise``, the live prior off: (collection, ids, X, id -> utility)."""
    from imagerank.collection import init

    rng = np.random.default_rng(seed)
    col = init(tmp)
    col.settings = col.settings.replace(prior_refit_every=0)
    _fake_catalog(col, n)
    ids = col.pool().ids.astype(np.int64)
    X = rng.standard_normal((n, dim))
    utility = X @ rng.standard_normal(dim) / np.sqrt(dim) + rng.standard_normal(n)
    u = dict(zip(ids.tolist(), utility.tolist()))
    with col.deferred_prior():
        for _ in range(votes):
            (a, b), = col.next_pairs(1)
            col.vote(a, b, "left" if u[a] > u[b] else "right")
    return col, ids, X, u


def time_refit(n: int, votes: int = 3000, dim: int = 512) -> None:
    """Wall time of ``Collection.refit_prior`` (the live prior the panel refits every 250 votes) on a catalog of
    ``n`` images with ``votes`` votes and ``dim``-d features already loaded (as after the first refit of a
    session): the first, recalibrating refit and a warm one."""
    from imagerank.training.features import FeatureMatrix
    from imagerank.training.prior import LivePriorState, live_design

    with tempfile.TemporaryDirectory() as tmp:
        col, ids, X, _ = _voted_catalog(tmp, n, votes, dim, seed=1)
        name = f"synthetic-{dim}"  # features handed over as the collection caches them after its first refit
        t = time.perf_counter()
        col.prior.state = LivePriorState(name, FeatureMatrix(ids, live_design(X), name))
        first = col.refit_prior(name)
        t_first = time.perf_counter() - t
        col.vote(*col.next_pairs(1)[0], "left")
        t = time.perf_counter()
        col.refit_prior(name)
        t_warm = time.perf_counter() - t
        col.close()
    print(f"live prior refit, {n:,} images x {dim}-d, {votes:,} votes: {1000 * t_first:.0f} ms recalibrating, "
          f"{1000 * t_warm:.0f} ms warm (confidence {first.confidence:.2f})")


def time_votes_through_the_first_refit(n: int, votes: int = 250, dim: int = 512) -> None:
    """The first live-prior refit of a process, started by the 250th vote as in a session (features read from an
    embedding sidecar, standardised and reduced by PCA, the prior calibrated, the priors swapped in): every vote
    from the 250th until the refit has landed is timed. Prints median and max wait in ms and the refit's time."""
    from imagerank.collection import init
    from imagerank.features.sidecar import Sidecar, embedding_schema

    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        col = init(tmp, prior_refit_every=votes, prior_features="embeddings:synthetic__none")
        _fake_catalog(col, n)
        ids = col.pool().ids.astype(np.int64)
        X = rng.standard_normal((n, dim)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        Sidecar(col.sidecars_dir, "embeddings/synthetic__none").write(
            [{"image_id": int(i), "fingerprint": "0-0", "embedding": x, "source": "bench"} for i, x in zip(ids, X)],
            schema=embedding_schema(dim), metadata={"model": "synthetic", "pretrained": None, "dim": dim})
        utility = X @ rng.standard_normal(dim) / np.sqrt(dim) * 5 + rng.standard_normal(n)
        u = dict(zip(ids.tolist(), utility.tolist()))
        import threading

        landed = threading.Event()
        col.prior.on_refit(landed.set)
        waits = []
        t_refit = time.perf_counter()
        for k in range(votes + 1_000_000):
            (a, b), = col.next_pairs(1)
            t = time.perf_counter()
            col.vote(a, b, "left" if u[a] > u[b] else "right")
            if k + 1 >= votes:
                if k + 1 == votes:
                    t_refit = time.perf_counter()
                waits.append(1000 * (time.perf_counter() - t))
                if landed.is_set():
                    break
        took = time.perf_counter() - t_refit
        col.settings = col.settings.replace(prior_refit_every=0)  # no further refits while we check and close
        status = col.prior_status
        assert col.doctor().ok
        col.close()
    print(f"first live-prior refit at {n:,} images ({dim}-d embeddings read from the sidecar), started by vote "
          f"{votes}: {len(waits)} votes during it, wait median {np.median(waits):.1f} ms, max {max(waits):.1f} ms; "
          f"the refit took about {took:.1f} s ({status[:60]})")


def time_votes_during_refit(n: int, votes: int = 3000, dim: int = 512, probe: int = 200) -> None:
    """How long a vote waits while the live prior refits: ``probe`` votes (``Collection.vote``, one pair each, the
    panel's path) timed one by one with no refit running, and again while a refit runs on the background thread
    that the live prior uses (started as the 250th vote of a session starts it). Prints median, 99th percentile and
    max wait in ms, side by side, and how long the refit took."""
    import threading

    from imagerank.training.features import FeatureMatrix
    from imagerank.training.prior import LivePriorState, live_design

    with tempfile.TemporaryDirectory() as tmp:
        col, ids, X, u = _voted_catalog(tmp, n, votes, dim, seed=2)
        name = f"synthetic-{dim}"
        col.prior.state = LivePriorState(name, FeatureMatrix(ids, live_design(X), name))
        col.refit_prior(name)  # calibrated once; the background refits below are warm ones, as in a session

        def timed_votes(stop: threading.Event | None) -> list[float]:
            waits = []
            for _ in range(probe):
                if stop is not None and stop.is_set():
                    break
                (a, b), = col.next_pairs(1)
                t = time.perf_counter()
                col.vote(a, b, "left" if u[a] > u[b] else "right")
                waits.append(1000 * (time.perf_counter() - t))
            return waits

        quiet = timed_votes(None)
        done = threading.Event()
        took: list[float] = []

        def refit() -> None:
            t = time.perf_counter()
            col.prior.refit(name, swap=True)  # what the background refit after every 250th vote runs
            took.append(time.perf_counter() - t)
            done.set()

        worker = threading.Thread(target=refit)
        worker.start()
        during = timed_votes(done)
        worker.join()
        assert col.doctor().ok
        col.close()
    for label, w in (("no refit", quiet), ("during a refit", during)):
        print(f"vote latency at {n:,} images, {label}: median {np.median(w):.1f} ms, p99 "
              f"{np.percentile(w, 99):.1f} ms, max {max(w):.1f} ms ({len(w)} votes)")
    print(f"  (the background refit took {1000 * took[0]:.0f} ms)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pick cost per strategy")
    ap.add_argument("--sizes", default="5000,100000")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--groups-only", action="store_true", help="stop after the pick costs (pairs and best-of-N)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print("| images | pool state | pairs per pick | random ms | spec ms | active ms | active / random |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        for state in ("fresh", "prior"):
            pool = make_pool(n, state, rng)
            for n_pairs in (1, 4):
                ms = {s: time_picks(pool, s, n_pairs, args.repeats) for s in STRATEGIES}
                print(f"| {n:,} | {state} | {n_pairs} | {ms['random']:.2f} | {ms['spec']:.2f} | {ms['active']:.2f} "
                      f"| {ms['active'] / ms['random']:.1f}x |")
    print_groups([int(s) for s in args.sizes.split(",")], args.repeats, rng)
    print_screen([int(s) for s in args.sizes.split(",")], args.repeats, rng)
    if args.groups_only:
        return 0
    time_collection(100_000, args.repeats)
    time_collection(100_000, args.repeats, posterior="off")  # the vote latency without the posterior, same run
    time_collection(100_000, args.repeats, posterior="on")
    time_consistent_pick(100_000, args.repeats)
    for n in (int(s) for s in args.sizes.split(",")):
        time_refit(n)
    for n in (int(s) for s in args.sizes.split(",")):
        time_votes_during_refit(n)
    for n in (800, *(int(s) for s in args.sizes.split(","))):
        time_votes_through_the_first_refit(n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
