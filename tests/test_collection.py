"""Collection: votes, skips, draws, N-way rankings, undo, replay, doctor, leaderboard, stats and views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imgsupport import write_images

import imagerank
from imagerank import ratings as R
from imagerank.errors import NotFoundError


def _ids(col: imagerank.Collection) -> list[int]:
    return [int(i) for i in col.images_df()["id"]]


def _rating(col: imagerank.Collection, i: int) -> tuple[float, float, int]:
    r = col.image(i)
    return (r["mu"], r["sigma"], r["comparison_count"])


def test_open_init_and_settings(tmp_path: Path) -> None:
    images = write_images(tmp_path / "imgs", 3)
    col = imagerank.init(tmp_path / "ws", images, strategy="spec", skip_as_draw=True)
    assert (tmp_path / "ws" / "imagerank.toml").exists()
    assert (tmp_path / "ws" / "imagerank.db").exists()
    for sub in ("sidecars", "thumbs", "exports"):
        assert (tmp_path / "ws" / sub).is_dir()
    col.close()
    again = imagerank.open(tmp_path / "ws")
    assert again.settings.roots == (str(images.resolve()),)
    assert again.settings.skip_as_draw is True
    assert again.settings.strategy == "spec"
    assert again.settings.host == "127.0.0.1"
    again.close()


def test_vote_win_updates_ratings_and_log(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    a, b, c, _ = _ids(col)
    m = col.vote(a, b, "right", decision_ms=812.5, voter="ann")
    expected = R.rate_ranking([(25.0, 25 / 3), (25.0, 25 / 3)], [1, 0])
    assert _rating(col, a) == (*expected[0], 1)
    assert _rating(col, b) == (*expected[1], 1)
    assert _rating(col, c) == (25.0, 25 / 3, 0)
    assert m.kind == "win"
    assert m.rated
    assert m.ranks == [1, 0]
    assert m.positions == [0, 1]
    row = col.db.query("SELECT * FROM matches WHERE id=?", (m.id,))[0]
    assert row["decision_ms"] == 812.5
    assert row["voter"] == "ann"
    assert row["session_id"] == col.session.id
    entries = col.matches_df()
    assert list(entries["image_id"]) == [a, b]
    assert list(entries["position"]) == [0, 1]
    assert list(entries["mu_before"]) == [25.0, 25.0]
    assert list(entries["mu_after"]) == [expected[0][0],
                                                                                      expected[1][0]]
    assert col.image(b)["last_compared_at"] == m.created_at
    assert col.votes.get(m.id).image_ids == [a, b]


def test_bad_votes_change_nothing(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    a, b, _ = _ids(col)
    with pytest.raises(ValueError, match="outcome"):
        col.vote(a, b, "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicates"):
        col.vote(a, a, "left")
    with pytest.raises(NotFoundError, match="no image with id"):
        col.vote(a, 9999, "left")
    with pytest.raises(ValueError, match="at least 2"):
        col.record_match([a])
    with pytest.raises(ValueError, match="ranks"):
        col.record_match([a, b], [0, 1, 2])
    with pytest.raises(ValueError, match="kind"):
        col.record_match([a, b], kind="tie")
    assert col.stats()["comparisons"] == 0
    assert col.db.query("SELECT COUNT(*) FROM matches")[0][0] == 0
    assert _rating(col, a) == (25.0, 25 / 3, 0)


def test_skip_is_recorded_not_rated(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    a, b, _ = _ids(col)
    m = col.vote(a, b, "skip")
    assert m.kind == "skip"
    assert not m.rated
    assert _rating(col, a) == (25.0, 25 / 3, 0) == _rating(col, b)
    assert col.stats()["skips"] == 1
    assert col.stats()["comparisons"] == 0
    assert col.votes.comparisons_df().empty
    assert (a, b) not in [tuple(p) for p in col.next_pairs(3)]
    assert (b, a) not in col.next_pairs(3)
    assert col.doctor().ok


def test_skip_as_draw_setting(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3, skip_as_draw=True)
    a, b, _ = _ids(col)
    m = col.vote(a, b, "skip")
    assert m.kind == "skip"
    assert m.rated
    draw = R.rate_ranking([(25.0, 25 / 3), (25.0, 25 / 3)], [0, 0])
    assert _rating(col, a) == (*draw[0], 1)
    comp = col.votes.comparisons_df()
    assert len(comp) == 1
    assert comp["was_draw"][0] == 1
    assert col.doctor().ok


def test_draw(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    a, b, c = _ids(col)
    col.vote(a, c, "left")  # make them unequal first
    m = col.vote(a, b, "draw")
    assert m.kind == "draw"
    assert m.ranks == [0, 0]
    assert col.image(a)["mu"] < m.entries[0].mu_before
    assert col.image(b)["mu"] > 25.0
    comp = col.votes.comparisons_df()
    assert comp[["winner_id", "loser_id", "was_draw"]].values.tolist() == [[a, c, 0], [a, b, 1]]


def test_n_way_ranking(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(5)
    a, b, c, d, _ = _ids(col)
    m = col.record_match([a, b, c, d], [2, 0, 1, 1], source="cull")
    assert m.kind == "ranking"
    assert m.rated
    expected = R.rate_ranking([(25.0, 25 / 3)] * 4, [2, 0, 1, 1])
    for i, e in zip([a, b, c, d], expected):
        assert _rating(col, i) == (*e, 1)
    comp = col.votes.comparisons_df()
    pairs = {(w, lo, dr) for w, lo, dr in comp[["winner_id", "loser_id", "was_draw"]].values.tolist()}
    assert pairs == {(b, a, 0), (b, c, 0), (b, d, 0), (c, a, 0), (d, a, 0), (c, d, 1)}
    assert col.stats()["rankings"] == 1
    assert col.stats()["comparisons"] == 1
    assert col.db.query("SELECT source FROM matches")[0][0] == "cull"
    assert col.doctor().ok


def test_undo_last_is_exact(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    a, b, c, _ = _ids(col)
    col.vote(a, b, "left")
    col.vote(b, c, "right")
    before = {i: _rating(col, i) for i in (a, b, c)}
    last_at = col.image(b)["last_compared_at"]
    m = col.vote(a, c, "draw")
    undone = col.undo()
    assert undone is not None
    assert undone.id == m.id
    assert {i: _rating(col, i) for i in (a, b, c)} == before  # bit for bit
    assert col.image(b)["last_compared_at"] == last_at
    assert col.db.query("SELECT undone FROM matches WHERE id=?", (m.id,))[0][0] == 1
    assert col.stats()["undone"] == 1
    assert col.stats()["comparisons"] == 2
    assert len(col.matches_df()) == 4
    assert len(col.matches_df(include_undone=True)) == 6
    with pytest.raises(NotFoundError, match="already undone"):
        col.undo(m.id)
    with pytest.raises(NotFoundError, match="does not exist"):
        col.undo(12345)
    assert col.doctor().ok


def test_undo_with_nothing_to_undo(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(2)
    assert col.undo() is None
    a, b = _ids(col)
    col.vote(a, b, "left")
    col.start_session()  # a new session has nothing of its own to undo ...
    assert col.undo() is None
    assert col.undo(any_session=True) is not None  # ... but any_session reaches the earlier one
    assert _rating(col, a) == (25.0, 25 / 3, 0)


def test_undo_an_earlier_match_replays(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    a, b, c, d = _ids(col)
    m1 = col.vote(a, b, "left")
    col.vote(a, c, "right")
    col.vote(c, d, "left")
    col.undo(m1.id)
    # what the ratings must be: the two kept matches replayed from the priors
    r = {i: (25.0, 25 / 3) for i in (a, b, c, d)}
    (r[a], r[c]) = R.rate_ranking([r[a], r[c]], [1, 0])
    (r[c], r[d]) = R.rate_ranking([r[c], r[d]], [0, 1])
    for i in (a, c, d):
        assert _rating(col, i)[:2] == r[i]
    assert _rating(col, b) == (25.0, 25 / 3, 0)
    assert _rating(col, a)[2] == 1
    assert _rating(col, c)[2] == 2
    # the kept matches' before/after were rewritten to the replayed values
    df = col.matches_df()
    first = df[df["image_id"] == a].iloc[0]
    assert (first["mu_before"], first["sigma_before"]) == (25.0, 25 / 3)
    assert col.doctor().ok


def test_doctor_finds_and_replay_fixes_tampering(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    a, b, c = _ids(col)
    col.vote(a, b, "left")
    col.vote(b, c, "left")
    rep = col.doctor()
    assert rep.ok
    assert rep.integrity == "ok"
    assert rep.matches_replayed == 2
    assert "OK" in str(rep)
    good = _rating(col, b)
    col.db.execute("UPDATE images SET mu = mu + 1e-9 WHERE id=?", (b,))
    rep = col.doctor()
    assert not rep.ok
    assert [m["image_id"] for m in rep.mismatches] == [b]
    assert "differ" in str(rep)
    assert col.votes.replay() == 1
    assert _rating(col, b) == good
    assert col.doctor().ok
    assert col.votes.replay() == 0


def test_leaderboard_order_and_columns(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(5)
    a, b, c, d, e = _ids(col)
    for w, lo in ((a, b), (a, c), (b, c), (a, d), (d, c), (b, d)):
        col.vote(w, lo, "left")
    board = col.leaderboard()
    assert list(board.columns) == ["rank", "image_id", "filename", "filepath", "mu", "sigma", "ordinal",
                                   "comparison_count", "status"]
    assert list(board["rank"]) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(board["ordinal"], board["mu"] - 3 * board["sigma"])
    assert list(board["ordinal"]) == sorted(board["ordinal"], reverse=True)
    assert board["image_id"][0] == a
    assert board["image_id"].iloc[-1] in (c, e)
    assert len(col.leaderboard(limit=2)) == 2
    col.images.set_status(a, "rejected", "not for print")
    assert a not in set(col.leaderboard()["image_id"])
    assert a in set(col.leaderboard(include_inactive=True)["image_id"])
    with pytest.raises(ValueError, match="status"):
        col.images.set_status(a, "gone")


def test_leaderboard_ties_break_by_id(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    assert list(col.leaderboard()["image_id"]) == sorted(_ids(col))


def test_stats(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(4)
    a, b, c, d = _ids(col)
    col.vote(a, b, "left")
    col.vote(c, d, "draw")
    col.vote(a, c, "skip")
    col.record_match([a, b, c])
    col.vote(b, d, "right")
    col.undo()
    s = col.stats()
    assert (s["images"], s["active"], s["missing"], s["corrupt"], s["rejected"]) == (4, 4, 0, 0, 0)
    assert (s["comparisons"], s["wins"], s["draws"], s["skips"], s["rankings"], s["undone"]) == (3, 1, 1, 1, 1, 1)
    assert s["sessions"] == 1
    assert s["last_vote_at"] is not None


def test_images_df_and_labels(workspace: imagerank.Collection) -> None:
    df = workspace.images_df()
    assert len(df) == 7
    assert "ordinal" in df.columns
    assert len(workspace.images_df(status="corrupt")) == 1
    i = int(df["id"][0])
    assert workspace.images.add_label(i, "good") > 0
    with pytest.raises(ValueError, match="label"):
        workspace.images.add_label(i, "great")
    with pytest.raises(NotFoundError):
        workspace.image(10_000)


def test_resume_session_keeps_its_seen_pairs(make_collection) -> None:  # type: ignore[no-untyped-def]
    col = make_collection(3)
    a, b, c = _ids(col)
    s = col.start_session(voter="bo", strategy="spec", seed=1)
    col.vote(a, b, "left")
    col.vote(b, c, "left")
    col.start_session()
    again = col.votes.resume_session(s.id)
    assert again.voter == "bo"
    assert again.seen == {(min(a, b), max(a, b)), (min(b, c), max(b, c))}
    assert [sorted(p) for p in col.next_pairs(3)] == [sorted((a, c))]
    with pytest.raises(NotFoundError):
        col.votes.resume_session(999)


# ------------------------------------------------------------------ property: undo == replay of the kept matches
N_IMAGES = 5


@pytest.fixture(scope="module")
def prop_collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[imagerank.Collection]:
    root = tmp_path_factory.mktemp("prop")
    col = imagerank.init(root / "ws", write_images(root / "imgs", N_IMAGES), strategy="spec")
    col.scan(progress=False, thumbnails=False)
    yield col
    col.close()


pick = st.lists(st.integers(0, N_IMAGES - 1), min_size=2, max_size=2, unique=True)
op = st.one_of(
    st.tuples(st.just("vote"), pick, st.sampled_from(["left", "right", "draw", "skip"])),
    st.tuples(st.just("rank"), st.lists(st.integers(0, N_IMAGES - 1), min_size=3, max_size=4, unique=True),
              st.lists(st.integers(0, 2), min_size=4, max_size=4)),
    st.tuples(st.just("undo_last")),
    st.tuples(st.just("undo_any"), st.integers(0, 1000)),
    st.tuples(st.just("skip_as_draw"), st.booleans()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=25))
def test_votes_and_undos_equal_a_replay(prop_collection: imagerank.Collection, ops: list[tuple]) -> None:
    col = prop_collection
    with col.db.atomic() as conn:  # a fresh catalog state for every example
        conn.execute("DELETE FROM match_entries")
        conn.execute("DELETE FROM matches")
        conn.execute("UPDATE images SET mu=?, sigma=?, comparison_count=0, last_compared_at=NULL",
                     (R.DEFAULT_MU, R.DEFAULT_SIGMA))
    col.settings = col.settings.replace(skip_as_draw=False)
    col.pairs.invalidate()
    col.start_session(strategy="spec", seed=0)
    ids = _ids(col)
    for o in ops:
        if o[0] == "vote":
            col.vote(ids[o[1][0]], ids[o[1][1]], o[2])
        elif o[0] == "rank":
            col.record_match([ids[k] for k in o[1]], o[2][: len(o[1])])
        elif o[0] == "undo_last":
            col.undo()
        elif o[0] == "undo_any":
            kept = [r[0] for r in col.db.query("SELECT id FROM matches WHERE undone=0 ORDER BY id")]
            if kept:
                col.undo(kept[o[1] % len(kept)])
        else:
            col.settings = col.settings.replace(skip_as_draw=o[1])
    # an independent replay of the kept, rated matches from the defaults
    state = {i: (R.DEFAULT_MU, R.DEFAULT_SIGMA, 0) for i in ids}
    for (mid,) in col.db.query("SELECT id FROM matches WHERE undone=0 AND rated=1 ORDER BY id"):
        es = col.db.query("SELECT image_id, rank FROM match_entries WHERE match_id=? ORDER BY rowid", (mid,))
        after = R.rate_ranking([state[e[0]][:2] for e in es], [e[1] for e in es])
        for e, a in zip(es, after):
            state[e[0]] = (a[0], a[1], state[e[0]][2] + 1)
    assert {i: _rating(col, i) for i in ids} == state
    assert col.doctor().ok
    # the in-memory pool the pairing sees agrees with the catalog
    pool = col.pool()
    for k, i in enumerate(pool.ids):
        assert (pool.mu[k], pool.sigma[k], int(pool.count[k])) == state[int(i)]
