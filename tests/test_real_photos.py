"""The main job on real photographs (../shared/data/photos/exif-samples): scan, thumbnails, a scripted
voting session, export; every file is accounted for."""

from __future__ import annotations

import os
from pathlib import Path

import imagerank

EXTENSIONS = (".jpg", ".jpeg", ".tif", ".tiff")


def test_scan_thumbnails_and_vote_on_real_photos(tmp_path: Path, shared_data: Path) -> None:
    photos = shared_data / "photos" / "exif-samples"
    # The workspace stores its image folders resolved (symbolic links followed once, at init) and the files under
    # them as walked from there. The data folder may itself be reached through a link: compare against the
    # resolved folder, and open the workspace through one more link to hold either way.
    on_disk = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(photos.resolve()) for f in fs if f.lower().endswith(EXTENSIONS)
    )
    assert len(on_disk) > 80
    link = tmp_path / "photos-link"
    link.symlink_to(photos, target_is_directory=True)
    col = imagerank.init(tmp_path / "ws", link, strategy="spec", extensions=EXTENSIONS, thumb_size=256)
    assert col.settings.roots == (str(photos.resolve()),)
    rep = col.scan(progress=False)
    assert not rep.errors
    rows = {r["filepath"]: r for r in map(dict, col.db.query("SELECT * FROM images"))}
    # every file accounted for: in the catalog, active with a thumbnail, or corrupt with a reason
    assert sorted(rows) == on_disk
    for path, r in rows.items():
        assert r["status"] in ("active", "corrupt"), path
        if r["status"] == "active":
            assert col.thumbs.path(r["id"]) is not None, path
            assert r["width"] > 0
            assert r["height"] > 0
        else:
            assert r["status_reason"], path
    corrupt = {p for p, r in rows.items() if r["status"] == "corrupt"}
    failures = set(col.images.failures_df()["filepath"])
    assert corrupt == failures
    assert rep.added == len(on_disk)
    assert rep.corrupt == len(corrupt)
    assert rep.thumbnails_built == len(on_disk) - len(corrupt)
    active = len(on_disk) - len(corrupt)
    assert active > 60

    # a scripted 50-vote session: wins, draws, skips, an undo
    col.start_session(voter="script", strategy="spec", seed=0)
    outcomes = ["left", "right", "left", "draw", "right", "skip", "left", "right", "left", "right"]
    seen = set()
    for k in range(50):
        (left, right) = col.next_pairs(1)[0]
        seen.add(frozenset((left, right)))
        col.vote(left, right, outcomes[k % len(outcomes)], decision_ms=400.0 + k)
        if k == 20:
            col.undo()
    assert len(seen) == 50
    s = col.stats()
    assert s["wins"] + s["draws"] + s["skips"] == 49
    assert s["undone"] == 1
    assert col.doctor().ok
    board = col.leaderboard()
    assert len(board) == active
    assert board["comparison_count"].sum() == 2 * (s["wins"] + s["draws"])
    rep2 = col.export_top(5, tmp_path / "best")
    assert len(rep2.written) == 5
    assert sorted(os.listdir(tmp_path / "best"))[0].startswith("0001_")
    # a rescan changes nothing
    again = col.scan(progress=False)
    assert (again.added, again.changed, again.missing, again.thumbnails_built) == (0, 0, 0, 0)
    col.close()
