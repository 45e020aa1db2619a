"""The registry of per-image features: name -> :class:`~imagerank.features.spec.FeatureSpec`.

Each feature module declares its spec next to its code (``HASHES`` in :mod:`.hashing`, ``QUALITY`` in
:mod:`.quality`, ``EXIF`` in :mod:`.exif`, ``CHEAP`` in :mod:`.cheap`); :data:`FEATURES` lists them explicitly.
Importing this module registers nothing and mutates nothing: to add a feature, write its module and add its spec to
the tuple below. Everything else reads the specs from here: the feature pass (extractors, metadata, write hooks),
:class:`~imagerank.features.sidecar.Sidecar` (schemas) and ``features_frame`` (read hooks).

Tests and notebooks can try a feature without editing this file: ``monkeypatch.setitem(registry.FEATURES, name,
spec)``, or hand the spec itself to ``compute_features(features=(spec,))``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidArgumentError
from ..media import Extractor
from .cheap import CHEAP
from .exif import EXIF
from .hashing import HASHES
from .quality import QUALITY
from .spec import FeatureSpec

__all__ = ["FEATURES", "extractors_for", "get_feature", "list_features"]

#: Every registered feature by name, in listing order.
FEATURES: dict[str, FeatureSpec] = {spec.name: spec for spec in (HASHES, QUALITY, EXIF, CHEAP)}


def get_feature(name: str) -> FeatureSpec:
    """The spec of the registered feature ``name``.

    Raises:
        InvalidArgumentError: no feature of that name (the message lists the known ones; a ValueError).
    """
    spec = FEATURES.get(name)
    if spec is None:
        raise InvalidArgumentError(f"unknown feature {name!r}; registered: {', '.join(FEATURES)}")
    return spec


def list_features() -> tuple[FeatureSpec, ...]:
    """Every registered feature's spec, in registration order."""
    return tuple(FEATURES.values())


def extractors_for(names: Iterable[str]) -> dict[str, Extractor]:
    """name -> extractor for the registered ``names`` that have one (other names are left out: the decode pass
    records them as failures "no extractor named ...")."""
    out: dict[str, Extractor] = {}
    for n in names:
        spec = FEATURES.get(n)
        if spec is not None and spec.extractor is not None:
            out[n] = spec.extractor
    return out
