"""Every test here drives a real JupyterLab in Debian's Chromium: marked ``e2e``, skipped with a message when the
browser or Playwright is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from labdriver import CHROMIUM


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True, scope="session")
def _browser_available() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"real-browser tests need Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("real-browser tests need Python Playwright (pip install playwright)")
