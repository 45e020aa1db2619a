"""Fixtures of the auto-pick tests: the tiny CLIP scorer with a head made in the test, a workspace, and the fake
Commons server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from autopick_support import TINY_CLIP, separating_head

from imagerank.autopick import AestheticHead, ClipAestheticScorer, HeadConfig
from imagerank.autopick.fake_commons import FakeCommons, fake_catalogue
from imagerank.catalog import Catalog


@pytest.fixture(scope="session")
def scorer() -> ClipAestheticScorer:
    """The tiny CLIP model (random weights, seeded) with a separating linear head (good ~8, bad ~2)."""
    s = ClipAestheticScorer(TINY_CLIP, AestheticHead(HeadConfig("linear", 64)))
    s.head = separating_head(s)
    return s


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog.create(tmp_path / "ws")
    yield c
    c.close()


@pytest.fixture
def fake() -> Iterator[FakeCommons]:
    """20 subjects (see fake_catalogue): 'Subject 009' and 'Subject 019' have no files, 005/011/017 only bad ones."""
    with FakeCommons(fake_catalogue(20)) as srv:
        yield srv
