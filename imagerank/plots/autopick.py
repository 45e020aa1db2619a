"""Auto-pick figures: every subject's candidates as a grid of their stored previews, with scores and outcome."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure
from PIL import Image

from ..autopick import PickStore
from ..catalog import CatalogLike, as_catalog
from .features import _empty

__all__ = ["candidate_grid"]

_EDGE = {"picked": "#2e7d32", "excluded": "#9e9e9e", "failed": "#b00020"}


def candidate_grid(col: CatalogLike, subjects: Sequence[str] | None = None, *, max_subjects: int = 8,
                   max_candidates: int = 10, tile: float = 1.6) -> Figure:
    """One row per subject (its name, status and best score on the left), one tile per candidate in score order:
    the candidate's preview titled with its score (0-10; aesthetic, minus the off-subject demotion) and label;
    the picked one framed green. Candidates without a preview (excluded licence, failed download) are grey.

    Args:
        subjects: subject names (default the first ``max_subjects`` with candidates).
        max_candidates: tiles per row.
        tile: inches per tile.
    """
    store = PickStore(as_catalog(col))
    df = store.candidates_df()
    names = list(subjects) if subjects is not None else list(dict.fromkeys(df["subject"]))[:max_subjects]
    if not names or df.empty:
        return _empty("no auto-pick candidates yet")
    subj = store.subjects_df().set_index("name")
    ncols = max(1, min(max_candidates, int(df[df.subject.isin(names)].groupby("subject").size().max())))
    fig = Figure(figsize=(tile * (ncols + 1), tile * len(names)), layout="constrained")
    axes = fig.subplots(len(names), ncols + 1, squeeze=False)
    for r, name in enumerate(names):
        row = subj.loc[name] if name in subj.index else None
        ax0 = axes[r][0]
        ax0.set_axis_off()
        text = name if row is None else f"{name}\n{row['status']}"
        ax0.text(0.0, 0.5, text, fontsize=8, va="center", ha="left", wrap=True)
        cands = df[df.subject == name].head(ncols)
        for k in range(ncols):
            ax = axes[r][k + 1]
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= len(cands):
                ax.set_axis_off()
                continue
            c = cands.iloc[k]
            data = store.preview(int(c.id))
            if data:
                with Image.open(io.BytesIO(data)) as im:
                    ax.imshow(im.convert("RGB"))
            else:
                ax.set_facecolor("#eeeeee")
                ax.text(0.5, 0.5, str(c.status), ha="center", va="center", fontsize=7, transform=ax.transAxes)
            score = "–" if c.score != c.score or c.score is None else f"{c.score:.1f}"
            label = f" · {c.label}" if isinstance(c.label, str) else ""
            ax.set_title(f"{score}{label}", fontsize=7)
            for side in ax.spines.values():
                side.set_edgecolor(_EDGE.get(str(c.status), "#cccccc"))
                side.set_linewidth(3 if c.status == "picked" else 1)
    return fig
