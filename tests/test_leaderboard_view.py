"""LeaderboardView: ranks, thumbnails, sorting, paging (5,000+ rows) and export controls, headless."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import imagerank
from imagerank.widgets import LeaderboardView


@pytest.fixture
def voted(make_collection):
    col = make_collection(30)
    rng = np.random.default_rng(0)
    for a, b in col.next_pairs(60):
        col.vote(a, b, "left" if rng.random() < 0.7 else "right")
    return col


def shown(view: LeaderboardView) -> list[dict]:
    """The table as the user sees it: one dict of cell texts per row."""
    out = []
    for widgets in view._rows[: len(view.rows)]:
        out.append({k: (w.value if k != "thumbnail" else bytes(w.value)) for k, w in widgets.items()})
    return out


def test_first_page_is_the_leaderboard_with_thumbnails(voted):
    view = LeaderboardView(voted, page_size=10)
    board = voted.leaderboard(10)
    rows = shown(view)
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 11)]
    assert [r["filename"] for r in rows] == board["filename"].tolist()
    assert [r["score"] for r in rows] == [f"{x:.2f}" for x in board["ordinal"]]
    assert [r["mu"] for r in rows] == [f"{x:.2f}" for x in board["mu"]]
    assert all(r["thumbnail"].startswith(b"\xff\xd8") for r in rows)
    assert "rows 1–10 of 30" in view._page_label.value
    assert view._prev.disabled
    assert not view._next.disabled


def test_sorting_by_each_column_and_reversing(voted):
    view = LeaderboardView(voted, page_size=50)
    view.sort("filename")
    names = [r["filename"] for r in shown(view)]
    assert names == sorted(names)
    view._headers["filename"].click()  # the header button reverses
    assert [r["filename"] for r in shown(view)] == sorted(names, reverse=True)
    view.sort("sigma", ascending=True)
    sig = [float(r["sigma"]) for r in shown(view)]
    assert sig == sorted(sig)
    view.sort("comparisons")  # default: most compared first
    counts = [int(r["comparisons"]) for r in shown(view)]
    assert counts == sorted(counts, reverse=True)
    assert "▼" in view._headers["comparisons"].description
    view.sort("rank")
    assert [r["rank"] for r in shown(view)][:3] == ["1", "2", "3"]
    with pytest.raises(ValueError, match="thumbnail"):
        view.sort("thumbnail")


def test_filter_and_refresh_after_votes(voted):
    view = LeaderboardView(voted)
    view._filter.value = "img_000"
    assert view.total == 10
    assert all("img_000" in r["filename"] for r in shown(view))
    view._filter.value = ""
    top = view.rows["image_id"].iloc[0]
    last = view.rows["image_id"].iloc[-1]
    for _ in range(6):
        voted.vote(last, top, "left")
    assert view.rows["image_id"].iloc[0] == top  # unchanged until refreshed
    view._refresh_btn.click()
    assert view.rows["image_id"].iloc[0] != top or view.rows["ordinal"].iloc[0] < 0


def test_paging_5000_rows(tmp_path):
    # 5,000 catalog rows (sharing a few real files' thumbnails is not needed: only the shown page is read).
    folder = tmp_path / "imgs"
    folder.mkdir()
    from imgsupport import write_image

    src = write_image(folder / "base.jpg", 16, 12)
    for i in range(5000):
        os.link(src, folder / f"copy_{i:05d}.jpg")
    col = imagerank.init(tmp_path / "ws", folder, strategy="spec")
    col.scan(progress=False, thumbnails=False)
    t0 = time.perf_counter()
    view = LeaderboardView(col, page_size=25)
    assert view.total == 5001
    assert view.n_pages == 201
    view._next.click()
    view._next.click()
    assert view.page == 2
    assert shown(view)[0]["rank"] == "51"
    view.goto(10_000)  # clipped
    assert view.page == 200
    assert len(view.rows) == 1
    assert not view._prev.disabled
    assert view._next.disabled
    assert "rows 5,001–5,001 of 5,001" in view._page_label.value
    assert time.perf_counter() - t0 < 20
    col.close()


def test_export_controls_say_what_was_written_where(voted):
    view = LeaderboardView(voted)
    view._top_n.value = 5
    view._export_top_btn.click()
    text = view.message.value
    assert "wrote 5 file(s) to" in text
    assert "(copy)" in text
    out = Path(text.split(" to ", 1)[1].split(" (")[0])
    assert sorted(p.name[:5] for p in out.iterdir()) == ["0001_", "0002_", "0003_", "0004_", "0005_"]
    view._mode.value = "symlink"
    cut = float(voted.leaderboard(3)["ordinal"].iloc[-1])
    msg = view.export_above(cut)
    assert "wrote 3 file(s)" in msg
    assert "(symlink)" in msg
    msg = view.write_csv()
    assert msg.startswith("wrote 30 rows to ")
    assert msg.endswith(".csv")
    assert Path(msg.split(" to ", 1)[1]).exists()
    # A CSV path that exists: refused, and said so in red.
    msg = view.write_csv(Path(msg.split(" to ", 1)[1]))
    assert msg.startswith("CSV failed")
    assert "error" in view.message.value
    # A source gone missing: reported, not fatal.
    Path(voted.leaderboard(1)["filepath"].iloc[0]).unlink()
    msg = view.export_top(2)
    assert "wrote 1 file(s)" in msg
    assert "1 source(s) missing" in msg


def test_page_size_validated(voted):
    with pytest.raises(ValueError, match="page_size"):
        LeaderboardView(voted, page_size=7)
    view = LeaderboardView(voted, page_size=10)
    view._size.value = 25
    assert len(view.rows) == 25
    assert len(shown(view)) == 25


def test_voted_only_hides_images_nobody_voted_on(make_collection, tmp_path):
    col = make_collection(8)
    ids = [int(i) for i in col.images_df()["id"]]
    col.vote(ids[0], ids[1], "left")
    col.votes.set_priors([(60.0, 3.0, ids[7])])  # a learned prior puts an unseen image first
    view = LeaderboardView(col)
    assert view.total == 8
    assert shown(view)[0]["filename"] == col.image(ids[7])["filename"]
    view._voted_only.value = True  # the user ticks "voted only"
    assert view.total == 2
    assert {r["filename"] for r in shown(view)} == {col.image(i)["filename"] for i in ids[:2]}
    msg = view.export_top(5)
    assert "wrote 2 file(s)" in msg
    assert LeaderboardView(col, voted_only=True).total == 2


def test_rows_ranked_by_the_prior_alone_are_marked(make_collection):
    """Issue 17: an image never voted on but ranked by a stored learned prior is shown in grey italics with a
    tooltip, and the page line counts such rows; voted rows stay plain."""
    from imagerank.widgets.leaderboard import PRIOR_ONLY_TIP

    col = make_collection(12)
    ids = col.pool().ids.astype(int).tolist()
    for a, b in [(ids[0], ids[1]), (ids[2], ids[3]), (ids[0], ids[2])]:
        col.vote(a, b, "left")
    col.votes.set_priors([(40.0 if i == ids[11] else 25.0, 2.0, i) for i in ids])  # a strong prior for ids[11]
    view = LeaderboardView(col, page_size=25)
    prior_only = view.rows.set_index("image_id")["prior_only"]
    assert prior_only[ids[11]]
    assert not prior_only[ids[0]]
    assert int(prior_only.sum()) == 8  # the 8 never-voted images
    by_name = {r["filename"]: w for r, w in zip(shown(view), view._rows)}
    name = dict(zip(view.rows["image_id"], view.rows["filename"]))
    marked, plain = by_name[name[ids[11]]], by_name[name[ids[0]]]
    assert view.rows.iloc[0]["image_id"] == ids[11]  # ranked #1 by its prior alone
    assert marked["score"].style.font_style == "italic"
    assert marked["score"].tooltip == PRIOR_ONLY_TIP
    assert not plain["score"].style.font_style
    assert plain["score"].tooltip is None
    assert "8 ranked by the prior alone" in view._page_label.value
    view._voted_only.value = True  # voted only: no such row, no count
    assert not view.rows["prior_only"].any()
    assert "prior alone" not in view._page_label.value
