"""The shared process pool: workers end with their parent (even ``kill -9``), and a script without a main guard
works instead of breaking the pool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from imgsupport import write_images

import imagerank

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[1])


def _descendants(root: int) -> set[int]:
    parents = {int(p): _ppid(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    out, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in out}
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    return _ppid(pid) is not None


_POOL_CHILD = """
import sys, time
from imagerank._util.procs import imap_processes
if __name__ == "__main__":
    for _ in imap_processes(time.sleep, [60.0] * 4, workers=2, inline_below=0, progress=False):
        pass
"""


def test_pool_workers_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "pool_child.py"
    script.write_text(_POOL_CHILD)
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    helpers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the forkserver, the resource tracker and 2 workers
            helpers = _descendants(child.pid)
            if len(helpers) >= 4 or child.poll() is not None:
                break
            time.sleep(0.2)
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert len(helpers) >= 3, f"pool processes never appeared: {helpers}"
        time.sleep(1.0)  # the workers are inside time.sleep(60)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in helpers):
            time.sleep(0.2)
        left = {p for p in helpers if _alive(p)}
        assert not left, f"pool processes still running 10 s after kill -9 of their parent: {left}"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for p in helpers:  # only the processes this test started
            if _alive(p):
                os.kill(p, signal.SIGKILL)


_NO_GUARD = """
import imagerank
col = imagerank.open({ws!r})
rep = col.scan(progress=False)
print("RESULT", rep.added, rep.thumbnails_built, rep.corrupt)
col.close()
"""


def test_script_without_main_guard_scans(tmp_path: Path) -> None:
    imgs = write_images(tmp_path / "imgs", 30)  # more than inline_below: the thumbnail pass wants a pool
    imagerank.init(tmp_path / "ws", imgs, strategy="spec").close()
    script = tmp_path / "no_guard.py"
    script.write_text(_NO_GUARD.format(ws=str(tmp_path / "ws")))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "RESULT 30 30 0" in res.stdout
    assert 'if __name__ == "__main__":' in res.stderr  # the warning says what to add


_GUARDED = """
import imagerank
if __name__ == "__main__":
    col = imagerank.open({ws!r})
    rep = col.scan(progress=False)
    print("RESULT", rep.added, rep.thumbnails_built, rep.corrupt)
    col.close()
"""


def test_script_with_main_guard_uses_the_pool_quietly(tmp_path: Path) -> None:
    imgs = write_images(tmp_path / "imgs", 30)
    imagerank.init(tmp_path / "ws", imgs, strategy="spec").close()
    script = tmp_path / "guarded.py"
    script.write_text(_GUARDED.format(ws=str(tmp_path / "ws")))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "RESULT 30 30 0" in res.stdout
    assert "__main__" not in res.stderr


def test_a_dying_worker_is_an_imagerank_error() -> None:
    from imagerank._util.procs import imap_processes
    from imagerank.errors import ImagerankError

    with pytest.raises(ImagerankError, match="worker process ended abruptly"):
        list(imap_processes(os._exit, [3] * 8, workers=2, inline_below=0, progress=False, desc="test pass"))
