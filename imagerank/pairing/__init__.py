"""Pairing (floor 2): the strategy registry (``random``, ``spec``, ``active``), the pool of active images kept
current by the vote log, and the :class:`PairQueue` that every panel draws its pairs from."""

from ..catalog.votes import pair_key, pair_keys
from .active import active_pairs
from .pool import PairContext, Pool, PoolCache
from .queue import OUTCOMES, Pair, PairQueue, Undone
from .registry import Strategy, get_strategy, list_strategies, next_pairs, register_strategy, select_pairs
from .strategies import random_pairs, spec_pairs, weighted_choice

__all__ = [
    "OUTCOMES",
    "Pair",
    "PairContext",
    "PairQueue",
    "Pool",
    "PoolCache",
    "Strategy",
    "Undone",
    "active_pairs",
    "get_strategy",
    "list_strategies",
    "next_pairs",
    "pair_key",
    "pair_keys",
    "random_pairs",
    "register_strategy",
    "select_pairs",
    "spec_pairs",
    "weighted_choice",
]
