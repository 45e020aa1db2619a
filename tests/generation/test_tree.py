"""Candidates: child_count kept true with the insert, never more than N children, reject/restore, the reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from gen_support import add_file_candidate, example_workspace
from imgsupport import write_image

import imagerank
from imagerank.catalog import Catalog
from imagerank.errors import InvalidArgumentError, NotFoundError
from imagerank.generation import tree

ROOT = Path(__file__).resolve().parents[2]


def test_a_tree_grows_and_reads_back(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2)
    b1, b2 = add_file_candidate(cat, "base"), add_file_candidate(cat, "base", seed=1)
    f1 = add_file_candidate(cat, "face", b1)
    f2 = add_file_candidate(cat, "face", b1, seed=2)
    h1 = add_file_candidate(cat, "hand", f2)
    u1 = add_file_candidate(cat, "upscale", h1)
    df = tree.candidates_df(cat)
    assert list(df.columns) == tree.CANDIDATE_COLUMNS
    assert list(df["id"]) == [b1, b2, f1, f2, h1, u1]
    assert list(df["step"]) == ["base", "base", "face", "face", "hand", "upscale"]
    assert df["parent_id"].tolist()[2:] == [b1, b1, f2, h1]
    assert df["parent_id"].isna().tolist()[:2] == [True, True]
    assert df.set_index("id")["child_count"].to_dict() == {b1: 2, b2: 0, f1: 0, f2: 1, h1: 1, u1: 0}
    assert df["is_final"].tolist() == [False] * 5 + [True]
    assert (df["mu"] == 25.0).all()
    assert (df["status"] == "active").all()
    assert list(tree.children(cat, b1)["id"]) == [f1, f2]
    assert list(tree.siblings(cat, f1)["id"]) == [f2]
    assert list(tree.siblings(cat, b2)["id"]) == [b1]
    anc = tree.ancestry(cat, u1)
    assert list(anc["id"]) == [b1, f2, h1, u1]
    assert list(anc["depth"]) == [0, 1, 2, 3]
    assert list(tree.ancestry(cat, b1)["id"]) == [b1]
    assert list(tree.column(cat, "face")["id"]) == [f1, f2]
    cols = tree.columns_df(cat)
    assert cols[["step", "candidates", "active", "rejected", "pending_jobs"]].values.tolist() == [
        ["base", 2, 2, 0, 0], ["face", 2, 2, 0, 0], ["hand", 1, 1, 0, 0], ["upscale", 1, 1, 0, 0]]
    assert cols["is_final"].tolist() == [False, False, False, True]
    # candidates are ordinary catalog images
    assert cat.images.get(u1)["filepath"] == str((tmp_path / "ws" / "generated" / "upscale").resolve()
                                                  / os.path.basename(cat.images.get(u1)["filepath"]))
    assert cat.images.count_active() == 6
    cat.close()


def test_never_more_than_n_children_and_counts_stay_true(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2)
    b = add_file_candidate(cat, "base")
    add_file_candidate(cat, "face", b)
    add_file_candidate(cat, "face", b)
    before = len(tree.candidates_df(cat))
    with pytest.raises(tree.ChildLimitError, match=f"candidate {b} has 2 children already \\(max_children N=2\\)"):
        add_file_candidate(cat, "face", b)
    assert len(tree.candidates_df(cat)) == before  # nothing stored
    assert add_file_candidate(cat, "face", b, max_children=3) > 0  # an explicit N wins over the setting
    n_children = cat.db.query("SELECT COUNT(*) FROM images WHERE parent_id=?", (b,))[0][0]
    assert tree.get_candidate(cat, b)["child_count"] == n_children == 3
    cat.close()


def test_bad_candidates_are_refused_with_the_reason(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws")
    b = add_file_candidate(cat, "base")
    f = add_file_candidate(cat, "face", b)
    png = write_image(tmp_path / "x.png")
    with pytest.raises(InvalidArgumentError, match="cannot be read"):
        tree.add_candidate(cat, step="face", path=tmp_path / "missing.png", parent_id=b)
    with pytest.raises(InvalidArgumentError, match="'base' is the base step; its candidates have no parent"):
        tree.add_candidate(cat, step="base", path=png, parent_id=b)
    with pytest.raises(InvalidArgumentError, match="expected a parent id, got None"):
        tree.add_candidate(cat, step="hand", path=png)
    with pytest.raises(InvalidArgumentError, match=f"image {b} is not a 'face' candidate"):
        tree.add_candidate(cat, step="hand", path=png, parent_id=b)
    with pytest.raises(NotFoundError, match="image 999 does not exist"):
        tree.add_candidate(cat, step="face", path=png, parent_id=999)
    with pytest.raises(NotFoundError, match="step 'nope' does not exist"):
        tree.add_candidate(cat, step="nope", path=png)
    with pytest.raises(InvalidArgumentError, match="max_children: expected an integer >= 1, got 0"):
        tree.add_candidate(cat, step="face", path=png, parent_id=b, max_children=0)
    with pytest.raises(InvalidArgumentError, match="is in the catalog already"):
        tree.add_candidate(cat, step="face", path=cat.images.get(f)["filepath"], parent_id=b)
    with pytest.raises(NotFoundError, match="job_id: generation job 77 does not exist"):
        tree.add_candidate(cat, step="face", path=png, parent_id=b, job_id=77)
    assert tree.get_candidate(cat, b)["child_count"] == 1  # every refusal stored nothing
    assert len(tree.candidates_df(cat)) == 2
    with pytest.raises(InvalidArgumentError, match="status: expected active, rejected"):
        tree.candidates_df(cat, status="dead")
    cat.close()


def test_reject_and_restore(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws")
    b = add_file_candidate(cat, "base")
    step_id = cat.db.query("SELECT id FROM pipeline_steps WHERE name='face'")[0][0]
    cat.db.execute("INSERT INTO generation_jobs (step_id, parent_id, seed, prompt_id, status) VALUES "
                   "(?, ?, 1, 'a', 'queued'), (?, ?, 2, 'b', 'submitted')", (step_id, b, step_id, b))
    assert tree.get_candidate(cat, b)["pending_jobs"] == 2
    assert tree.reject(cat, b, "bad hands") == 1  # the queued job is cancelled, the submitted one finishes
    got = tree.get_candidate(cat, b)
    assert (got["status"], got["status_reason"], got["pending_jobs"]) == ("rejected", "bad hands", 1)
    with pytest.raises(InvalidArgumentError, match=f"candidate {b} is rejected, not active; a rejected candidate is "
                                                   "never a parent again"):
        add_file_candidate(cat, "face", b)
    assert tree.get_candidate(cat, b)["child_count"] == 0
    assert list(tree.candidates_df(cat, status="rejected")["id"]) == [b]
    tree.restore(cat, b)
    assert tree.get_candidate(cat, b)["status"] == "active"
    add_file_candidate(cat, "face", b)
    cat.db.execute("UPDATE images SET status='missing' WHERE id=?", (b,))
    with pytest.raises(InvalidArgumentError, match="only a rejected candidate can be restored"):
        tree.restore(cat, b)
    with pytest.raises(NotFoundError, match="does not exist"):
        tree.reject(cat, 12345)
    cat.close()


def test_non_candidates_are_not_found(workspace: imagerank.Collection) -> None:
    cat = workspace.catalog
    with pytest.raises(NotFoundError, match="image 1 is not a candidate of the generation tree"):
        tree.get_candidate(cat, 1)
    assert tree.candidates_df(cat).empty
    assert tree.columns_df(cat).empty
    assert isinstance(tree.children.__doc__, str)


_WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from imgsupport import write_image
    from imagerank.catalog import Catalog
    from imagerank.generation import tree
    cat = Catalog.open(sys.argv[1])
    tag, parent = sys.argv[2], int(sys.argv[3])
    ok = refused = 0
    for k in range(6):
        p = write_image(Path(sys.argv[1]) / "generated" / "face" / f"{tag}_{k}.png", seed=k)
        try:
            tree.add_candidate(cat, step="face", path=p, parent_id=parent)
            ok += 1
        except tree.ChildLimitError:
            refused += 1
    print(ok, refused)
""")


@pytest.mark.slow
def test_two_processes_never_exceed_n(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=3)
    parents = [add_file_candidate(cat, "base", seed=i) for i in range(3)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path / "ws"), f"p{p}w{w}", str(p)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for p in parents for w in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    ok = [tuple(map(int, o[0].split())) for o in outs]
    assert [a + b for a, b in ok] == [6] * 6
    for i, p in enumerate(parents):
        assert ok[2 * i][0] + ok[2 * i + 1][0] == 3
        n = cat.db.query("SELECT COUNT(*) FROM images WHERE parent_id=?", (p,))[0][0]
        assert n == tree.get_candidate(cat, p)["child_count"] == 3
    df = tree.candidates_df(cat)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 3 + 9
    cat.close()


def test_an_old_workspace_opened_read_only_says_why(tmp_path: Path) -> None:
    import shutil

    from imagerank.errors import DatabaseReadOnlyError
    from imagerank.generation import jobs, steps

    shutil.copytree(ROOT / "tests" / "data" / "workspace-0.1.0", tmp_path / "ws")
    cat = Catalog.open(tmp_path / "ws", read_only=True)
    for read in (steps.list_steps, tree.candidates_df, tree.columns_df, jobs.jobs_df):
        with pytest.raises(DatabaseReadOnlyError, match="schema version 1 and the generation tree needs 3"):
            read(cat)
    cat.close()
    cat = Catalog.open(tmp_path / "ws")  # writable: migrated, and the tree is empty
    assert steps.list_steps(cat) == []
    assert tree.candidates_df(cat).empty
    cat.close()
