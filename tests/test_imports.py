"""The package root stays light: ``import imagerank`` (and opening a workspace, voting, the leaderboard) loads
none of torch, open_clip, lightning or ipywidgets; the layers below the facade never name ``Collection``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "open_clip", "lightning", "ipywidgets", "torchvision", "anywidget")
PACKAGE = Path(__file__).resolve().parents[1] / "imagerank"


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_import_imagerank_loads_no_heavy_package() -> None:
    assert _loaded_after("import imagerank") == set()


def test_voting_from_python_loads_no_heavy_package(tmp_path: Path) -> None:
    from imgsupport import write_images

    images = write_images(tmp_path / "images", 6)
    code = (
        "import imagerank\n"
        f"col = imagerank.init({str(tmp_path / 'ws')!r}, {str(images)!r}, prior_refit_every=0)\n"
        "col.scan(progress=False)\n"
        "a, b = col.next_pairs(1)[0]\n"
        "col.vote(a, b, 'left')\n"
        "col.leaderboard(3)\n"
        "assert col.doctor().ok\n"
        "col.close()"
    )
    assert _loaded_after(code) == set()


def test_no_module_below_the_facade_names_collection() -> None:
    """Below the facade (collection.py) code is handed a Catalog; it never imports Collection, not even for
    type checking (the import-linter contract in pyproject.toml checks the imports; this checks the names)."""
    upper = {"collection.py", "demo.py"}
    upper_dirs = {"widgets", "plots", "cli"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in upper_dirs or str(rel) in upper or str(rel) == "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "import Collection" in text or "collection import" in text:
            offenders.append(str(rel))
    assert offenders == []
