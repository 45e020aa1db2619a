"""The learned rerank: it re-decides picks from explicit weights, says which part decided, and — trained on a few
dozen burst choices of a simulated person who prefers brighter, more saturated frames over sharper ones — changes
the picks of a shoot it never saw towards that preference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import imagerank
from imagerank.cull import cull, to_frame
from imagerank.cull.ir import reason
from imagerank.cull.refine import burst_groups, ir_image_ids
from imagerank.cull.rerank import Reranker, RerankWeights, records_of, rerank
from imagerank.cull.shoot import read_shoot_manifest, render_burst_shoot, simulated_burst_picks
from imagerank.errors import InvalidArgumentError, NotFoundError, NoVotesError


# ---------------------------------------------------------------------------------------------- unit: the decision
def _rec(path: str, score: float, *, cluster: int = 0, pick: bool = False, bucket: str = "trash", lap: float = 200.0,
         dhash: int = 0) -> dict:
    reasons = [reason("burst_pick", "select", "highest"), reason("top_score", "select", "top")] if pick else [
        reason("near_duplicate", "select", "dup", ref="a.jpg")]
    return {"path": path, "status": "ok", "score": score, "cluster_id": cluster, "cluster_size": 3, "burst_id": 0,
            "is_pick": pick, "bucket": bucket, "laplacian_var": lap, "dhash": dhash, "decided_by": "tech",
            "capture_time": f"2024-01-01T10:00:{ord(path[0]) - ord('a'):02d}",
            "reasons": reasons}


def _ir(**lap: float) -> pd.DataFrame:
    return to_frame([_rec("a.jpg", 0.9, pick=True, bucket="best"), _rec("b.jpg", 0.8, lap=lap.get("b", 200.0)),
                     _rec("c.jpg", 0.7, dhash=7), _rec("solo.jpg", 0.5, cluster=1, pick=True, bucket="good")])


def _learned(values: dict[str, float | None]):
    return lambda ir: pd.Series([values.get(p) for p in ir["path"]], index=ir.index, dtype="Float64")


def test_learned_part_moves_the_pick_and_says_so():
    ir = _ir()
    out = rerank(ir, _learned({"a.jpg": 0.0, "b.jpg": 0.5, "c.jpg": -1.0, "solo.jpg": 3.0}))
    by = out.set_index("path")
    assert by.loc["b.jpg", "is_pick"]
    assert not by.loc["a.jpg", "is_pick"]
    assert by.loc["b.jpg", "bucket"] == "best"  # the learned pick takes the replaced pick's bucket
    assert by.loc["a.jpg", "bucket"] == "trash"
    assert by.loc["c.jpg", "bucket"] == "trash"
    assert list(by.loc[["a.jpg", "b.jpg", "c.jpg"], "decided_by"]) == ["learned"] * 3
    assert by.loc["solo.jpg", "decided_by"] == "tech"
    assert by.loc["solo.jpg", "bucket"] == "good"
    codes = {p: [x["code"] for x in by.loc[p, "reasons"]] for p in ("a.jpg", "b.jpg", "c.jpg")}
    assert "learned_pick" in codes["b.jpg"]
    assert "near_duplicate" not in codes["b.jpg"]
    assert "burst_pick" not in codes["a.jpg"]
    assert "near_duplicate" in codes["a.jpg"]
    lp = next(x for x in by.loc["b.jpg", "reasons"] if x["code"] == "learned_pick")
    assert math.isclose(lp["value"], 0.8 + 0.5)
    assert math.isclose(lp["threshold"], 0.9 + 0.0)
    assert "weight 1" in lp["message"]
    dup = next(x for x in by.loc["c.jpg", "reasons"] if x["code"] == "near_duplicate")
    assert dup["ref"] == "b.jpg"
    assert dup["value"] == 3
    assert out.attrs["rerank"]["changed"] == 1
    assert out.attrs["rerank"]["weights"] == {"tech": 1.0, "learned": 1.0}
    assert ir.set_index("path").loc["a.jpg", "is_pick"]  # the input is not changed


def test_weights_decide_which_part_wins():
    scores = _learned({"a.jpg": 0.0, "b.jpg": 0.5, "c.jpg": -1.0, "solo.jpg": 0.0})
    tech_only = rerank(_ir(), scores, weights=RerankWeights(tech=1.0, learned=0.0))
    assert (tech_only["decided_by"].dropna() == "tech").all()
    assert tech_only.set_index("path").loc["a.jpg", "is_pick"]
    light = rerank(_ir(), scores, weights=RerankWeights(tech=1.0, learned=0.1))  # 0.8 + 0.05 < 0.9
    assert light.set_index("path").loc["a.jpg", "is_pick"]


def test_a_blurry_learned_pick_goes_to_trash_and_unscored_clusters_stay():
    out = rerank(_ir(b=3.0), _learned({"a.jpg": 0.0, "b.jpg": 5.0, "c.jpg": 0.0}))
    by = out.set_index("path")
    assert by.loc["b.jpg", "is_pick"]
    assert by.loc["b.jpg", "bucket"] == "trash"
    assert "blurry" in [x["code"] for x in by.loc["b.jpg", "reasons"]]
    partly = rerank(_ir(), _learned({"a.jpg": 0.0, "b.jpg": 5.0}))  # c.jpg has no learned score
    assert partly.set_index("path").loc["a.jpg", "is_pick"]
    assert partly.attrs["rerank"]["unscored"] == 1
    assert partly.attrs["rerank"]["changed"] == 0
    assert pd.isna(partly.set_index("path").loc["c.jpg", "learned_score"])


def test_bad_input_is_refused_with_what_was_expected():
    for bad in ({"tech": -1.0}, {"learned": float("nan")}, {"tech": 0.0, "learned": 0.0}, {"tech": True}):
        with pytest.raises(InvalidArgumentError, match="weight"):
            RerankWeights(**bad)
    with pytest.raises(InvalidArgumentError, match="callable"):
        Reranker("not a scorer")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="one per IR row"):
        rerank(_ir(), lambda ir: pd.Series([1.0, 2.0]))
    with pytest.raises(InvalidArgumentError, match="IR DataFrame"):
        rerank([{"path": "a"}], _learned({}))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="own weights"):
        rerank(_ir(), Reranker(_learned({})), weights=RerankWeights())
    with pytest.raises(InvalidArgumentError, match="max_candidates"):
        burst_groups(_ir(), max_candidates=5)
    with pytest.raises(InvalidArgumentError, match="IR columns"):
        burst_groups(pd.DataFrame({"path": ["a"]}))
    empty = rerank(to_frame([]), _learned({}))
    assert len(empty) == 0
    assert empty.attrs["rerank"]["clusters"] == 0


def test_records_round_trip():
    ir = _ir()
    assert to_frame(records_of(ir)).equals(ir)


def test_burst_groups_keep_the_pick_and_show_at_most_four():
    recs = [_rec(f"{c}.jpg", s, pick=c == "e", bucket="good" if c == "e" else "trash")
            for c, s in zip("abcdef", (0.9, 0.8, 0.7, 0.6, 0.1, 0.5))]
    for r in recs:
        r["cluster_size"] = 6
    ir = to_frame(recs)
    (g,) = burst_groups(ir)
    shown = [ir["path"].iloc[k] for k in g.rows]
    assert len(shown) == 4
    assert "e.jpg" in shown
    assert ir["path"].iloc[g.pick] == "e.jpg"
    assert g.size == 6
    assert shown == sorted(shown)  # capture order (the test's times follow the names)
    assert len(burst_groups(ir, max_candidates=2)[0].rows) == 2


# ---------------------------------------------------------------------------------------------- the workspace
@pytest.fixture(scope="module")
def shoots(tmp_path_factory):
    """A workspace over two generated shoots: A (30 bursts) where the person picks, B (16) they never see."""
    base = tmp_path_factory.mktemp("rerank")
    a, b = base / "a", base / "b"
    render_burst_shoot(a, 30, seed=1)
    render_burst_shoot(b, 16, seed=2)
    col = imagerank.init(base / "ws", [a, b])
    col.scan(progress=False, extractors=("cheap",))
    ir_a = cull(a, None, workers=1, use_exiftool=False)
    ir_b = cull(b, None, workers=1, use_exiftool=False)
    yield col, a, b, ir_a, ir_b
    col.close()


def _agreement(ir: pd.DataFrame, folder: Path) -> float:
    """Share of groups whose pick is the frame the simulated person prefers (highest appeal)."""
    frames = read_shoot_manifest(folder)
    groups = burst_groups(ir)
    hits = [ir["path"].iloc[g.pick] == max((ir["path"].iloc[k] for k in g.rows), key=lambda p: frames[p].appeal)
            for g in groups]
    return float(np.mean(hits))


def test_ir_rows_map_to_catalog_images(shoots, tmp_path):
    col, a, _, ir_a, _ = shoots
    ids = ir_image_ids(col, ir_a, a)
    assert ids.notna().all()
    assert ids.is_unique
    assert col.image(int(ids.iloc[0]))["filepath"] == str(a / ir_a["path"].iloc[0])
    other = tmp_path / "elsewhere"
    render_burst_shoot(other, 1, seed=5)
    ir_o = cull(other, None, workers=1, use_exiftool=False)
    assert ir_image_ids(col, ir_o, other).isna().all()  # not in the workspace: <NA>, nothing added
    added = ir_image_ids(col, ir_o, other, add=True)
    assert added.notna().all()
    assert col.image(int(added.iloc[0]))["status"] == "active"


def test_learned_rerank_changes_the_picks_after_a_few_dozen_burst_choices(shoots):
    from imagerank.training.burst import preference_weights, train_burst_reranker
    from imagerank.widgets import BurstPanel

    col, a, b, ir_a, ir_b = shoots
    frames = read_shoot_manifest(a)
    with pytest.raises(NoVotesError, match="burst panel"):
        train_burst_reranker(col, name=None)
    # the person picks in the panel, as the browser would send it: the most appealing frame of each burst
    panel = BurstPanel(col, ir_a, a)
    assert 25 <= len(panel.groups) <= 30
    for g in panel.groups:
        best = max(g["items"], key=lambda it: frames[it["name"]].appeal)
        panel.handle_message({"type": "pick", "gid": g["gid"], "keepers": [best["id"]], "ms": 900})
        assert panel.status["level"] == "info", panel.status
    assert len(panel.picks) == len(panel.groups)
    before = _agreement(ir_b, b)
    ranker = train_burst_reranker(col)
    assert ranker.metadata["burst"]["n_picks"] == len(panel.groups)
    weights = preference_weights(ranker)
    assert weights["sat_mean"] > 0
    assert weights["luma_mean"] > 0
    out = Reranker.from_workspace(col, b)(ir_b)
    after = _agreement(out, b)
    assert after >= before + 0.25, (before, after)
    assert after >= 0.8, (before, after)
    changed = out[out["decided_by"] == "learned"]
    assert out.attrs["rerank"]["changed"] > 0
    assert len(changed) > 0
    assert all("learned_pick" in [x["code"] for x in r] for r in changed["reasons"])
    assert out["learned_score"].notna().sum() == (out["status"] == "ok").sum()
    # every file still has exactly one bucket, and each cluster exactly one pick
    assert out["bucket"].notna().all()
    picks = out[out["cluster_size"] >= 2].groupby("cluster_id")["is_pick"].sum()
    assert (picks == 1).all()
    # the same rerank inside the pipeline: the manifest and summary.json on disk say which part decided
    import json

    dest = col.root / "culled-b"
    piped = cull(b, dest, workers=1, use_exiftool=False, rerank=Reranker.from_workspace(col, b))
    assert list(piped["is_pick"]) == list(out["is_pick"])
    assert piped.attrs["rerank"]["changed"] == out.attrs["rerank"]["changed"]
    lines = [json.loads(line) for line in (dest / "manifest.jsonl").read_text().splitlines()]
    assert {x["path"] for x in lines if x["decided_by"] == "learned"} == set(changed["path"])
    assert json.loads((dest / "summary.json").read_text())["rerank"]["changed"] == out.attrs["rerank"]["changed"]
    # and from the command line
    from imagerank.cli import main

    dest2 = col.root / "culled-b-cli"
    assert main(["cull", str(b), "--out-dir", str(dest2), "--workspace", str(col.root), "--rerank", "burst-reranker",
                 "--workers", "1", "--no-progress"]) == 0
    assert (dest2 / "manifest.jsonl").read_text() == (dest / "manifest.jsonl").read_text()
    assert main(["cull", str(b), "--out-dir", str(col.root / "x"), "--rerank", "burst-reranker"]) == 2
    assert main(["cull", str(b), "--out-dir", str(col.root / "y"), "--workspace", str(col.root),
                 "--rerank", "no-such-model", "--workers", "1", "--no-progress"]) == 2


def test_simulated_picks_only_on_a_demo(shoots, tmp_path):
    col, a, _, ir_a, _ = shoots
    plain = tmp_path / "plain"
    plain.mkdir()
    other = imagerank.init(tmp_path / "ws2", [plain])
    with pytest.raises(InvalidArgumentError, match="demo workspace"):
        simulated_burst_picks(other, ir_a, a)
    with pytest.raises(NotFoundError, match="manifest"):
        read_shoot_manifest(plain)
    with pytest.raises(InvalidArgumentError, match="n_bursts"):
        render_burst_shoot(plain, 0)
    with pytest.raises(InvalidArgumentError, match="frames"):
        render_burst_shoot(plain, 2, frames=(1, 5))
    mids = simulated_burst_picks(col, ir_a, a, n=3)
    assert len(mids) == 3
    assert col.votes.undo_source("simulated") == 3
    other.close()


def test_the_pipeline_hook_on_records_writes_the_decision_into_the_manifest():
    """What ``cull(..., rerank=reranker)`` does after its passes: ``reranker.apply(records, settings.cull)``; the
    manifest lines then say which part decided."""
    import json

    from imagerank.config import CullSettings
    from imagerank.cull.artifacts import manifest_line

    recs = records_of(_ir())
    info = Reranker(_learned({"a.jpg": 0.0, "b.jpg": 0.5, "c.jpg": -1.0, "solo.jpg": 0.0})).apply(
        recs, CullSettings())
    assert info["changed"] == 1
    lines = {r["path"]: json.loads(manifest_line(r)) for r in recs}
    assert lines["b.jpg"]["decided_by"] == "learned"
    assert lines["b.jpg"]["learned_score"] == 0.5
    assert lines["solo.jpg"]["decided_by"] == "tech"
    assert "learned_pick" in [x["code"] for x in lines["a.jpg"]["reasons"]]


def test_embeddings_are_used_when_present_and_there_are_enough_picks(shoots):
    """``features="auto"``: cheap features for a few dozen picks; an embedding set (here a sidecar another tool
    wrote: image_id + one vector column) once it covers every judged frame and the picks are many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from imagerank.training.burst import burst_feature_source

    col = shoots[0]
    ids = col.images_df()["id"].to_numpy()
    assert burst_feature_source(col, ids, 500) == "cheap"  # no embeddings yet
    folder = col.root / "sidecars" / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    vecs = [rng.normal(size=8).astype(np.float32).tolist() for _ in ids[:-1]]
    pq.write_table(pa.table({"image_id": ids[:-1], "embedding": vecs}), folder / "toy__test.parquet")
    assert burst_feature_source(col, ids[:-1], 500) == "embeddings:toy__test"
    assert burst_feature_source(col, ids[:-1], 30) == "cheap"  # too few picks for 8+ dimensions
    assert burst_feature_source(col, ids, 500) == "cheap"  # one judged frame has no embedding
    (folder / "toy__test.parquet").unlink()


def test_simulated_picks_skip_frames_the_workspace_does_not_list(tmp_path):
    shoot = tmp_path / "shoot"
    render_burst_shoot(shoot, 2, seed=8)
    col = imagerank.init(tmp_path / "ws", tmp_path / "empty-root")
    ir = cull(shoot, None, workers=1, use_exiftool=False)
    assert simulated_burst_picks(col, ir, shoot, allow_non_demo=True) == []  # no ids: nothing recorded
    col.close()
