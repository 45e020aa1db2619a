"""ExifTool as a long-lived helper process: one ``exiftool -stay_open True -@ -`` per process that asks.

ExifTool (Phil Harvey; Perl, run as a program, never linked) reads the maker notes of every camera, but starting
Perl costs ~0.1–0.2 s; in ``-stay_open`` mode (ExifTool's documented batch mode) one process answers request after
request, each ended by ``-execute`` and answered up to a ``{ready}`` line, in milliseconds (``-q`` must not be
used: it suppresses that line). Workers of the cull's
process pool each start their own on first use; it ends with the process (at exit, as the pool's workers end, and,
on Linux, when the process dies).
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import select
import shutil
import signal
import subprocess
import sys
import time

__all__ = ["ExiftoolSession", "exiftool_path", "exiftool_session"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the exiftool process gets SIGTERM when the process that started it dies (``PR_SET_PDEATHSIG``);
    exiftool does not end on its own when its ``-@ -`` input closes."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def exiftool_path() -> str | None:
    """The ``exiftool`` program on ``PATH``, or None."""
    return shutil.which("exiftool")


class ExiftoolSession:
    """One ``exiftool -stay_open True -@ -`` process (started on the first :meth:`ask`) for the program ``tool``."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.proc: subprocess.Popen[bytes] | None = None
        self.pending = False

    def _start(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([self.tool, "-stay_open", "True", "-@", "-"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            atexit.register(self.close)  # this process ends normally
            multiprocessing.util.Finalize(self, self.close, exitpriority=10)  # a pool worker ends (no atexit)
        return self.proc

    def send(self, args: list[str]) -> None:
        """Send one request (``args``, one per line, none with a line break); read its answer with
        :meth:`receive` before the next. Raises OSError (a line break, no process, a broken pipe)."""
        if self.pending:
            raise OSError("exiftool: the previous answer has not been read")
        if any("\n" in a or "\r" in a for a in args):
            raise OSError(f"exiftool: an argument with a line break cannot go through -@ ({args[-1]!r})")
        proc = self._start()
        if proc.stdin is None:  # pragma: no cover - Popen(PIPE) sets it
            raise OSError("exiftool: no pipe to the process")
        proc.stdin.write(("\n".join([*args, "-execute"]) + "\n").encode("utf-8", "surrogateescape"))
        proc.stdin.flush()
        self.pending = True

    def receive(self, timeout_s: float = 60.0) -> bytes:
        """The answer to the request sent last (up to ``{ready}``). Raises OSError / TimeoutError (the process
        is then ended, and the next request starts a new one)."""
        proc = self.proc
        if not self.pending or proc is None or proc.stdout is None:
            raise OSError("exiftool: no request is waiting for its answer")
        out = bytearray()
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while not out.endswith(b"{ready}\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise TimeoutError(f"exiftool gave no answer within {timeout_s:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.close()
                raise OSError("exiftool ended")
            out += chunk
        self.pending = False
        return bytes(out[: -len(b"{ready}\n")])

    def ask(self, args: list[str], timeout_s: float = 60.0) -> bytes:
        """:meth:`send` then :meth:`receive`."""
        self.send(args)
        return self.receive(timeout_s)

    def close(self) -> None:
        """End the process (``-stay_open False``), or kill it when it does not listen."""
        proc, self.proc, self.pending = self.proc, None, False
        if proc is None or proc.poll() is not None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.write(b"-stay_open\nFalse\n")
                proc.stdin.flush()
            proc.wait(timeout=5)
        except (OSError, subprocess.SubprocessError):
            proc.kill()



_SESSIONS: dict[str, ExiftoolSession] = {}


def exiftool_session(tool: str) -> ExiftoolSession:
    """This process's session of the program ``tool`` (created on first use)."""
    if tool not in _SESSIONS:
        _SESSIONS[tool] = ExiftoolSession(tool)
    return _SESSIONS[tool]
