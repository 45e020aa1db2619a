"""The tests' fake ComfyUI is the library's emulator, :class:`imagerank.generation.emulator.ComfyEmulator` (it was
built from this module, moved into the library so that ``06_generation.ipynb`` can run without a ComfyUI): the
same answers, the same faults (``go_down``/``up``/``restart``, ``faults``, ``ws_silent``, ``http_delay_s``,
``node_delay_s``). ``RECORDED`` is where the real server's recorded answers are, for the tests that compare."""

from __future__ import annotations

from pathlib import Path

from imagerank.generation.emulator import ComfyEmulator as FakeComfy
from imagerank.generation.emulator import load_object_info, recorded_runtime_error

__all__ = ["RECORDED", "FakeComfy", "load_object_info", "recorded_runtime_error"]

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "data" / "comfyui" / "recorded"
