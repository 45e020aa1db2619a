"""Several writers on one catalog: two processes voting at once, and a voter killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
from imgsupport import write_images

import imagerank

_VOTER = """
import sys, time
from pathlib import Path
import imagerank
ws, seed, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
col = imagerank.open(ws)
col.start_session(voter=f"proc{seed}", strategy="spec", seed=seed)
(go.parent / f"ready{seed}").touch()
while not go.exists():
    time.sleep(0.005)
outcomes = ["left", "right", "draw", "left", "right", "skip"]
for k in range(n):
    (pair,) = col.next_pairs(1)
    m = col.vote(pair[0], pair[1], outcomes[(k + seed) % len(outcomes)], decision_ms=1.0)
    print(m.id, flush=True)
"""


@pytest.fixture
def shared_workspace(tmp_path: Path) -> Path:
    col = imagerank.init(tmp_path / "ws", write_images(tmp_path / "imgs", 60), strategy="spec")
    col.scan(progress=False, thumbnails=False)
    col.close()
    return tmp_path / "ws"


def test_two_processes_vote_500_times_each(shared_workspace: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _VOTER, str(shared_workspace), str(seed), "500", str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for seed in (1, 2)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{s}").exists() for s in (1, 2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both start together, once both have opened the catalog
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    acked = [int(x) for out, _ in outs for x in out.split()]
    assert len(acked) == 1000
    assert len(set(acked)) == 1000
    col = imagerank.open(shared_workspace)
    assert col.db.query("SELECT COUNT(*) FROM matches")[0][0] == 1000
    assert col.db.query("SELECT COUNT(DISTINCT match_id) FROM match_entries")[0][0] == 1000
    voters = dict(col.db.query("SELECT voter, COUNT(*) FROM matches GROUP BY voter"))
    assert voters == {"proc1": 500, "proc2": 500}
    # the processes interleaved (not one after the other), and still every rating equals the replay
    order = [r[0] for r in col.db.query("SELECT voter FROM matches ORDER BY id")]
    assert sum(a != b for a, b in pairwise(order)) >= 2
    times = [r[0] for r in col.db.query("SELECT created_at FROM matches ORDER BY id")]
    assert times == sorted(times)  # timestamps follow the log order
    rep = col.doctor()
    assert rep.ok, str(rep)
    assert rep.matches_replayed == 1000 - col.stats()["skips"]
    col.close()


def test_sigkill_keeps_every_acknowledged_vote(shared_workspace: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.touch()
    proc = subprocess.Popen(
        [sys.executable, "-c", _VOTER, str(shared_workspace), "7", "100000", str(go)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    acked: list[int] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while len(acked) < 150 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)  # mid-way: it is voting as fast as it can
    rest, err = proc.communicate(timeout=60)
    acked += [int(x) for x in rest.split()]  # acknowledged before the kill, read after it
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 150, err
    col = imagerank.open(shared_workspace)
    stored = {r[0] for r in col.db.query("SELECT id FROM matches")}
    assert set(acked) <= stored
    assert len(stored) - len(acked) <= 1  # at most the vote in flight, committed but not yet printed
    no_entries = col.db.query(
        "SELECT COUNT(*) FROM matches m WHERE NOT EXISTS (SELECT 1 FROM match_entries e WHERE e.match_id = m.id)"
    )[0][0]
    assert no_entries == 0  # no half-written match
    rep = col.doctor()
    assert rep.ok, str(rep)
    # and the catalog takes new votes after the crash
    ids = [int(i) for i in col.images_df()["id"][:2]]
    col.vote(ids[0], ids[1], "left")
    assert col.doctor().ok
    col.close()


def test_two_connections_in_one_process(shared_workspace: Path) -> None:
    """A panel and a background thread (or two notebooks) each with its own Collection on one file."""
    errors: list[BaseException] = []

    def voter(seed: int) -> None:
        try:
            col = imagerank.open(shared_workspace)
            col.start_session(strategy="spec", seed=seed)
            for _ in range(100):
                (pair,) = col.next_pairs(1)
                col.vote(*pair, "left")
            col.close()
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=voter, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    col = imagerank.open(shared_workspace)
    assert col.stats()["wins"] == 200
    assert col.doctor().ok
    col.close()


def test_pool_sees_another_connections_votes(shared_workspace: Path) -> None:
    a = imagerank.open(shared_workspace)
    b = imagerank.open(shared_workspace)
    ids = [int(i) for i in a.images_df()["id"][:2]]
    pool = a.pool()
    assert pool.mu[pool.index_of(ids[0])] == 25.0
    b.vote(ids[0], ids[1], "left")
    pool = a.pool()  # reloaded: PRAGMA data_version changed
    assert pool.mu[pool.index_of(ids[0])] == b.image(ids[0])["mu"] > 25.0
    a.close()
    b.close()


def test_panel_votes_while_training_and_live_prior_refits_run(make_collection, caplog, monkeypatch) -> None:
    """Votes from the compare panel (kernel thread) while a ranker trains and the live prior refits (background
    threads), all on one shared connection: every acknowledged vote is kept, the catalog replays exactly, and no
    thread raised."""
    pytest.importorskip("lightning")
    from imagerank.training import train_ranker
    from imagerank.widgets import ComparePanel

    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    caplog.set_level("WARNING", logger="imagerank")
    col = make_collection(40)
    panel = ComparePanel(col, strategy="spec", queue_depth=6, refresh_every=4)
    panel.handle_message({"type": "ready"})
    acked: list[tuple[str, list[int]]] = []
    outcomes = ["left", "right", "draw", "left", "skip", "right"]

    def vote(k: int) -> None:
        p = panel.pairs[0]
        outcome = outcomes[k % len(outcomes)]
        panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                              "outcome": outcome, "ms": 500.0})
        assert panel.status.get("level") != "error", panel.status
        kind = {"left": "win", "right": "win", "draw": "draw", "skip": "skip"}[outcome]
        acked.append((kind, [p["left"]["id"], p["right"]["id"]]))

    for k in range(20):  # enough decisive votes to fit a prior and train on
        vote(k)
    col.refit_prior()  # computes the cheap features once
    col.settings = col.settings.replace(prior_refit_every=10)
    job = train_ranker(col, "cheap", background=True, name=None)
    k, during = 20, 0  # votes so far, votes made while the ranker trained
    while k < 80 or (job.status in ("pending", "running") and k < 400):  # vote while it trains
        during += job.status == "running"
        vote(k)
        k += 1
        if k % 7 == 0:
            panel.handle_message({"type": "undo"})  # undo and judge again, under load too
            assert panel.status.get("level") != "error", panel.status
            acked.pop()
    job.wait(timeout=300)
    col.prior.wait()
    assert job.error is None, job.traceback
    assert job.status == "done"
    assert during > 0, "the ranker finished before the first vote: nothing ran concurrently"
    stored = []
    df = col.matches_df()
    for _, g in df.groupby("match_id", sort=True):
        g = g.sort_values("position")
        stored.append((g["kind"].iloc[0], g["image_id"].tolist()))
    assert stored == acked  # every acknowledged vote, in order, and nothing else
    assert panel.votes + panel.header["skips"] == len(acked)
    assert "failed" not in col.prior_status, col.prior_status
    rep = col.doctor()
    assert rep.ok, str(rep)
    assert not thread_errors, thread_errors
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [r.getMessage() for r in errors]
