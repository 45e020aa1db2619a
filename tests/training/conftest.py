"""Fixtures of the training tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from training_support import build_pref_collection, clone

import imagerank


@pytest.fixture(scope="session")
def pref_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scanned workspace over 120 generated preference images (never modified; clone it)."""
    return build_pref_collection(tmp_path_factory.mktemp("pref"), 120)


@pytest.fixture
def pref_col(pref_ws: Path, tmp_path: Path) -> Iterator[imagerank.Collection]:
    """A fresh copy of :func:`pref_ws` for one test."""
    col = clone(pref_ws, tmp_path / "ws")
    yield col
    col.close()


@pytest.fixture
def small_col(tmp_path: Path) -> Callable[[int], imagerank.Collection]:
    """Factory: a scanned workspace over ``n`` generated images (strategy random)."""
    made: list[imagerank.Collection] = []

    def make(n: int) -> imagerank.Collection:
        col = clone(build_pref_collection(tmp_path / f"src{n}_{len(made)}", n), tmp_path / f"ws{n}_{len(made)}")
        made.append(col)
        return col

    yield make  # type: ignore[misc]
    for c in made:
        c.close()
