"""The runner against the fake ComfyUI: a 4-step tree grown unattended, restarts of either side, several servers,
two runners on one workspace, faults recorded as job statuses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_comfy import FakeComfy
from gen_support import example_workspace

from imagerank.catalog import Catalog
from imagerank.cli import main
from imagerank.errors import InvalidArgumentError
from imagerank.generation import jobs, tree
from imagerank.generation.client import wait_until
from imagerank.generation.runner import Runner, run

ROOT = Path(__file__).resolve().parents[2]
FAST: dict[str, Any] = {"comfy_poll_s": 0.05, "comfy_retries": 3}


def _check_tree(cat: Catalog, n: int) -> None:
    """Every candidate has exactly one done job, child counts are true and never over N, files exist."""
    df = tree.candidates_df(cat)
    js = jobs.jobs_df(cat)
    done = js[js["status"] == "done"]
    assert sorted(done["image_id"].astype(int)) == sorted(df["id"])  # one job per candidate, none lost
    assert done["prompt_id"].is_unique
    for row in df.itertuples():
        assert row.child_count == int((df["parent_id"] == row.id).sum()) <= n
        assert Path(row.filepath).is_file()


@pytest.mark.parametrize("jobs_api", [False, True], ids=["history", "jobs-api"])
def test_grows_a_four_step_tree_unattended(tmp_path: Path, jobs_api: bool) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2, target_finals=2, **FAST)
    with FakeComfy(tmp_path / "srv", jobs_api=jobs_api) as srv:
        report = run(cat, [srv.url], until_idle=True)
    assert (report.done, report.failed, report.errors) == (15, 0, [])  # 1 base -> 2 face -> 4 hand -> 8 upscale
    cols = tree.columns_df(cat)
    assert cols["candidates"].tolist() == [1, 2, 4, 8]
    assert cols["pending_jobs"].tolist() == [0, 0, 0, 0]
    _check_tree(cat, 2)
    assert len(srv.executions) == len(set(srv.executions)) == 15  # nothing ran twice
    df = tree.candidates_df(cat)
    assert df["thumb_fingerprint"].notna().all()  # thumbnails: voting works on them like any image
    assert (df["width"] > 0).all()
    up = df[df["step"] == "upscale"].iloc[0]
    assert (int(up["width"]), int(up["height"])) == (768, 576)  # 512x384 scaled by 1.5
    assert cat.thumbs_dir.exists()
    assert run(cat, [srv.url], until_idle=True).done == 0  # T reached: nothing to do
    cat.close()


def test_survives_a_server_restart_mid_job(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2, target_finals=1, **FAST)
    with FakeComfy(tmp_path / "srv", node_delay_s=0.08) as srv:
        r = Runner(cat, [srv.url], until_idle=True).start()
        assert wait_until(lambda: len(srv.executions) >= 3 and srv.queue_ids()[0] != [], 30)
        lost = srv.queue_ids()[0][0]
        srv.restart()  # the running job, the queue and the history are gone
        report = r.join(60)
    assert not r.running
    assert report.errors == []
    assert report.resubmitted >= 1
    assert report.failed == 0
    assert lost in srv.posts[srv.posts.index(lost) + 1:]  # the lost job was submitted again, same prompt id
    assert tree.columns_df(cat)["candidates"].tolist() == [1, 2, 4, 8]
    _check_tree(cat, 2)
    cat.close()


_RUNNER = textwrap.dedent("""
    import sys
    from imagerank.catalog import Catalog
    from imagerank.generation.runner import run
    cat = Catalog.open(sys.argv[1])
    print(run(cat, sys.argv[2:], until_idle=True), flush=True)
""")


def _spawn(ws: Path, *urls: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "IMAGERANK_COMFY_POLL_S": "0.05"}
    return subprocess.Popen([sys.executable, "-c", _RUNNER, str(ws), *urls], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_survives_a_runner_killed_mid_job(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2, target_finals=1, **FAST)
    with FakeComfy(tmp_path / "srv", node_delay_s=0.08) as srv:
        proc = _spawn(tmp_path / "ws", srv.url)
        try:
            assert wait_until(lambda: len(srv.executions) >= 4 and srv.queue_ids()[0] != [], 60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        held = jobs.jobs_df(cat).query("status in ('queued', 'submitted', 'running')")
        assert len(held) == 1  # the job on the server when the runner died
        report = run(cat, [srv.url], until_idle=True)
    assert report.adopted == 1
    assert report.errors == []
    assert tree.columns_df(cat)["candidates"].tolist() == [1, 2, 4, 8]
    _check_tree(cat, 2)
    assert len(srv.executions) == len(set(srv.executions)) == 15  # the adopted job was followed, not rerun
    cat.close()


@pytest.mark.slow
def test_two_runners_on_one_workspace_never_exceed_n(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2, target_finals=3, **FAST)
    with FakeComfy(tmp_path / "a", node_delay_s=0.01) as a, FakeComfy(tmp_path / "b", node_delay_s=0.01) as b:
        procs = [_spawn(tmp_path / "ws", a.url), _spawn(tmp_path / "ws", b.url)]
        outs = [p.communicate(timeout=180) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
        assert a.executions
        assert b.executions  # both runners worked
        assert not set(a.executions) & set(b.executions)  # no job ran on both
    _check_tree(cat, 2)
    assert jobs.jobs_df(cat)["status"].isin(["done"]).all()
    cat.close()


def test_several_servers_one_job_in_flight_each(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=3, target_finals=4, **FAST)
    servers = [FakeComfy(tmp_path / f"s{i}", node_delay_s=0.03).start() for i in range(3)]
    try:
        r = Runner(cat, [s.url for s in servers], max_jobs=30)
        snaps: list[dict] = []
        t = threading.Thread(target=lambda: snaps.append(r.run().__dict__))
        t.start()
        while t.is_alive():
            snaps.append(r.snapshot())
            time.sleep(0.05)
        report = r.report
    finally:
        for s in servers:
            s.stop()
    assert report.started == 30
    assert report.done == 30
    assert all(s.max_queue == 1 for s in servers)  # one job in flight per server
    assert all(len(s.executions) >= 3 for s in servers)  # all used
    busy = [sum(x["state"] in ("submitted", "running", "uploading", "collecting") for x in s["servers"])
            for s in snaps if "servers" in s]
    assert max(busy) >= 2  # in parallel
    last = r.snapshot()
    assert [x["state"] for x in last["servers"]] == ["stopped"] * 3
    assert sum(x["done"] for x in last["servers"]) == 30
    assert last["jobs"]["done"] == 30
    assert last["jobs_per_minute"] > 0
    _check_tree(cat, 3)
    cat.close()


def test_faults_become_job_statuses_and_the_runner_goes_on(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2, target_finals=1, **FAST)
    told: list[tuple[int, str]] = []

    def on_job(job: jobs.Job, status: str, detail: str) -> None:
        told.append((job.id, status))
        raise RuntimeError("a broken callback never stops the run")

    with FakeComfy(tmp_path / "srv") as srv:
        srv.faults.extend(["node_errors", "execution_error", "interrupt", "unsafe_output"])
        srv.ws_silent = True
        report = run(cat, [srv.url], max_jobs=8, on_job=on_job)
    assert [s for _, s in told] == ["failed"] * 4 + ["done"] * 4
    js = jobs.jobs_df(cat)
    failed = js[js["status"] == "failed"]
    assert report.failed == 4
    assert len(failed) == 4
    errors = failed["error"].tolist()
    assert "refused prompt" in errors[0]
    assert "sharpen_radius, 40 > 31" in errors[0]
    assert errors[1].startswith("execution error at node 1 (EmptyImage)")
    assert errors[2].startswith("interrupted at node 2 (SaveImage)")
    assert "unsafe or unexpected filename '../escape.png'" in errors[3]
    assert (failed["attempts"] == [0 + 1] * 4).all()  # execution errors are never retried
    assert report.done == 4
    assert not list((tmp_path / "ws").rglob("escape.png"))
    assert not (tmp_path / "escape.png").exists()
    _check_tree(cat, 2)
    cat.close()


def test_server_down_then_back(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=2, target_finals=1, **FAST)
    srv = FakeComfy(tmp_path / "srv").start()
    srv.go_down()
    r = Runner(cat, [srv.url], max_jobs=3, client_options={"backoff_s": 0.02, "max_backoff_s": 0.05}).start()
    assert wait_until(lambda: r.snapshot()["servers"][0]["state"] == "down", 20)
    assert "did not answer" in (r.snapshot()["servers"][0]["error"] or "")
    assert jobs.jobs_df(cat)["server"].isna().all()  # a job never posted is released for any server
    srv.up()
    report = r.join(60)
    srv.stop()
    assert report.done == 3
    assert report.errors == []
    _check_tree(cat, 2)
    cat.close()


def test_rejecting_a_parent_cancels_its_jobs(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=3, target_finals=1, **FAST)
    with FakeComfy(tmp_path / "srv") as srv:
        run(cat, [srv.url], max_jobs=1)
        base = int(tree.column(cat, "base")["id"].iloc[0])
        tree.reject(cat, base)
        report = run(cat, [srv.url], max_jobs=1)
    assert report.done == 1
    assert tree.column(cat, "base")["id"].tolist()[-1] != base  # a new base, never a child of the rejected one
    assert tree.children(cat, base).empty
    cat.close()


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example_workspace(tmp_path / "ws", max_children=1, target_finals=1, **FAST).close()
    with FakeComfy(tmp_path / "srv") as srv:
        assert main(["generate", str(tmp_path / "ws"), "--server", srv.url, "--until-idle"]) == 0
        out = capsys.readouterr().out
        assert "4 done, 0 failed" in out
        assert "job 1 base: done: image 1" in out
        assert "job 4 upscale (parent 3): done: image 4" in out
        assert main(["tree", str(tmp_path / "ws")]) == 0
        assert "upscale" in capsys.readouterr().out
        assert main(["jobs", str(tmp_path / "ws"), "--status", "done"]) == 0
        assert capsys.readouterr().out.count("done") >= 4
        assert main(["generate", str(tmp_path / "ws"), "--server", "localhost:8188"]) == 2
        assert "server: expected a URL like" in capsys.readouterr().err
    assert main(["steps", str(tmp_path / "ws")]) == 0
    assert "upscale" in capsys.readouterr().out
    assert main(["steps", str(tmp_path / "ws"), "--add-examples"]) == 2
    assert "has steps already" in capsys.readouterr().err


def test_bad_runner_arguments(tmp_path: Path) -> None:
    empty = Catalog.create(tmp_path / "empty")
    with pytest.raises(InvalidArgumentError, match="has no pipeline steps; add them first"):
        Runner(empty, ["http://127.0.0.1:1"])
    empty.close()
    cat = example_workspace(tmp_path / "ws")
    with pytest.raises(InvalidArgumentError, match="at least one ComfyUI URL"):
        Runner(cat, [])
    with pytest.raises(InvalidArgumentError, match="max_jobs: expected an integer >= 1"):
        Runner(cat, ["http://127.0.0.1:1"], max_jobs=0)
    with pytest.raises(InvalidArgumentError, match="stale_s"):
        Runner(cat, ["http://127.0.0.1:1"], stale_s=0)
    cat.close()


def test_notebook_mode_stop_and_start_again_in_one_process(tmp_path: Path) -> None:
    """A runner stopped mid-job leaves the job on its server; a new runner in the same process adopts it at once."""
    cat = example_workspace(tmp_path / "ws", max_children=1, target_finals=1, **FAST)
    with FakeComfy(tmp_path / "srv", node_delay_s=0.3) as srv:
        r = Runner(cat, [srv.url]).start()
        assert r.running
        with pytest.raises(InvalidArgumentError, match="running already"):
            r.start()
        assert wait_until(lambda: r.snapshot()["servers"][0]["state"] == "running", 20)
        snap = r.snapshot()
        assert snap["servers"][0]["step"] == "base"
        assert snap["jobs"]["submitted"] + snap["jobs"]["running"] == 1
        r.stop()
        assert not r.running
        assert r.snapshot()["servers"][0]["state"] == "stopped"
        t = time.monotonic()
        report = run(cat, [srv.url], until_idle=True)
        assert time.monotonic() - t < 20  # adopted at once, no heartbeat to wait out
    assert report.adopted == 1
    assert report.done == 4
    assert tree.columns_df(cat)["candidates"].tolist() == [1, 1, 1, 1]
    assert len(srv.executions) == len(set(srv.executions)) == 4
    _check_tree(cat, 1)
    cat.close()


def test_facade_verbs(tmp_path: Path) -> None:
    import imagerank
    from imagerank.generation import steps

    col = imagerank.init(tmp_path / "ws", max_children=1, target_finals=1, **FAST)
    steps.add_example_steps(col)
    with FakeComfy(tmp_path / "srv") as srv:
        report = col.generation_runner([srv.url], until_idle=True).run()
    assert report.done == 4
    assert col.next_job() is None  # T reached
    board = col.leaderboard()
    assert len(board) == 4  # the candidates are ordinary images: pairs, votes, thumbnails
    (left, right), = col.next_pairs(1)
    col.vote(left, right, "left")
    assert col.image(left)["comparison_count"] == 1
    thumb = col.thumbnail_bytes(left)
    assert thumb is not None
    assert thumb[:2] == b"\xff\xd8"
    col.close()


def test_a_parent_file_gone_fails_its_job_with_the_reason(tmp_path: Path) -> None:
    cat = example_workspace(tmp_path / "ws", max_children=1, target_finals=1, **FAST)
    with FakeComfy(tmp_path / "srv") as srv:
        run(cat, [srv.url], max_jobs=1)
        base = tree.column(cat, "base").iloc[0]
        Path(base["filepath"]).unlink()
        report = run(cat, [srv.url], max_jobs=1)
    assert report.failed == 1
    assert report.errors == []
    err = jobs.jobs_df(cat, status="failed")["error"].iloc[0]
    assert err.startswith("cannot read the parent's file")
    cat.close()
