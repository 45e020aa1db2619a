"""``Collection``: the front door (floor 5). One verb per user workflow over the layers below.

Open one with :func:`imagerank.open` (an existing workspace) or :func:`imagerank.init` (a new one). A workspace
folder holds ``imagerank.toml``, ``imagerank.db``, ``sidecars/``, ``thumbs/`` and ``exports/``; image files stay
where they are and are never modified.

The facade owns the :class:`~imagerank.catalog.Catalog` (settings, database, tables), the thumbnail cache, the
pool of active images kept current by the vote log, and the live prior (:class:`~imagerank.training.prior.
LivePrior`, subscribed to the vote log). Everything else is one call into the package that owns it:
``col.images`` (status, labels, failures), ``col.votes`` (sessions, record, undo, replay, doctor), ``col.thumbs``
(the thumbnail cache), ``col.prior`` (the live prior), ``imagerank.features`` and ``imagerank.training``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._util import stamp
from .catalog import DB_NAME, Catalog, DoctorReport, JudgeConsistency, Match, Outcome, Session
from .config import Settings
from .media import ScanReport, ThumbnailCache, scan_workspace
from .pairing import Pool, PoolCache, best_of_ranks, next_group, next_pairs
from .pairing.posterior_view import PosteriorView

if TYPE_CHECKING:
    import pandas as pd

    from .catalog import ImageTable, VoteLog
    from .export import ExportReport
    from .features.pipeline import EmbeddingRun, FeatureReport
    from .features.spec import FeatureSpec
    from .training.prior import LivePrior

__all__ = ["DB_NAME", "SCORES", "Collection", "DoctorReport", "Match", "ScanReport", "Session", "init",
           "open_collection", "score_column"]

#: The leaderboard's score, by the column of :meth:`Collection.leaderboard` that holds it: the key the board is
#: ranked by, the leaderboard panel's *Score* column, and what :meth:`Collection.export_above` compares its
#: threshold with. ``ordinal``: OpenSkill's ``mu - 3 sigma``; ``score``: the consistent-judge mode's EP posterior
#: mean minus one posterior SD (:func:`imagerank.ratings.posterior.board_score`).
SCORES = {"ordinal": "OpenSkill's ordinal mu - 3 sigma",
          "score": "the EP posterior's mean - 1 SD (consistent-judge mode)"}


def score_column(board: pd.DataFrame) -> str:
    """The column of a :meth:`Collection.leaderboard` frame that holds the score it is ranked by: ``score`` when the
    board came from the consistent-judge mode (it has that column), else ``ordinal``. See :data:`SCORES`."""
    return "score" if "score" in board.columns else "ordinal"


class Collection:
    """One workspace. Not constructed directly: use :func:`imagerank.open` or :func:`imagerank.init`.

    Thread-safe for one kernel (the connection is locked); several processes may vote on one workspace at
    once (SQLite WAL + ``BEGIN IMMEDIATE``; the in-memory pool reloads when another process commits).
    """

    def __init__(self, catalog: Catalog) -> None:
        from .training.prior import LivePrior

        self.catalog = catalog
        self.thumbs = ThumbnailCache(catalog)
        self.pairs = PoolCache(catalog)
        #: the EP posterior of the log, the ranking of the consistent-judge mode (:attr:`rating_model`)
        self.posterior = PosteriorView(catalog)
        self.prior: LivePrior = LivePrior(catalog, on_scores=self.pairs.set_prior_scores)

    # ------------------------------------------------------------------ the workspace
    @property
    def root(self) -> Path:
        return self.catalog.root

    @property
    def settings(self) -> Settings:
        return self.catalog.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.catalog.settings = value

    @property
    def db(self) -> Any:
        return self.catalog.db

    @property
    def images(self) -> ImageTable:
        return self.catalog.images

    @property
    def votes(self) -> VoteLog:
        return self.catalog.votes

    @property
    def sidecars_dir(self) -> Path:
        return self.catalog.sidecars_dir

    @property
    def exports_dir(self) -> Path:
        return self.catalog.exports_dir

    @property
    def models_dir(self) -> Path:
        return self.catalog.models_dir

    def __repr__(self) -> str:
        return f"Collection({str(self.root)!r})"

    def close(self) -> None:
        """Wait for a live-prior refit and a posterior rebuild in flight, then close the catalog connection."""
        self.prior.close()
        self.posterior.close()
        self.catalog.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ scan
    def scan(self, *, thumbnails: bool = True, progress: bool = True, extractors: Sequence[str] = ()) -> ScanReport:
        """Discover files under the roots, upsert them, mark vanished ones ``missing``, then build thumbnails (and,
        with ``extractors`` such as ``("hashes", "quality")``, those features from the same decode). See
        :func:`imagerank.media.scan_workspace`."""
        def decode() -> tuple[int, int]:
            return self.build_thumbnails(progress=progress, extractors=extractors)

        return scan_workspace(self.catalog, thumbnails=thumbnails, progress=progress, decode_pass=decode)

    def build_thumbnails(self, ids: Iterable[int] | None = None, *, progress: bool = True, force: bool = False,
                         extractors: Sequence[str] = ()) -> tuple[int, int]:
        """Write missing or stale thumbnails (and, with ``extractors``, those features' sidecar rows from the same
        decode); returns (thumbnails written, images marked corrupt). See :meth:`ThumbnailCache.build`."""
        if extractors:
            from .features.pipeline import decode_pass

            return decode_pass(self.catalog, extractors, ids=ids, progress=progress, force=force)
        return self.thumbs.build(ids, progress=progress, force=force)

    def thumbnail_bytes(self, image_id: int) -> bytes | None:
        """JPEG bytes of the thumbnail (building it on demand), or None when the image cannot be decoded."""
        return self.thumbs.read_bytes(image_id)

    # ------------------------------------------------------------------ features (imagerank.features)
    def compute_features(
        self,
        *,
        hashes: bool = True,
        quality: bool = True,
        exif: bool = True,
        embeddings: str | Sequence[str] | None = None,
        features: Sequence[str | FeatureSpec] = (),
        ids: Iterable[int] | None = None,
        force: bool = False,
        scan: bool = False,
        run: EmbeddingRun | None = None,
        skip_failures: bool = True,
        progress: bool = True,
    ) -> FeatureReport:
        """Compute missing or stale feature sidecars (hashes + quality + registered ``features`` such as ``"cheap"``
        in the thumbnail's single decode, EXIF, ``embeddings="MODEL:PRETRAINED"`` run as ``run=EmbeddingRun(...)``);
        returns a ``FeatureReport``. See :func:`imagerank.features.pipeline.compute_features`."""
        from .features.pipeline import compute_features

        return compute_features(
            self.catalog, hashes=hashes, quality=quality, exif=exif, embeddings=embeddings, features=features,
            ids=ids, force=force, scan=scan, run=run, skip_failures=skip_failures, progress=progress,
        )

    def features_df(self, name: str) -> pd.DataFrame:
        """Sidecar ``name`` (``hashes``, ``quality``, ``exif``, ``embeddings/<model>__<pretrained>`` ...) as a
        DataFrame, one current row per image, sorted by ``image_id``."""
        from .features.sidecar import features_frame

        return features_frame(self.catalog, name)

    def embeddings(self, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(image_ids (N,) int64 ascending, X (N, D) float32 L2-normalised)`` of embedding set ``name``
        (``"<model>__<pretrained>"``; default the newest). Raises FeatureError when none was computed."""
        from .features.neighbors import embedding_matrix

        return embedding_matrix(self.catalog, name)

    def near_duplicates(self, method: str = "phash", *, threshold: float | None = None) -> list[list[int]]:
        """Groups of near-duplicate active images (lists of ids, largest first) by ``"phash"`` Hamming distance
        (<= ``Settings.phash_threshold``) or ``"embedding"`` cosine (>= ``Settings.cosine_threshold``)."""
        from .features.neighbors import near_duplicate_groups

        return near_duplicate_groups(self.catalog, method, threshold=threshold)

    def exact_duplicates(self) -> list[list[int]]:
        """Groups of active images with byte-identical files (equal digests), largest first."""
        from .features.neighbors import exact_duplicate_groups

        return exact_duplicate_groups(self.catalog)

    def similar(self, image_id: int, k: int = 10) -> pd.DataFrame:
        """The ``k`` nearest active images to ``image_id`` by embedding cosine: image_id, similarity, filepath."""
        from .features.neighbors import similar_images

        return similar_images(self.catalog, image_id, k)

    def feature_map(self, method: str = "pca", *, source: str = "auto") -> pd.DataFrame:
        """2-D map of the active images (``image_id``, ``x``, ``y``) by PCA of embeddings (else hash bits)."""
        from .features.neighbors import feature_map

        return feature_map(self.catalog, method, source=source)

    # ------------------------------------------------------------------ voting
    @property
    def session(self) -> Session:
        """The current voting session (started on first use)."""
        return self.votes.session

    def start_session(self, voter: str | None = None, strategy: str | None = None, seed: int | None = None) -> Session:
        """Start a new voting session (its own RNG and no-repeat memory) and make it current."""
        return self.votes.start_session(voter, strategy, seed)

    def pool(self) -> Pool:
        """The active images as arrays (cached; kept current by votes, reloaded after any other change)."""
        return self.pairs.get()

    def next_pairs(self, n: int = 1, *, strategy: str | None = None,
                   avoid: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
        """Up to ``n`` new (left, right) pairs of image ids for the current session.

        Pairs already judged in the session and pairs in ``avoid`` (e.g. queued in the browser) are not
        repeated; sides are randomised. ``strategy`` defaults to the session's (``Settings.strategy``).

        In the consistent-judge mode (:attr:`rating_model`) ``active`` picks with the boundary screen on the EP
        posterior (:func:`imagerank.pairing.screen.screen_pairs`).

        Raises:
            StrategyNotFoundError: unknown strategy name.
        """
        if (strategy or self.votes.session.strategy) == "active":
            pick = self.posterior.strategy(self.pool().ids)
            if pick is not None:
                return next_pairs(self, n, strategy=pick, avoid=avoid)
        return next_pairs(self, n, strategy=strategy, avoid=avoid)

    def next_group(self, size: int = 4, *, strategy: str | None = None,
                   avoid: Iterable[tuple[int, int]] = ()) -> list[int]:
        """Image ids for one best-of-N round (``size`` 3 or 4; 2 is a pair), chosen by the session's strategy
        (``active``: the top-k boundary), in screen order. See :func:`imagerank.pairing.select_group`.

        Raises:
            InvalidArgumentError: ``size`` not in ``GROUP_SIZES``.
            StrategyNotFoundError: unknown strategy name.
        """
        return next_group(self, size, strategy=strategy, avoid=avoid)

    def vote_best(self, image_ids: Sequence[int], best: int, *, worst: int | None = None,
                  decision_ms: float | None = None, voter: str | None = None) -> Match:
        """Record one best-of-N round: ``image_ids`` as shown (screen positions 0..N-1), ``best`` chosen (and
        ``worst``, optionally). Stored as one N-way Plackett-Luce match (``kind='ranking'``, ranks from
        :func:`imagerank.pairing.best_of_ranks`); undo and replay as for a pair.

        Raises:
            InvalidArgumentError: ids repeated or fewer than 2, ``best``/``worst`` not shown, ``worst == best``,
                bad ``decision_ms`` or ``voter``.
            NotFoundError: an image id is not in the catalog.
        """
        ranks = best_of_ranks(image_ids, best, worst)
        ids = [int(i) for i in image_ids]
        return self.votes.record(ids, ranks, positions=list(range(len(ids))),
                                 kind="ranking" if len(ids) > 2 else None, decision_ms=decision_ms, voter=voter)

    def vote(self, left: int, right: int, outcome: Outcome, *, decision_ms: float | None = None,
             voter: str | None = None) -> Match:
        """Record one A-vs-B judgement: ``outcome`` is ``"left"``, ``"right"``, ``"draw"`` or ``"skip"``.

        Ratings change for wins and draws (OpenSkill Plackett-Luce); a skip is recorded but not rated unless
        ``Settings.skip_as_draw``. Left is screen position 0, right 1. See :meth:`VoteLog.vote`.

        Raises:
            InvalidArgumentError: unknown ``outcome`` or ``left == right``.
            NotFoundError: an image id is not in the catalog.
        """
        return self.votes.vote(left, right, outcome, decision_ms=decision_ms, voter=voter)

    def record_match(self, image_ids: Sequence[int], ranks: Sequence[int] | None = None, **details: Any) -> Match:
        """Record any judgement: a pairwise win or draw, a skip, or an N-way ranking (best-of-burst ...); ``details``
        are ``positions``, ``kind``, ``decision_ms``, ``voter``, ``source``. See :meth:`VoteLog.record`."""
        return self.votes.record(image_ids, ranks, **details)

    def undo(self, match_id: int | None = None, *, any_session: bool = False) -> Match | None:
        """Undo a match exactly (the last of this session by default); None when there is nothing to undo. See
        :meth:`VoteLog.undo`."""
        return self.votes.undo(match_id, any_session=any_session)

    def doctor(self) -> DoctorReport:
        """Check the catalog: ``PRAGMA integrity_check`` and replayed ratings == stored ratings (exactly)."""
        return self.votes.doctor()

    @property
    def consistency(self) -> JudgeConsistency:
        """How consistent the judge is: the fitted beta the ratings use and ``agreement``, the probability of the
        same answer on a judged pair shown again; ``.header`` is the panel's line ("you agree with yourself 91 %
        of the time (312 pairs)"). Refitted with the live prior; see :mod:`imagerank.ratings.consistency`."""
        return self.votes.consistency()

    @property
    def rating_model(self) -> Any:
        """Which rating model ranks the collection now, and why (a :class:`~imagerank.ratings.posterior.JudgeMode`:
        ``.consistent``, ``.ratio`` = fitted judge noise / skill SD, ``.reason``, e.g. "consistent judge: ranking by
        the full posterior (judge noise 0.02 x skill SD < 0.75)"). ``Settings.posterior`` (auto / on / off) forces
        it; see :mod:`imagerank.pairing.posterior_view`. Waits for a posterior rebuild in flight."""
        return self.posterior.mode

    # ------------------------------------------------------------------ the live prior (imagerank.training.prior)
    @property
    def prior_status(self) -> str:
        """One line on the learned prior: the last refit's report, or why there is none."""
        return self.prior.status

    @property
    def prior_report(self) -> Any:
        """The last prior report of this process (``LivePriorReport`` or ``PriorReport``), None before one."""
        return self.prior.report

    def refit_prior(self, features: str | None = None, *, compute: bool = True) -> Any:
        """Refit the live prior now (see :meth:`LivePrior.refit`); returns its ``LivePriorReport``.

        Raises:
            NoVotesError: no decisive vote between two images with features.
            FeatureError: no features (``compute=False``: none cached).
        """
        return self.prior.refit(features, compute=compute)

    def apply_prior(self, ranker: Any, *, max_comparisons: int = 3, scale: float | None = None) -> Any:
        """Turn a trained ranker's scores into prior ratings for images with at most ``max_comparisons``
        comparisons and stop the live refits in this process (see :meth:`LivePrior.apply_ranker`)."""
        return self.prior.apply_ranker(ranker, max_comparisons=max_comparisons, scale=scale)

    def clear_prior(self) -> int:
        """Remove every learned prior (ranker or live), replay the log; returns the ratings that changed."""
        return self.prior.clear()

    @contextmanager
    def deferred_prior(self) -> Iterator[None]:
        """Record many matches (an import, say) with one live-prior refit at the end instead of one every
        ``prior_refit_every`` votes. Nestable. See :meth:`VoteLog.batch`."""
        with self.votes.batch():
            yield

    # ------------------------------------------------------------------ tables
    def image(self, image_id: int) -> dict[str, Any]:
        """One image's catalog row as a dict. Raises NotFoundError when there is no such image."""
        return self.images.get(image_id)

    def images_df(self, status: str | None = None) -> pd.DataFrame:
        """All images (or those with ``status``) as a DataFrame, one row per image, with ``ordinal``."""
        return self.images.images_df(status)

    def matches_df(self, include_undone: bool = False) -> pd.DataFrame:
        """The vote log, one row per match entry (see :meth:`VoteLog.matches_df`)."""
        return self.votes.matches_df(include_undone)

    def leaderboard(self, limit: int | None = None, *, include_inactive: bool = False,
                    min_comparisons: int = 0, prior_only: bool = False) -> pd.DataFrame:
        """Images ranked by ordinal ``mu - 3*sigma`` (descending), with rank 1..N (see
        :meth:`ImageTable.leaderboard`; ``min_comparisons`` 1 leaves out images nobody voted on; ``prior_only``
        adds that column).

        In the consistent-judge mode (:attr:`rating_model`) the ranking is the EP posterior's ``score`` (``post_mu -
        post_sigma``, :func:`imagerank.ratings.posterior.board_score`; columns ``post_mu``, ``post_sigma``,
        ``score`` added, inactive images last); ``mu``, ``sigma`` and ``ordinal`` stay OpenSkill's stored ratings.
        Exports and the CSV follow this order, and :meth:`export_above` compares its threshold with the column the
        board is ranked by (:func:`score_column`: ``score`` here, else ``ordinal``).
        """
        if not self.posterior.mode.consistent:
            return self.images.leaderboard(limit, include_inactive=include_inactive, min_comparisons=min_comparisons,
                                           prior_only=prior_only)
        board = self.images.leaderboard(None, include_inactive=include_inactive, min_comparisons=min_comparisons,
                                        prior_only=prior_only)
        post = self.posterior.board(board["image_id"].to_numpy(np.int64))
        if post is None:
            return board.head(limit) if limit else board
        board["post_mu"], board["post_sigma"], board["score"] = post
        board = board.sort_values(["score", "image_id"], ascending=[False, True], na_position="last",
                                  kind="stable").reset_index(drop=True)
        board["rank"] = np.arange(1, len(board) + 1)
        return board.head(limit) if limit else board

    def stats(self) -> dict[str, Any]:
        """Totals: images by status, kept matches by kind, undone matches, sessions, last vote time."""
        return self.images.stats()

    # ------------------------------------------------------------------ plans in plain words (imagerank.cull.intents)
    def plan(self, intent: str, *, run: bool = False, parser: str = "auto") -> Any:
        """Parse ``intent`` into a plan of whitelisted actions and preview it (nothing written); with ``run=True``
        also run it and store it with its results (see :func:`imagerank.cull.intents.plan_intent`).

        Returns:
            a :class:`~imagerank.cull.intents.PlanPreview` (``print`` it: counts per step, a sample of files).

        Raises:
            PlanError: words not understood, an invalid plan, an export outside the allowed roots.
            LLMError: the LLM parser's endpoint failed.
        """
        from .cull.intents import plan_intent

        return plan_intent(self, intent, run=run, parser=parser)  # type: ignore[arg-type]

    def explain(self, image_id: int, *, polish: bool = False) -> dict[str, Any]:
        """Why image ``image_id`` was picked or not: the machine-readable reasons and a sentence (see
        :func:`imagerank.cull.intents.explain_image`); ``polish`` lets the configured LLM rephrase the sentence
        (``polished``; the facts never change). Raises NotFoundError for an unknown or inactive id,
        InvalidArgumentError for ``polish`` without ``llm_url`` / ``llm_model``."""
        from .cull.intents import explain_image, llm_parser

        return explain_image(self, image_id, polish=llm_parser(self.settings).polish if polish else None)

    # ------------------------------------------------------------------ export
    def export_top(self, n: int, out_dir: str | os.PathLike[str] | None = None, *, mode: str = "copy",
                   min_comparisons: int = 0) -> ExportReport:
        """Copy (or symlink / hardlink) the top ``n`` of the leaderboard as ``0001_name.ext`` ... See
        :func:`imagerank.export.export_images`; ``min_comparisons`` as in :meth:`leaderboard`.

        Every rank is attempted; images that could not be written are listed in the report's ``failed``.

        Raises:
            InvalidArgumentError: ``n`` is not a whole number >= 1. ExportError: unknown ``mode``, or the folder
                cannot be created.
        """
        import numbers

        from .errors import InvalidArgumentError
        from .export import export_images

        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise InvalidArgumentError(f"n: expected a whole number of images >= 1, got {n!r}")
        n = int(n)
        board = self.leaderboard(limit=n, min_comparisons=min_comparisons)
        return export_images(board, out_dir or self.exports_dir / f"top{n}-{stamp()}", mode=mode)

    def export_above(self, threshold: float, out_dir: str | os.PathLike[str] | None = None, *, mode: str = "copy",
                     min_comparisons: int = 0) -> ExportReport:
        """Export every active image whose leaderboard score is >= ``threshold`` (and, with ``min_comparisons``,
        that was voted on at least that often), in leaderboard order; see :meth:`export_top`.

        The score is the one the leaderboard ranks by and shows (:func:`score_column`): OpenSkill's ordinal ``mu -
        3*sigma``, or in the consistent-judge mode (:attr:`rating_model`) the EP posterior's ``score``
        (``post_mu - post_sigma``). So "everything above 20" is what the leaderboard lists above 20 in either mode.

        Raises:
            InvalidArgumentError: ``threshold`` is not a number (or NaN). ExportError: as in :meth:`export_top`.
        """
        import math
        import numbers

        from .errors import InvalidArgumentError
        from .export import export_images

        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or math.isnan(threshold):
            raise InvalidArgumentError(f"threshold: expected a number (a leaderboard score), got {threshold!r}")
        board = self.leaderboard(min_comparisons=min_comparisons)
        board = board[board[score_column(board)] >= threshold]
        return export_images(board, out_dir or self.exports_dir / f"above{threshold:g}-{stamp()}", mode=mode)

    def cull(self, out_dir: str | os.PathLike[str] | None = None, input_dir: str | os.PathLike[str] | None = None,
             **options: Any) -> pd.DataFrame:
        """Cull a photo shoot with this workspace's settings and its cache (``cache/cull.sqlite``); see
        :func:`imagerank.cull.cull` for ``options`` and the returned IR table.

        Args:
            out_dir: where the buckets and reports go (None: only the table). input_dir: the shoot (default: the
                workspace's folder when it has exactly one).

        Raises:
            InvalidArgumentError: no ``input_dir`` and not exactly one folder in the workspace.
        """
        from .cull import cull
        from .errors import InvalidArgumentError

        if input_dir is None:
            if len(self.settings.roots) != 1:
                raise InvalidArgumentError(f"input_dir: expected a folder (the workspace has {len(self.settings.roots)}"
                                           " image folders), got none")
            input_dir = self.settings.roots[0]
        options.setdefault("cache", self.root / "cache" / "cull.sqlite")
        return cull(input_dir, out_dir, settings=self.settings, **options)

    def to_csv(self, path: str | os.PathLike[str] | None = None, *, include_inactive: bool = True) -> Path:
        """Write the leaderboard (all images by default) to CSV; never overwrites an existing file.

        Written to a temporary name first: a failure (a full disk) leaves no file behind.

        Raises:
            ExportError: ``path`` exists already, or it cannot be written (the file system's reason).
        """
        from .export import write_csv

        return write_csv(self.leaderboard(include_inactive=include_inactive),
                         path or self.exports_dir / f"leaderboard-{stamp()}.csv")

    # ------------------------------------------------------------------ generation (imagerank.generation)
    def next_job(self, **options: Any) -> Any:
        """Queue the next generation job (:func:`imagerank.generation.policy.next_job`); None when nothing is to
        be done. Options: ``policy``, ``max_children``, ``target_finals``, ``seed``."""
        from .generation.policy import next_job

        return next_job(self.catalog, **options)

    def generation_runner(self, servers: Sequence[str], **options: Any) -> Any:
        """A :class:`imagerank.generation.runner.Runner` on this workspace and these ComfyUI servers:
        ``col.generation_runner([url]).start()`` runs it in the background, ``.snapshot()`` for a board,
        ``.stop()``; ``.run()`` in this thread. Options as ``Runner`` (``max_jobs``, ``until_idle``, ``policy``)."""
        from .generation.runner import Runner

        return Runner(self.catalog, servers, **options)
    def auto_pick(self, subjects: Sequence[Any], source: Any, scorer: Any, config: Any = None,
                  **options: Any) -> Any:
        """Pick the best image per subject from ``source`` (Commons or a folder) scored by ``scorer``, or flag the
        subject with a reason; winners join this collection. See :func:`imagerank.autopick.auto_pick` (options
        ``redo``, ``progress``, ``on_batch``); returns its :class:`~imagerank.autopick.PickReport`."""
        from .autopick import auto_pick

        return auto_pick(self.catalog, subjects, source, scorer, config, **options)


def init(
    workspace: str | os.PathLike[str],
    images: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = (),
    *,
    recursive: bool = True,
    extensions: Sequence[str] | None = None,
    **settings: Any,
) -> Collection:
    """Create (or update) a workspace: write ``imagerank.toml`` and ``imagerank.db``; does not scan.

    Args:
        workspace: folder to create; may already exist.
        images: one or more image folders (stored as absolute paths).
        recursive: walk sub-folders.
        extensions: image suffixes (default ``.jpg .jpeg .png .webp``).
        **settings: any other :class:`~imagerank.config.Settings` field.

    Raises:
        ConfigError: a bad setting. DatabaseReadOnlyError: the folder is not writable.
        StorageError: the disk is full or failing (writing ``imagerank.toml`` or the catalog).
    """
    roots = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    overrides: dict[str, Any] = {"recursive": recursive, **settings}
    if extensions is not None:
        overrides["extensions"] = tuple(extensions)
    return Collection(Catalog.create(workspace, roots, **overrides))


def open_collection(workspace: str | os.PathLike[str], *, read_only: bool = False, **overrides: Any) -> Collection:
    """Open an existing workspace folder (its database migrated to the current schema).

    Args:
        workspace: the workspace folder.
        read_only: open the catalog for reading only (SQLite ``mode=ro``): works on a workspace you may not
            write to (another user's, a read-only mount); leaderboards, stats, CSV and exports elsewhere work,
            and every write (a vote, a scan, a status) raises :class:`~imagerank.errors.DatabaseReadOnlyError`.
            The schema is not migrated then: a catalog written by an older imagerank must be opened writable once.
        **overrides: :class:`~imagerank.config.Settings` fields for this process.

    Raises:
        WorkspaceNotFoundError: no ``imagerank.db`` / ``imagerank.toml`` there.
        DatabaseReadOnlyError: the catalog cannot be written (with ``read_only``: it needs migrating, or
            cannot be read without writing its ``-shm`` file).
        StorageError: the disk is full or failing (SQLite's reason in the message).
    """
    return Collection(Catalog.open(workspace, read_only=read_only, **overrides))
