"""Installing new priors: ``VoteLog.swap_priors`` (short transactions, for the live prior's background refit) ends
in exactly the state ``VoteLog.set_priors`` (one transaction) makes, keeps the log replayable at every commit, and
lets votes from another thread go on while it runs."""

from __future__ import annotations

import shutil
import threading

import numpy as np

import imagerank


def _voted(make_collection, n=60, votes=80, seed=0):  # type: ignore[no-untyped-def]
    col = make_collection(n, prior_refit_every=0)
    rng = np.random.default_rng(seed)
    ids = col.pool().ids.astype(int).tolist()
    for _ in range(votes):
        a, b = rng.choice(ids, 2, replace=False)
        col.vote(int(a), int(b), "left" if rng.random() < 0.6 else "draw")
    m = col.vote(ids[0], ids[1], "right")
    col.undo(m.id)  # an image pair in an undone match
    col.record_match(ids[2:5], [1, 0, 2])
    return col, ids


def _state(col):  # type: ignore[no-untyped-def]
    return col.images_df().set_index("id")[["mu", "sigma", "prior_mu", "prior_sigma", "comparison_count"]]


def test_swap_equals_set_priors(make_collection, tmp_path) -> None:  # type: ignore[no-untyped-def]
    col, ids = _voted(make_collection)
    rng = np.random.default_rng(1)
    priors = [(25 + 3 * float(z), 5.0 + float(abs(z)), i) for z, i in zip(rng.standard_normal(len(ids)), ids)]
    col.close()
    shutil.copytree(col.root, tmp_path / "copy")
    a = imagerank.open(col.root)
    b = imagerank.open(tmp_path / "copy")
    try:
        changed_a = a.votes.set_priors(priors)
        changed_b = b.votes.swap_priors(priors)
        assert changed_a == changed_b == len(ids)
        assert _state(a).equals(_state(b))
        assert b.doctor().ok
        assert b.votes.swap_priors(priors) == 0  # nothing to change the second time
        assert b.db.query("PRAGMA synchronous")[0][0] == 2  # votes are fsynced again (FULL) after the swap
    finally:
        a.close()
        b.close()


def test_votes_during_a_swap_are_kept_and_the_log_stays_exact(make_collection) -> None:  # type: ignore[no-untyped-def]
    col, ids = _voted(make_collection, n=400, votes=300)
    rng = np.random.default_rng(2)
    rounds = []
    errors: list[BaseException] = []

    def swapper() -> None:
        try:
            for _ in range(8):
                z = rng.standard_normal(len(ids))
                rounds.append(col.votes.swap_priors([(25 + 2 * float(v), 6.0, i) for v, i in zip(z, ids)]))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=swapper)
    t.start()
    acknowledged = []
    vote_rng = np.random.default_rng(3)
    while t.is_alive() or len(acknowledged) < 50:
        a, b = vote_rng.choice(ids, 2, replace=False)
        acknowledged.append(col.vote(int(a), int(b), "left").id)
    t.join()
    assert not errors
    assert len(rounds) == 8
    kept = set(col.matches_df()["match_id"].unique())
    assert set(acknowledged) <= kept
    assert col.doctor().ok


def test_snapshot_reads_never_wait_for_the_shared_connection(make_collection) -> None:  # type: ignore[no-untyped-def]
    """A background refit reads the catalog beside the writer: while another thread holds the shared connection
    (a long transaction), ``snapshot_query`` answers at once with what was committed."""
    col, ids = _voted(make_collection, n=30, votes=20)
    db = col.db
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with db.atomic() as conn:
            conn.execute("UPDATE images SET mu = mu WHERE id = ?", (ids[0],))
            holding.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    assert holding.wait(10)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(db.snapshot_query("SELECT COUNT(*) FROM images")[0][0]))
    reader.start()
    reader.join(5)
    alive = reader.is_alive()
    release.set()
    t.join(10)
    assert not alive  # it did not wait for the lock the writer holds
    assert got == [30]
    db.release_reader()
