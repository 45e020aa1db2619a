"""auto_pick end to end against the fake Commons server and a folder: picks, flags, errors, reruns, restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagerank.autopick import (
    ClipAestheticScorer,
    CommonsSource,
    FolderSource,
    PickConfig,
    PickStore,
    Subject,
    auto_pick,
    read_subjects,
)
from imagerank.autopick.fake_commons import FakeCommons, FakeFile, fake_catalogue, render
from imagerank.catalog import Catalog
from imagerank.errors import InvalidArgumentError, NotFoundError

NAMES = [f"Subject {i:03d}" for i in range(20)]
PLAIN = PickConfig(demote_off_subject=False)


def commons(srv: FakeCommons, cat: Catalog, **kw: Any) -> CommonsSource:
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("per_hour", 0)
    return CommonsSource("tests@example.org", api=srv.api, state_dir=cat.root / "autopick", **kw)


def test_good_subjects_are_picked_the_rest_flagged_with_reasons(
        cat: Catalog, fake: FakeCommons, scorer: ClipAestheticScorer) -> None:
    seen: list[dict[str, Any]] = []
    rep = auto_pick(cat, NAMES, commons(fake, cat), scorer, PickConfig(batch_size=8, demote_off_subject=False),
                    progress=False, on_batch=seen.append)
    assert [b["processed_count"] for b in rep.batches] == [8, 8, 4]
    assert seen == rep.batches
    assert rep.batches[0] == {"batch": 0, "status": "ok", "processed_count": 8, "updated_count": 8,
                              "picked": 7, "flagged": 1, "errors": 0, "skipped": 0}
    df = PickStore(cat).subjects_df().set_index("name")
    only_bad = {"Subject 005", "Subject 011", "Subject 017"}
    empty = {"Subject 009", "Subject 019"}
    assert set(df.index[df.status == "flagged"]) == only_bad | empty
    for n in only_bad:
        assert df.loc[n, "reason"].startswith("best score 2.")
        assert "< threshold 5.00" in df.loc[n, "reason"]
    assert df.loc["Subject 009", "reason"] == "no candidates found at commons for 'Subject 009'"
    row = df.loc["Subject 000"]
    assert row.status == "picked"
    assert row.score > 5
    assert row.source == "commons"
    assert row.source_url.startswith("http://127.0.0.1:")
    assert row.licence in ("CC BY-SA 4.0", "CC0")
    assert row.author == "Example"
    assert "via Wikimedia Commons" in row.attribution
    img = cat.images.get(int(row.image_id))
    with Image.open(img["filepath"]) as im:  # fitted into 800 x 600, aspect kept
        assert im.width <= 800
        assert im.height <= 600
        assert max(im.width / 800, im.height / 600) == pytest.approx(1.0, abs=0.01)
    cands = PickStore(cat).candidates_df("Subject 000")
    assert len(cands) == 6
    assert (cands.status == "picked").sum() == 1
    assert cands.score.iloc[0] == pytest.approx(row.score)
    # thumbnails were fetched, only the winner's original
    kinds = [k for k, what in fake.log if what.startswith("Subject 000 ")]
    assert kinds.count("thumb") == 6
    assert kinds.count("orig") == 1


def test_rerun_skips_resolved_subjects_without_requests(
        cat: Catalog, fake: FakeCommons, scorer: ClipAestheticScorer) -> None:
    auto_pick(cat, NAMES[:6], commons(fake, cat), scorer, PLAIN, progress=False)
    n = len(fake.log)
    src = commons(fake, cat)
    rep = auto_pick(cat, NAMES[:6], src, scorer, PLAIN, progress=False)
    assert len(fake.log) == n
    assert src.network_requests == 0
    assert rep.counts()["skipped"] == 6
    assert rep.batches[0]["processed_count"] == 0
    rep = auto_pick(cat, [NAMES[0], NAMES[1], NAMES[0]], commons(fake, cat), scorer, PLAIN, redo=True,
                    progress=False)
    assert rep.counts()["picked"] == 2  # a repeated name is processed once
    assert PickStore(cat).get("Subject 000")["attempts"] == 2


def test_restart_mid_batch_keeps_finished_subjects_and_the_rate_budget(
        cat: Catalog, fake: FakeCommons, scorer: ClipAestheticScorer) -> None:
    class Crash(BaseException):
        pass

    src = commons(fake, cat, per_hour=10_000)

    class Dies:  # the process is killed while the 4th subject is being searched
        name = "commons"

        def __init__(self) -> None:
            self.calls = 0

        def candidates(self, subject: str, limit: int) -> list[Any]:
            self.calls += 1
            if self.calls == 4:
                raise Crash
            return src.candidates(subject, limit)

        def thumbnail(self, c: Any) -> bytes:
            return src.thumbnail(c)

        def original(self, c: Any) -> bytes:
            return src.original(c)

    with pytest.raises(Crash):
        auto_pick(cat, NAMES[:8], Dies(), scorer, PLAIN, progress=False)
    used = src.budget.used()
    assert used == src.network_requests > 0
    src.close()
    assert PickStore(cat).counts()["picked"] == 3
    fake.log.clear()
    again = commons(fake, cat, per_hour=10_000)
    assert again.budget.used() == used  # the budget survived the restart
    rep = auto_pick(cat, NAMES[:8], again, scorer, PLAIN, progress=False)
    assert rep.counts() == {"picked": 4, "flagged": 1, "error": 0, "skipped": 3}
    assert not [w for _, w in fake.log if w.startswith(("Subject 000", "Subject 001", "Subject 002"))]


def test_source_errors_are_recorded_and_the_batch_goes_on(
        cat: Catalog, scorer: ClipAestheticScorer) -> None:
    with FakeCommons(fake_catalogue(4), faults={"Subject 001": ["503"] * 8}) as srv:
        rep = auto_pick(cat, NAMES[:4], commons(srv, cat, attempts=2), scorer, PLAIN, progress=False)
    assert rep.subjects["Subject 001"]["status"] == "error"
    assert "after 2 tries: HTTP 503" in rep.subjects["Subject 001"]["reason"]
    assert rep.batches[0]["status"] == "partial"
    assert rep.batches[0]["errors"] == 1
    assert rep.counts()["picked"] == 3
    assert PickStore(cat).get("Subject 001")["status"] == "error"
    with FakeCommons(fake_catalogue(4)) as srv:  # errors are not resolved: a rerun tries them again
        rep = auto_pick(cat, NAMES[:4], commons(srv, cat), scorer, PLAIN, progress=False)
    assert rep.subjects["Subject 001"]["status"] == "picked"


def test_html_original_bomb_and_corrupt_thumbnails(cat: Catalog, scorer: ClipAestheticScorer) -> None:
    files = {
        "Html": [FakeFile("File:Html 0.jpg", kind="html", width=900, height=700, seed=1)],
        "Mixed": [FakeFile("File:Mixed bomb.png", kind="bomb"),
                  FakeFile("File:Mixed corrupt.jpg", kind="corrupt", width=900, height=700, seed=2),
                  FakeFile("File:Mixed fine.jpg", kind="good", width=900, height=700, seed=3)],
        "Broken": [FakeFile("File:Broken bomb.png", kind="bomb"),
                   FakeFile("File:Broken corrupt.jpg", kind="corrupt", width=900, height=700, seed=4)],
    }
    with FakeCommons(files) as srv:
        rep = auto_pick(cat, list(files), commons(srv, cat), scorer, PLAIN, progress=False)
    assert rep.subjects["Html"]["status"] == "error"
    assert "sent 'text/html'" in rep.subjects["Html"]["reason"]
    assert rep.subjects["Mixed"]["status"] == "picked"
    c = PickStore(cat).candidates_df("Mixed").set_index("title")
    assert c.loc["File:Mixed bomb.png", "status"] == "failed"
    assert "decompression-bomb guard" in c.loc["File:Mixed bomb.png", "reason"]
    assert c.loc["File:Mixed corrupt.jpg", "status"] == "failed"
    assert "not a decodable image" in c.loc["File:Mixed corrupt.jpg", "reason"]
    assert rep.subjects["Broken"]["status"] == "flagged"
    assert rep.subjects["Broken"]["reason"].startswith("no usable candidate (2 found)")


def test_excluded_licences_are_never_picked(cat: Catalog, scorer: ClipAestheticScorer) -> None:
    files = {"Lic": [FakeFile("File:Lic nc.jpg", licence="CC BY-NC 2.0", width=900, height=700, seed=5),
                     FakeFile("File:Lic free.jpg", licence="CC0", kind="bad", width=900, height=700, seed=6)]}
    with FakeCommons(files) as srv:
        rep = auto_pick(cat, ["Lic"], commons(srv, cat), scorer,
                        PickConfig(excluded_licences=("cc by-nc",), demote_off_subject=False), progress=False)
    assert rep.subjects["Lic"]["status"] == "flagged"  # the only good one is non-commercial
    c = PickStore(cat).candidates_df("Lic").set_index("title")
    assert c.loc["File:Lic nc.jpg", "status"] == "excluded"
    assert c.loc["File:Lic nc.jpg", "reason"] == "licence 'CC BY-NC 2.0' is excluded (cc by-nc)"


def test_fallback_image_per_category(cat: Catalog, fake: FakeCommons, scorer: ClipAestheticScorer,
                                     tmp_path: Path) -> None:
    fb = tmp_path / "castle.png"
    render("good", 1200, 300, 9).save(fb)
    cfg = PickConfig(fallbacks={"castle": str(fb)}, demote_off_subject=False)
    rep = auto_pick(cat, [Subject("Subject 009", "castle"), Subject("Subject 019", "lake")], commons(fake, cat),
                    scorer, cfg, progress=False)
    got = rep.subjects["Subject 009"]
    assert got["status"] == "flagged"
    assert "fallback image for category 'castle' used" in got["reason"]
    with Image.open(cat.images.get(got["image_id"])["filepath"]) as im:
        assert im.size == (800, 200)
    assert rep.subjects["Subject 019"]["image_id"] is None
    with pytest.raises(InvalidArgumentError, match="fallbacks"):
        PickConfig(fallbacks={"x": str(tmp_path / "missing.png")})


def test_small_winner_is_not_enlarged(cat: Catalog, scorer: ClipAestheticScorer) -> None:
    with FakeCommons({"Small": [FakeFile("File:Small.jpg", width=400, height=300, seed=7)]}) as srv:
        rep = auto_pick(cat, ["Small"], commons(srv, cat), scorer, PLAIN, progress=False)
    with Image.open(cat.images.get(rep.subjects["Small"]["image_id"])["filepath"]) as im:
        assert im.size == (400, 300)


def test_off_subject_candidates_are_demoted_by_clip_similarity(
        cat: Catalog, fake: FakeCommons, scorer: ClipAestheticScorer) -> None:
    cfg = PickConfig(similarity_margin=0.0001, demotion=3.0)
    auto_pick(cat, ["Subject 000"], commons(fake, cat), scorer, cfg, progress=False)
    c = PickStore(cat).candidates_df("Subject 000")
    best = c.similarity.max()
    off = c.similarity < best - 0.0001
    assert off.any()
    assert np.allclose(c.score[off], np.maximum(c.aesthetic[off] - 3.0, 0))
    assert np.allclose(c.score[~off], c.aesthetic[~off])
    assert c.reason[off].str.startswith("off-subject: CLIP similarity").all()
    # the similarity stored is the scorer's own cosine similarity to the subject's name
    X = scorer.embed([render("good", 64, 64, 0)])
    assert -1 <= scorer.similarity(X, "Subject 000")[0] <= 1


def test_folder_source(cat: Catalog, scorer: ClipAestheticScorer, tmp_path: Path) -> None:
    root = tmp_path / "subjects"
    (root / "Eiffel Tower").mkdir(parents=True)
    render("good", 1000, 800, 1).save(root / "Eiffel Tower" / "a.jpg")
    render("bad", 1000, 800, 2).save(root / "Eiffel Tower" / "b.jpg")
    (root / "Eiffel Tower" / "a.jpg.txt").write_text("licence: CC0\nauthor: Someone\n")
    (root / "Eiffel Tower" / "notes.txt").write_text("not an image")
    (root / "Dim").mkdir()
    render("bad", 500, 400, 3).save(root / "Dim" / "x.png")
    (root / "Broken").mkdir()
    (root / "Broken" / "y.jpg").write_bytes(b"\xff\xd8 not really")
    rep = auto_pick(cat, ["Eiffel Tower", "Dim", "Broken", "Missing", "../Eiffel Tower"], FolderSource(root),
                    scorer, PLAIN, progress=False)
    st = {k: v["status"] for k, v in rep.subjects.items()}
    assert st == {"Eiffel Tower": "picked", "Dim": "flagged", "Broken": "flagged", "Missing": "flagged",
                  "../Eiffel Tower": "flagged"}  # no escape from the root
    row = PickStore(cat).get("Eiffel Tower")
    assert row["licence"] == "CC0"
    assert row["author"] == "Someone"
    with pytest.raises(InvalidArgumentError, match="folder of subject folders"):
        FolderSource(tmp_path / "nope")


def test_read_subjects_and_bad_input(tmp_path: Path, cat: Catalog) -> None:
    p = tmp_path / "s.csv"
    p.write_text("Name,Category\nTower,building\n,x\nTower,again\nLake,\n", encoding="utf-8")
    subs, problems = read_subjects(p)
    assert subs == [Subject("Tower", "building"), Subject("Lake", None)]
    assert problems == ["line 3: empty name; row left out", "line 4: 'Tower' repeated; first row kept"]
    (tmp_path / "bad.csv").write_text("title\nx\n")
    with pytest.raises(InvalidArgumentError, match="'name' \\(or 'subject'\\) column"):
        read_subjects(tmp_path / "bad.csv")
    with pytest.raises(InvalidArgumentError, match="subject name"):
        Subject("  ")
    with pytest.raises(InvalidArgumentError, match="threshold"):
        PickConfig(threshold=11)
    with pytest.raises(InvalidArgumentError, match="candidates"):
        PickConfig(candidates=0)
    with pytest.raises(NotFoundError):
        PickStore(cat).get("never")


def test_labels_on_candidates(cat: Catalog, fake: FakeCommons, scorer: ClipAestheticScorer) -> None:
    auto_pick(cat, ["Subject 000"], commons(fake, cat), scorer, PLAIN, progress=False)
    store = PickStore(cat)
    c = store.candidates_df("Subject 000")
    store.label(int(c.id[0]), "good", source="label-panel")
    store.label(int(c.id[1]), "bad", source="cli")
    X, y, models = store.labelled_embeddings(scorer.name)
    assert X.shape == (2, 64)
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    assert y.tolist() == [1.0, 0.0]
    assert models == [scorer.name] * 2
    assert store.candidates_df("Subject 000").label_source.tolist()[:2] == ["label-panel", "cli"]
    assert (store.preview(int(c.id[0])) or b"")[:2] == b"\xff\xd8"
    with pytest.raises(InvalidArgumentError, match="label"):
        store.label(int(c.id[0]), "meh")
    with pytest.raises(NotFoundError):
        store.label(10**6, "good")


def test_labels_survive_a_redo(cat: Catalog, fake: FakeCommons, scorer: ClipAestheticScorer) -> None:
    auto_pick(cat, ["Subject 000"], commons(fake, cat), scorer, PLAIN, progress=False)
    store = PickStore(cat)
    c = store.candidates_df("Subject 000").set_index("title")
    store.label(int(c.loc["File:Subject 000 view 1.jpg", "id"]), "bad", source="label-panel")
    auto_pick(cat, ["Subject 000"], commons(fake, cat), scorer, PLAIN, redo=True, progress=False)
    again = store.candidates_df("Subject 000").set_index("title")
    assert again.loc["File:Subject 000 view 1.jpg", "label"] == "bad"
    assert again.loc["File:Subject 000 view 1.jpg", "label_source"] == "label-panel"
    assert again.label.notna().sum() == 1
