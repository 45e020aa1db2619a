"""Pairing (floor 2): the strategy registry (``random``, ``spec``, ``active``), the pool of active images kept
current by the vote log, best-of-N groups (:mod:`.groups`), the :class:`PairQueue` that every panel draws its
pairs from and the :class:`RoundQueue` of the compare panel's best-of-N mode."""

from ..catalog.votes import pair_key, pair_keys
from .active import active_pairs
from .groups import GROUP_SIZES, best_of_ranks, next_group, select_group
from .pool import PairContext, Pool, PoolCache
from .queue import OUTCOMES, Pair, PairQueue, Undone
from .registry import Strategy, get_strategy, list_strategies, next_pairs, register_strategy, select_pairs
from .rounds import ROUND_DEPTH_MAX, Round, RoundQueue, UndoneRound
from .strategies import random_pairs, spec_pairs, weighted_choice

__all__ = [
    "GROUP_SIZES",
    "OUTCOMES",
    "ROUND_DEPTH_MAX",
    "Pair",
    "PairContext",
    "PairQueue",
    "Pool",
    "PoolCache",
    "Round",
    "RoundQueue",
    "Strategy",
    "Undone",
    "UndoneRound",
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
