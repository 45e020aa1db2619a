"""Lightning DataModules: judgements over feature vectors (ranker) and images with boxes (crop proposer).

Both are seeded and their ``setup`` is idempotent: a second call (Lightning calls it once per stage) keeps the
split drawn by the first.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import InvalidArgumentError, NoVotesError
from .data import Split, VoteData, split_votes
from .features import FeatureMatrix

__all__ = ["CropDataModule", "CropDataset", "MatchDataset", "PreferenceDataModule", "pad_matches"]


def _identity(batch: Any) -> Any:
    return batch


def pad_matches(rows: list[int], votes: VoteData, features: FeatureMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Matches as padded arrays of feature-row indices and ranks.

    Returns:
        idx: (M, K) int64 rows into ``features.X``, -1 where padded (K = the largest match).
        rank: (M, K) int64 ranks, 0 where padded.
    """
    if not rows:
        return np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64)
    k = max(len(votes.entries[r]) for r in rows)
    idx = np.full((len(rows), k), -1, np.int64)
    rank = np.zeros((len(rows), k), np.int64)
    for m, r in enumerate(rows):
        e = features.rows(votes.entries[r])
        idx[m, : len(e)] = e
        rank[m, : len(e)] = votes.ranks[r]
    return idx, rank


class MatchDataset(Dataset):
    """Judgements as a map-style dataset that fetches whole batches at once (``__getitems__``).

    A batch is a dict: ``x`` (B, K, D) float32 features, ``rank`` (B, K) int64, ``mask`` (B, K) bool.
    """

    def __init__(self, X: torch.Tensor, idx: np.ndarray, rank: np.ndarray) -> None:
        self.X = X
        self.idx = torch.as_tensor(idx, dtype=torch.long)
        self.rank = torch.as_tensor(rank, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.idx.shape[0])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        sel = torch.as_tensor(indices, dtype=torch.long)
        idx = self.idx[sel]
        mask = idx >= 0
        return {"x": self.X[idx.clamp(min=0)], "rank": self.rank[sel], "mask": mask}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class PreferenceDataModule(L.LightningDataModule):
    """Judgements from the vote log over feature vectors, split by match (and cold images) with a fixed seed.

    Args:
        features: the feature vectors (:func:`imagerank.training.features.feature_matrix`).
        votes: the judgements (:func:`imagerank.training.data.load_votes`).
        val_fraction, cold_fraction, seed: see :func:`imagerank.training.data.split_votes`.
        batch_size: judgements per batch.

    After :meth:`setup` (or :meth:`prepare_split`): ``split`` (:class:`~imagerank.training.data.Split`, rows of
    ``votes``), ``train_set``, ``val_set``, ``cold_set`` (:class:`MatchDataset`), ``n_without_features``
    (judgements dropped because an image has no feature vector).

    Raises (from setup):
        NoVotesError: no training judgement says which image is better.
    """

    def __init__(
        self,
        features: FeatureMatrix,
        votes: VoteData,
        *,
        val_fraction: float = 0.2,
        cold_fraction: float = 0.0,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        super().__init__()
        self.features = features
        self.votes = votes
        self.val_fraction = val_fraction
        self.cold_fraction = cold_fraction
        self.seed = seed
        self.batch_size = batch_size
        self.split: Split | None = None
        self.n_without_features = 0

    def setup(self, stage: str | None = None) -> None:
        self.prepare_split()

    def prepare_split(self) -> Split:
        """Drop judgements without features, split the rest and build the datasets (once; later calls return the
        same split).

        Returns:
            The :class:`~imagerank.training.data.Split` (rows of ``self.votes``, the judgements kept).

        Raises:
            NoVotesError: no judgement has features for all its images, or no training judgement is decided.
        """
        if self.split is not None:
            return self.split
        ok = [r for r in range(len(self.votes)) if (self.features.rows(self.votes.entries[r]) >= 0).all()]
        self.n_without_features = len(self.votes) - len(ok)
        if not ok:
            raise NoVotesError(
                f"none of the {len(self.votes)} judgements has feature vectors for all its images "
                f"(feature set {self.features.name!r} covers {len(self.features.image_ids)} images)"
            )
        votes = VoteData(self.votes.match_ids[ok], [self.votes.entries[r] for r in ok],
                         [self.votes.ranks[r] for r in ok], self.votes.n_skips, self.votes.n_undone,
                         self.votes.n_draws, self.votes.n_tied_rankings)
        split = split_votes(votes, val_fraction=self.val_fraction, cold_fraction=self.cold_fraction, seed=self.seed)
        decisive = votes.decisive()
        if not decisive[split.train].any():
            raise NoVotesError(
                f"the training part of the split ({len(split.train)} of {len(votes)} judgements) has no decided "
                "match, only draws; vote for winners or lower val_fraction / cold_fraction"
            )
        X = torch.as_tensor(self.features.X, dtype=torch.float32)
        self.train_set = MatchDataset(X, *pad_matches(split.train.tolist(), votes, self.features))
        self.val_set = MatchDataset(X, *pad_matches(split.val.tolist(), votes, self.features))
        self.cold_set = MatchDataset(X, *pad_matches(split.cold.tolist(), votes, self.features))
        self.votes = votes
        self.split = split
        return split

    def _loader(self, ds: MatchDataset, shuffle: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, generator=gen, collate_fn=_identity,
                          num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.cold_set, False)


class CropDataset(Dataset):
    """Images with target boxes.

    Items: dict ``image`` (3, S, S) float32 in [0, 1], ``box`` (4,) float32 normalised ``x1, y1, x2, y2``.
    With ``flip`` a random half of the items are mirrored left-right (box mirrored too), seeded per epoch by
    the DataLoader's generator.
    """

    def __init__(self, images: np.ndarray, boxes_xywh: np.ndarray, *, flip: bool = False) -> None:
        self.images = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2)  # (N, 3, S, S) uint8
        b = torch.as_tensor(boxes_xywh, dtype=torch.float32)
        self.boxes = torch.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], dim=1)
        self.flip = flip

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = self.images[i].float() / 255.0
        box = self.boxes[i].clone()
        if self.flip and torch.rand(()) < 0.5:
            img = img.flip(-1)
            box = torch.stack([1 - box[2], box[1], 1 - box[0], box[3]])
        return {"image": img, "box": box}


class CropDataModule(L.LightningDataModule):
    """Square images (N, S, S, 3) uint8 and their ideal crops (N, 4) normalised ``x, y, w, h``, split by image.

    Args:
        images, boxes: the data (see :func:`imagerank.training.crops.crop_arrays` for a collection's crops).
        val_fraction: share of images held out (fixed ``seed``).
        flip: mirror training images at random (augmentation).

    Raises:
        InvalidArgumentError: images and boxes differ in length, or val_fraction is outside [0, 1).
    """

    def __init__(self, images: np.ndarray, boxes: np.ndarray, *, val_fraction: float = 0.2, seed: int = 0,
                 batch_size: int = 32, flip: bool = True) -> None:
        super().__init__()
        if len(images) != len(boxes):
            raise InvalidArgumentError(f"images and boxes: expected equal lengths, got {len(images)} and {len(boxes)}")
        if not 0.0 <= val_fraction < 1.0:
            raise InvalidArgumentError(f"val_fraction: expected a fraction in [0, 1), got {val_fraction!r}")
        self.images = images
        self.boxes = np.asarray(boxes, np.float32)
        self.val_fraction = val_fraction
        self.seed = seed
        self.batch_size = batch_size
        self.flip = flip
        self.train_idx = self.val_idx = np.zeros(0, np.int64)
        self._ready = False

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        perm = np.random.default_rng(self.seed).permutation(len(self.images))
        n_val = round(self.val_fraction * len(perm))
        self.val_idx, self.train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        self.train_set = CropDataset(self.images[self.train_idx], self.boxes[self.train_idx], flip=self.flip)
        self.val_set = CropDataset(self.images[self.val_idx], self.boxes[self.val_idx])
        self._ready = True

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)
