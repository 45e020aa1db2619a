"""Pairing (floor 2): the strategy registry (``random``, ``spec``, ``active``), the pool of active images kept
current by the vote log, best-of-N groups (:mod:`.groups`), and the :class:`PairQueue` that every panel draws its
pairs from."""

from ..catalog.votes import pair_key, pair_keys
from .active import active_pairs
from .groups import GROUP_SIZES, best_of_ranks, next_group, select_group
from .pool import PairContext, Pool, PoolCache
from .queue import OUTCOMES, Pair, PairQueue, Undone
from .registry import Strategy, get_strategy, list_strategies, next_pairs, register_strategy, select_pairs
from .strategies import random_pairs, spec_pairs, weighted_choice

__all__ = [
    "GROUP_SIZES",
    "OUTCOMES",
    "Pair",
    "PairContext",
    "PairQueue",
    "Pool",
    "PoolCache",
    "Strategy",
    "Undone",
    "active_pairs",
    "best_of_ranks",
    "get_strategy",
    "list_strategies",
    "next_group",
    "next_pairs",
    "pair_key",
    "pair_keys",
    "random_pairs",
    "register_strategy",
    "select_group",
    "select_pairs",
    "spec_pairs",
    "weighted_choice",
]
