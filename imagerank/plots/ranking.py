"""Plots of a collection's ratings and vote log (matplotlib).

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot``: no global figure state is
created or left behind, so library code and tests can call them freely. In a notebook, run ``%matplotlib inline``
once and the returned figure displays as the cell's value. A collection without votes gives a figure that says
so instead of raising.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from .. import ratings as R
from ..ratings.stability import default_k, topk_stability

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from ..collection import Collection

__all__ = [
    "SideBias",
    "comparisons_histogram",
    "decision_time_histogram",
    "left_right_win_rate",
    "mu_sigma_scatter",
    "side_bias",
    "topk_overlap_over_time",
    "topk_overlap_series",
]


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def mu_sigma_scatter(collection: Collection, k: int | None = None) -> Figure:
    """Each active image as a point (mu, sigma), coloured by its number of comparisons; the current top-k by
    ordinal ``mu - 3 sigma`` ringed, and the line of the k-th best ordinal (``sigma = (mu - cut) / 3``). In the
    consistent-judge mode (``collection.rating_model.consistent``) the ringed images are the leaderboard's top-k,
    ranked by the full posterior, and there is no ordinal line.

    Args:
        k: the top-k to mark; default ``min(Settings.topk, N // 4)``.
    """
    df = collection.images_df(status="active")
    fig, ax = _figure()
    if df.empty:
        _empty(ax, "no active images")
        return fig
    k = k or default_k(len(df), collection.settings.topk)
    posterior = collection.rating_model.consistent  # the leaderboard is the full posterior's, not the ordinal's
    if posterior:
        top = df.set_index("id").loc[collection.leaderboard(k)["image_id"].to_numpy()].reset_index()
    else:
        top = df.sort_values(["ordinal", "id"], ascending=[False, True]).head(k)
    sc = ax.scatter(df["mu"], df["sigma"], c=df["comparison_count"], s=12, cmap="viridis", alpha=0.8,
                    linewidths=0)
    ax.scatter(top["mu"], top["sigma"], s=40, facecolors="none", edgecolors="crimson", linewidths=1.0,
               label=f"top {k} by the full posterior" if posterior else f"top {k} by μ − 3σ")
    if not posterior:
        cut = float(top["ordinal"].min())
        mus = np.linspace(float(df["mu"].min()), float(df["mu"].max()), 50)
        sig = (mus - cut) / 3.0
        ax.plot(mus[sig >= 0], sig[sig >= 0], "--", color="crimson", linewidth=0.8, label=f"μ − 3σ = {cut:.2f}")
    fig.colorbar(sc, ax=ax, label="comparisons")
    ax.set_xlabel("μ (skill estimate)")
    ax.set_ylabel("σ (uncertainty)")
    ax.set_title(f"{len(df):,} active images")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def comparisons_histogram(collection: Collection) -> Figure:
    """How many comparisons each active image has taken part in (integer bins; images never compared at 0)."""
    df = collection.images_df(status="active")
    fig, ax = _figure()
    if df.empty:
        _empty(ax, "no active images")
        return fig
    counts = df["comparison_count"].to_numpy()
    hi = int(counts.max())
    ax.hist(counts, bins=np.arange(-0.5, hi + 1.5, max(1, math.ceil((hi + 1) / 60))).tolist(), color="steelblue")
    ax.axvline(float(np.median(counts)), color="k", linestyle="--", linewidth=0.8,
               label=f"median {np.median(counts):g}")
    ax.set_xlabel("comparisons per image")
    ax.set_ylabel("images")
    never = int((counts == 0).sum())
    ax.set_title(f"{never:,} of {len(counts):,} images never compared")
    ax.legend(fontsize="small")
    return fig


def topk_overlap_series(
    collection: Collection, k: int | None = None, checkpoints: int = 20, samples: int = 64, seed: int = 0
) -> pd.DataFrame:
    """Replay the kept vote log and measure how the top-k settled.

    The ratings after match ``m`` are rebuilt from each entry's stored ``mu_after``/``sigma_after`` (the log is
    replay-exact, DESIGN §3), starting from each image's prior. At ``checkpoints`` evenly spaced points the top-k
    by ordinal is compared with the final top-k and with the previous checkpoint's.

    Returns:
        DataFrame with columns ``matches`` (rated matches so far), ``overlap_final`` (share of the top-k that
        is in the final top-k, 0..1), ``overlap_previous`` (share shared with the previous checkpoint) and
        ``stability`` (:func:`~imagerank.ratings.stability.topk_stability` at that point, ``samples`` draws). Empty
        when there are no rated matches. Cost O(checkpoints · N · samples).
    """
    import pandas as pd

    images = collection.images_df(status="active")
    cols = ["matches", "overlap_final", "overlap_previous", "stability"]
    entries = collection.matches_df()
    entries = entries[(entries["rated"] == 1) & entries["image_id"].isin(images["id"])]
    if images.empty or entries.empty:
        return pd.DataFrame(columns=cols)
    k = k or default_k(len(images), collection.settings.topk)
    index = {int(i): j for j, i in enumerate(images["id"].tolist())}
    mu = images["prior_mu"].fillna(R.DEFAULT_MU).to_numpy(dtype=np.float64).copy()
    sigma = images["prior_sigma"].fillna(R.DEFAULT_SIGMA).to_numpy(dtype=np.float64).copy()
    final = set(np.argsort(-R.ordinal(images["mu"].to_numpy(), images["sigma"].to_numpy()), kind="stable")[:k].tolist())
    match_ids = entries["match_id"].drop_duplicates().to_numpy()
    marks = np.unique(np.linspace(0, len(match_ids), min(checkpoints, len(match_ids)) + 1).round().astype(int))
    pos = entries["image_id"].map(index).to_numpy()
    rng = np.random.default_rng(seed)
    rows = []
    previous: set[int] | None = None
    done = 0
    entry_mids = entries["match_id"].to_numpy()
    for mark in marks:
        if mark > done:
            lo = np.searchsorted(entry_mids, match_ids[done], side="left")
            hi = np.searchsorted(entry_mids, match_ids[mark - 1], side="right")
            chunk = entries.iloc[lo:hi].assign(pos=pos[lo:hi]).drop_duplicates("pos", keep="last")
            mu[chunk["pos"].to_numpy()] = chunk["mu_after"].to_numpy()
            sigma[chunk["pos"].to_numpy()] = chunk["sigma_after"].to_numpy()
            done = mark
        top = set(np.argsort(-R.ordinal(mu, sigma), kind="stable")[:k].tolist())
        rows.append({
            "matches": int(mark),
            "overlap_final": len(top & final) / k,
            "overlap_previous": float("nan") if previous is None else len(top & previous) / k,
            "stability": topk_stability(mu, sigma, k, samples=samples, rng=rng),
        })
        previous = top
    return pd.DataFrame(rows, columns=cols)


def topk_overlap_over_time(collection: Collection, k: int | None = None, checkpoints: int = 20) -> Figure:
    """How the top-k settled as votes came in (see :func:`topk_overlap_series`): overlap with the final top-k,
    with the previous checkpoint (churn), and the posterior stability estimate at each point."""
    k = k or default_k(len(collection.pool()), collection.settings.topk)
    df = topk_overlap_series(collection, k=k, checkpoints=checkpoints)
    fig, ax = _figure()
    if df.empty:
        _empty(ax, "no votes yet")
        return fig
    ax.plot(df["matches"], df["overlap_final"], "o-", label=f"overlap with the final top {k}")
    ax.plot(df["matches"], df["overlap_previous"], "s-", label="overlap with the previous checkpoint")
    ax.plot(df["matches"], df["stability"], "--", color="0.3", label="posterior stability estimate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("rated matches")
    ax.set_ylabel(f"share of the top {k}")
    ax.set_title(f"top-{k} over the vote log")
    ax.legend(fontsize="small", loc="lower right")
    return fig


class SideBias(dict):
    """The dict :func:`side_bias` returns, shown as a sentence (``str``) or a small table (in a notebook)."""

    def verdict(self) -> str:
        if self["rate"] is None:
            return "no pairwise wins yet"
        if self["low"] > 0.5:
            return "the left image wins more often than chance allows: a bias toward the left"
        if self["high"] < 0.5:
            return "the right image wins more often than chance allows: a bias toward the right"
        return "no side bias detectable (50 % is inside the 95 % interval)"

    def __str__(self) -> str:
        if self["rate"] is None:
            return self.verdict()
        return (f"left wins {self['rate']:.0%} of {self['left'] + self['right']:,} wins (95 % interval "
                f"{self['low']:.0%}–{self['high']:.0%}): {self.verdict()}")

    def _repr_html_(self) -> str:
        rate = "–" if self["rate"] is None else f"{self['rate']:.1%}"
        interval = "–" if self["rate"] is None else f"{self['low']:.1%} – {self['high']:.1%}"
        rows = [("wins by the left image", f"{self['left']:,}"), ("wins by the right image", f"{self['right']:,}"),
                ("left share", rate), ("95 % interval (Wilson)", interval), ("verdict", self.verdict())]
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
                       for k, v in rows)
        return f"<table><caption style='text-align:left'><b>side bias</b></caption>{body}</table>"


def side_bias(collection: Collection) -> SideBias:
    """Left/right balance of kept pairwise wins: a bias toward one side of the screen shows up here.

    Returns:
        a dict ``{"left": wins by the left image, "right": wins by the right image, "rate": left share 0..1 or
        None, "low", "high": its 95% Wilson interval}`` that prints as a sentence and shows as a table in a
        notebook.
    """
    df = collection.matches_df()
    wins = df[(df["kind"] == "win") & (df["rank"] == 0) & df["position"].notna()]
    left = int((wins["position"] == 0).sum())
    right = int((wins["position"] == 1).sum())
    n = left + right
    if n == 0:
        return SideBias(left=0, right=0, rate=None, low=None, high=None)
    p, z = left / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return SideBias(left=left, right=right, rate=p, low=centre - half, high=centre + half)


def left_right_win_rate(collection: Collection) -> Figure:
    """Share of pairwise wins that went to the left image, with its 95% Wilson interval, against 50%."""
    b = side_bias(collection)
    fig, ax = _figure(5.0, 3.2)
    if b["rate"] is None:
        _empty(ax, "no wins yet")
        return fig
    n = b["left"] + b["right"]
    ax.bar(["left", "right"], [b["rate"], 1 - b["rate"]], color=["#4c72b0", "#dd8452"],
           yerr=[[b["rate"] - b["low"], b["high"] - b["rate"]], [b["high"] - b["rate"], b["rate"] - b["low"]]],
           capsize=6)
    ax.axhline(0.5, color="k", linestyle="--", linewidth=0.8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of wins")
    ax.set_title(f"{b['left']} left vs {b['right']} right wins (n = {n}); 95% interval")
    return fig


def decision_time_histogram(collection: Collection) -> Figure:
    """Distribution of time-to-decide per judgement (``decision_ms``, log-spaced bins), with median and p90."""
    df = collection.matches_df().drop_duplicates("match_id")
    ms = df["decision_ms"].dropna().to_numpy(dtype=np.float64)
    ms = ms[ms > 0]
    fig, ax = _figure()
    if ms.size == 0:
        _empty(ax, "no timed votes yet")
        return fig
    lo, hi = max(ms.min(), 10.0), max(ms.max(), 20.0)
    ax.hist(ms, bins=np.geomspace(lo * 0.9, hi * 1.1, 30).tolist(), color="seagreen")
    ax.set_xscale("log")
    med, p90 = np.median(ms), np.percentile(ms, 90)
    ax.axvline(med, color="k", linestyle="--", linewidth=0.8, label=f"median {med / 1000:.2f} s")
    ax.axvline(p90, color="k", linestyle=":", linewidth=0.8, label=f"p90 {p90 / 1000:.2f} s")
    ax.set_xlabel("time to decide (ms)")
    ax.set_ylabel("judgements")
    ax.set_title(f"{ms.size:,} timed judgements")
    ax.legend(fontsize="small")
    return fig
