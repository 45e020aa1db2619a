"""Training data from the catalog: judgements from the vote log, held-out splits, and crops.

Judgements (:func:`load_votes`): every kept (not undone) match except skips, which are excluded and counted. A
pairwise match is a Bradley-Terry outcome (win y=1, draw y=0.5); an N-way match (best-of-burst, an imported
selection) is a Plackett-Luce ranking whose ties share a rank. A match in which every entry is tied carries no
preference: N-way ones are decomposed into pairwise draws.

Splits (:func:`split_votes`) are held out *by match* with a fixed seed, so all pairs of one judgement fall on
the same side; optionally a share of images is held out completely ("cold" images: every match touching one is
kept out of training) to measure how the ranker does on images it never saw.

Crops (:func:`load_crops`, :func:`add_crop`) live in the ``crops`` table (:class:`imagerank.catalog.CropTable`,
``cat.crops``) as normalised ``x, y, w, h`` in [0, 1] of the upright image (after EXIF orientation);
:func:`validate_box` is :func:`imagerank.catalog.validate_box`.

The Lightning DataModules that batch these for training are in :mod:`imagerank.training.datamodule`
(``PreferenceDataModule``, ``CropDataModule``) and are re-exported here lazily, so importing this module does not
import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..catalog import CatalogLike, as_catalog, validate_box
from ..errors import CropError, InvalidArgumentError, NoVotesError
from .bt import pairwise_arrays

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "PairTable",
    "Split",
    "VoteData",
    "add_crop",
    "crop_of",
    "load_crops",
    "load_votes",
    "split_votes",
    "validate_box",
    "vote_pairs",
]

_NO_VOTES_HELP = (
    "vote in notebooks/01_vote.ipynb (or col.vote), import a selection log (`imagerank import-selections WS CSV`), "
    "or, for a demo only, simulate a session with imagerank.training.simulate.simulated_votes(col, n)"
)


@dataclass
class PairTable:
    """Pairwise outcomes: ``a`` beat ``b`` with outcome ``y`` (1 win, 0.5 draw), from match ``match_id``.

    All arrays are (P,): ``a``, ``b``, ``match_id`` int64 image / match ids, ``y`` float64.
    """

    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    match_id: np.ndarray

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @property
    def decided(self) -> np.ndarray:
        """(P,) bool: the pair has a winner (not a draw)."""
        return self.y != 0.5


@dataclass
class VoteData:
    """The judgements a ranker can learn from, one per kept match.

    Attributes:
        match_ids: (M,) int64 match ids, ascending.
        entries: M arrays of image ids (int64), one per match, in entry order.
        ranks: M arrays of ranks (int64, 0 best, ties share a rank), aligned with ``entries``.
        n_skips: kept skip matches left out (a skip says nothing about preference).
        n_undone: undone matches left out.
        n_draws: pairwise matches that are draws (kept, y = 0.5).
        n_tied_rankings: N-way matches with every entry tied (decomposed into pairwise draws).
    """

    match_ids: np.ndarray
    entries: list[np.ndarray]
    ranks: list[np.ndarray]
    n_skips: int = 0
    n_undone: int = 0
    n_draws: int = 0
    n_tied_rankings: int = 0

    def __len__(self) -> int:
        return int(self.match_ids.shape[0])

    @property
    def image_ids(self) -> np.ndarray:
        """(I,) int64 sorted ids of every image in some judgement."""
        if not self.entries:
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate(self.entries))

    def decisive(self) -> np.ndarray:
        """(M,) bool: the match has at least two distinct ranks (it says which image is better)."""
        return np.array([len(np.unique(r)) > 1 for r in self.ranks], dtype=bool)

    def pairs(self, rows: np.ndarray | Sequence[int] | None = None) -> PairTable:
        """Every match (or the matches at positions ``rows``) decomposed into pairwise outcomes, winner first.

        An N-way ranking gives N(N-1)/2 pairs (:func:`imagerank.training.bt.pairwise_arrays`).
        """
        idx = range(len(self)) if rows is None else np.asarray(rows, dtype=np.int64).tolist()
        a: list[int] = []
        b: list[int] = []
        y: list[float] = []
        mid: list[int] = []
        for k in idx:
            for pa, pb, py in pairwise_arrays(self.entries[k].tolist(), self.ranks[k].tolist()):
                a.append(pa)
                b.append(pb)
                y.append(py)
                mid.append(int(self.match_ids[k]))
        return PairTable(np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(y, np.float64),
                         np.asarray(mid, np.int64))

    def summary(self) -> str:
        """One line: matches, decisive ones, draws, skips and undone left out."""
        return (f"{len(self)} judgements ({int(self.decisive().sum())} decisive, {self.n_draws} draws, "
                f"{self.n_tied_rankings} all-tied rankings); left out: {self.n_skips} skips, {self.n_undone} undone")


def load_votes(col: CatalogLike, *, sources: Sequence[str] | None = None, require_decisive: bool = True) -> VoteData:
    """Judgements from the vote log (kept matches, skips excluded and counted, undone ones excluded).

    Args:
        col: the collection.
        sources: keep only matches whose ``source`` is one of these (``user``, ``import``, ``suggestion`` ...);
            default all.
        require_decisive: raise :class:`NoVotesError` when no match says which image is better.

    Returns:
        A :class:`VoteData`.

    Raises:
        NoVotesError: no kept matches at all, or (with ``require_decisive``) only draws / tied rankings; the
            message says what was found and how to get votes.
    """
    cat = as_catalog(col)
    df = cat.votes.matches_df(include_undone=True)
    n_images = cat.images.count_active()
    if sources is not None:
        df = df[df["source"].isin(list(sources))]
    per_match = df.drop_duplicates("match_id")
    n_undone = int((per_match["undone"] == 1).sum())
    n_skips = int(((per_match["undone"] == 0) & (per_match["kind"] == "skip")).sum())
    kept = df[(df["undone"] == 0) & (df["kind"] != "skip")]
    match_ids: list[int] = []
    entries: list[np.ndarray] = []
    ranks: list[np.ndarray] = []
    n_draws = n_tied = 0
    for mid, g in kept.groupby("match_id", sort=True):
        ids = g["image_id"].to_numpy(np.int64)
        rk = g["rank"].to_numpy(np.int64)
        if len(ids) < 2:
            continue
        if len(ids) == 2:
            n_draws += int(rk[0] == rk[1])
            match_ids.append(int(mid))
            entries.append(ids)
            ranks.append(rk)
        elif len(np.unique(rk)) == 1:
            n_tied += 1  # an N-way "all equal": pairwise draws carry the same information
            for x in range(len(ids)):
                for z in range(x + 1, len(ids)):
                    match_ids.append(int(mid))
                    entries.append(ids[[x, z]])
                    ranks.append(np.zeros(2, np.int64))
        else:
            match_ids.append(int(mid))
            entries.append(ids)
            ranks.append(rk)
    votes = VoteData(np.asarray(match_ids, np.int64), entries, ranks, n_skips, n_undone, n_draws, n_tied)
    if len(votes) == 0:
        raise NoVotesError(
            f"no votes yet: the collection has no kept judgements ({n_images} active images, {n_skips} skips and "
            f"{n_undone} undone matches left out); a ranker needs votes: {_NO_VOTES_HELP}"
        )
    if require_decisive and not votes.decisive().any():
        raise NoVotesError(
            f"all {len(votes)} kept judgements are draws or all-tied rankings: they say no image is better than "
            f"another, so there is nothing to learn a preference from; vote for a winner at least a few times "
            f"({_NO_VOTES_HELP})"
        )
    return votes


def vote_pairs(col: CatalogLike) -> PairTable:
    """Every kept, non-skip match as pairwise outcomes in vote order, winner first: the same table as
    ``load_votes(col, require_decisive=False).pairs()`` (``tests/training/test_live_prior.py`` checks it) from
    one SQL query, vectorised for 2-image matches; N-way rankings give their N(N-1)/2 pairs. The live prior reads
    it every few hundred votes, where the data-frame path of :func:`load_votes` costs about 0.1 s per 1,000 votes.

    Returns:
        A :class:`PairTable` (empty when there are no kept votes; it may hold only draws).
    """
    cat = as_catalog(col)
    rows = cat.votes.kept_entries()
    mids = rows[:, 0]
    starts = np.flatnonzero(np.r_[True, mids[1:] != mids[:-1]]) if len(mids) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(mids)])
    two = starts[sizes == 2]
    ia, ib, ra, rb = rows[two, 1], rows[two + 1, 1], rows[two, 2], rows[two + 1, 2]
    pos, a, b, y = [two], [np.where(ra <= rb, ia, ib)], [np.where(ra <= rb, ib, ia)], [np.where(ra == rb, 0.5, 1.0)]
    for st, sz in zip(starts[sizes > 2].tolist(), sizes[sizes > 2].tolist()):
        pw = pairwise_arrays(rows[st:st + sz, 1].tolist(), rows[st:st + sz, 2].tolist())
        pos.append(np.full(len(pw), st, dtype=np.int64))
        a.append(np.array([p[0] for p in pw], np.int64))
        b.append(np.array([p[1] for p in pw], np.int64))
        y.append(np.array([p[2] for p in pw], np.float64))
    starts_of = np.concatenate(pos)
    order = np.argsort(starts_of, kind="stable")  # back to vote order
    first = starts_of[order]
    return PairTable(np.concatenate(a)[order].astype(np.int64), np.concatenate(b)[order].astype(np.int64),
                     np.concatenate(y)[order].astype(np.float64), mids[first].astype(np.int64))


@dataclass
class Split:
    """A held-out split of :class:`VoteData` rows (positions, not match ids).

    Attributes:
        train, val: (M_train,), (M_val,) int64 rows; validation matches touch no cold image.
        cold: rows whose images are all cold (never in a training match): the cold-start test set.
        mixed: rows touching both cold and warm images (neither trained on nor used as a cold test).
        cold_images: (C,) int64 image ids held out of training entirely.
        seed, val_fraction, cold_fraction: how the split was drawn.
    """

    train: np.ndarray
    val: np.ndarray
    cold: np.ndarray
    mixed: np.ndarray
    cold_images: np.ndarray
    seed: int
    val_fraction: float
    cold_fraction: float
    train_match_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_match_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (seed, fractions, sizes, cold image ids, validation match ids)."""
        return {
            "seed": self.seed, "val_fraction": self.val_fraction, "cold_fraction": self.cold_fraction,
            "n_train": len(self.train), "n_val": len(self.val), "n_cold": len(self.cold),
            "n_mixed": len(self.mixed), "cold_images": self.cold_images.tolist(),
            "val_match_ids": np.unique(self.val_match_ids).tolist(),
        }


def split_votes(votes: VoteData, *, val_fraction: float = 0.2, cold_fraction: float = 0.0, seed: int = 0) -> Split:
    """Hold out judgements by match (and optionally whole images) with a fixed seed.

    First ``round(cold_fraction * I)`` of the I judged images are drawn as cold; matches touching them leave
    training. Of the remaining matches, ``round(val_fraction * M)`` (distinct match ids, so the pairwise draws of
    one tied ranking stay together) are drawn for validation. Deterministic for the same votes and seed.

    Raises:
        InvalidArgumentError: a fraction outside [0, 1).
    """
    for name, v in (("val_fraction", val_fraction), ("cold_fraction", cold_fraction)):
        if not 0.0 <= v < 1.0:
            raise InvalidArgumentError(f"{name}: expected a fraction in [0, 1), got {v!r}")
    rng = np.random.default_rng(seed)
    images = votes.image_ids
    n_cold = round(cold_fraction * len(images))
    cold_images = np.sort(rng.choice(images, size=n_cold, replace=False)) if n_cold else np.zeros(0, np.int64)
    cold_set = set(cold_images.tolist())
    n_in_cold = np.array([sum(int(i) in cold_set for i in e) for e in votes.entries], dtype=np.int64)
    sizes = np.array([len(e) for e in votes.entries], dtype=np.int64)
    warm_rows = np.flatnonzero(n_in_cold == 0)
    cold_rows = np.flatnonzero(n_in_cold == sizes)
    mixed_rows = np.flatnonzero((n_in_cold > 0) & (n_in_cold < sizes))
    warm_mids = np.unique(votes.match_ids[warm_rows])
    n_val = round(val_fraction * len(warm_mids))
    val_mids = set(rng.permutation(warm_mids)[:n_val].tolist())
    is_val = np.array([int(votes.match_ids[r]) in val_mids for r in warm_rows], dtype=bool)
    train, val = warm_rows[~is_val], warm_rows[is_val]
    return Split(train, val, cold_rows, mixed_rows, cold_images, int(seed), float(val_fraction),
                 float(cold_fraction), votes.match_ids[train], votes.match_ids[val])


# ---------------------------------------------------------------------------------------------- crops
def add_crop(
    col: CatalogLike,
    image_id: int,
    box: Sequence[float],
    *,
    units: str = "normalised",
    source: str = "user",
    aspect: str | None = None,
    model: str | None = None,
    confidence: float | None = None,
    accepted: bool | None = True,
) -> int:
    """Store a crop of ``image_id``; returns the new ``crops.id``.

    Args:
        box: ``(x, y, w, h)``: top-left corner, width and height.
        units: ``"normalised"`` (fractions of the upright image, 0–1) or ``"pixels"`` (of the upright original,
            converted with the catalog's width and height).
        source: ``user`` or ``model``; ``model`` and ``confidence`` name the proposer of a model crop.
        aspect: the aspect preset used (``free``, ``1:1``, ``4:5``, ``3:2``, ``16:9``), informational.
        accepted: True for crops a user made or approved.

    Raises:
        NotFoundError: no such image.
        CropError: a bad box (see :func:`validate_box`), unknown units, or pixel units for an image whose size is
            not known yet (scan it first).
    """
    cat = as_catalog(col)
    img = cat.images.get(image_id)
    if len(box) != 4:
        raise CropError(f"box: expected (x, y, w, h), got {tuple(box)!r}")
    x, y, w, h = box
    if units in ("pixels", "px", "pixel"):
        W, H = img.get("width"), img.get("height")
        if not W or not H:
            raise CropError(f"image {image_id}: size unknown, cannot convert a pixel box; scan the collection first")
        x, y, w, h = float(x) / W, float(y) / H, float(w) / W, float(h) / H
    elif units not in ("normalised", "normalized", "norm"):
        raise CropError(f"units: expected 'normalised' or 'pixels', got {units!r}")
    return cat.crops.add(image_id, (x, y, w, h), source=source, aspect=aspect, model=model, confidence=confidence,
                         accepted=accepted)


def load_crops(col: CatalogLike, *, latest: bool = True, include_model: bool = True) -> pd.DataFrame:
    """Crops to train on: user crops (not rejected), and (with ``include_model``) model or imported crops a user
    accepted, of active images; the latest per image with ``latest``.

    Returns:
        DataFrame with columns crop_id, image_id (int64), x, y, w, h (normalised float64), aspect, source,
        created_at (ISO text, UTC), ordered by crop_id (see :meth:`imagerank.catalog.CropTable.crops_df`).
    """
    cat = as_catalog(col)
    df = cat.crops.crops_df(trainable=True, include_model=include_model, latest=latest)
    return df[["crop_id", "image_id", "x", "y", "w", "h", "aspect", "source", "created_at"]]


def crop_of(col: CatalogLike, image_id: int) -> tuple[float, float, float, float] | None:
    """The latest accepted crop of ``image_id`` as normalised (x, y, w, h), or None.

    Raises:
        NotFoundError: no such image.
    """
    cat = as_catalog(col)
    box = cat.crops.latest(image_id)
    if box is None:
        cat.images.get(image_id)  # NotFoundError for an unknown id
    return box


def __getattr__(name: str) -> Any:
    # The DataModules need torch and Lightning: import them only when asked for.
    if name in ("PreferenceDataModule", "CropDataModule"):
        from . import datamodule

        return getattr(datamodule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
