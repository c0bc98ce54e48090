"""Curriculum generator (paper component 2): which samples a round trains on, in what order.

A *strategy* is one class in ``baselines/<name>.py`` decorated with ``@register("<name>")``.
Each round the trainer builds a ``RoundContext`` (the current model, the round number, the
budget N) and asks the strategy for a ``Selection``: the ids to train on, in training order,
plus the scores it used. EDCO's own rule (re-score the pool with the current model, take the
top-N, train in descending score order; DESIGN §1.2) is ``top_n`` below, used by
``baselines/edco.py``; nothing else re-implements it.

A new baseline is one file in ``baselines/`` (see README, "Add a baseline"): every module of
that package is imported on first lookup, so registering is all it takes.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import pkgutil
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from edco.errors import UserFacingError

log = logging.getLogger("edco.curriculum")

_REGISTRY: dict[str, type["Strategy"]] = {}


@dataclass
class RoundContext:
    """What a strategy may look at when it picks round ``round`` (1-based).

    ``previous[i]`` and ``feedback[i]`` describe round ``i + 1``: its selection (ids in
    order, the scores it wrote) and what ``Strategy.update`` received after training it
    (``{"round", "steps"}``, the per-step trainer logs). The trainer reads both back from
    disk each round, so a resumed run hands a strategy the same history as an unbroken one.
    """

    round: int
    n: int
    seed: int
    config: dict
    rounds: int = 0  # rounds of this run (edco.config.round_budget); 0 = curriculum.rounds
    model: Any = None
    tokenizer: Any = None
    previous: list["Selection"] = field(default_factory=list)
    feedback: list[dict] = field(default_factory=list)


@dataclass
class Selection:
    """A round's curriculum: ``ids`` in training order; ``scores`` id -> score (may be empty)."""

    ids: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    tokens_generated: int = 0


class Strategy:
    """Base class. ``pool`` is the domain's training split (never the test split)."""

    name = "base"
    #: True when ``select`` scores the pool with the current model (the expensive part).
    scores_with_model = False

    def __init__(self, pool: list[dict], config: dict, seed: int):
        self.pool = pool
        self.by_id = {r["id"]: r for r in pool}
        self.config = config
        self.seed = seed

    def select(self, ctx: RoundContext) -> Selection:
        raise NotImplementedError

    def update(self, round_metrics: dict) -> None:
        """Feedback after a round was trained (e.g. for bandits); default: nothing."""


def register(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: make a strategy available to configs under ``name``."""

    def wrap(cls: type[Strategy]) -> type[Strategy]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"strategy {name!r} registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _import_baselines() -> None:
    package = importlib.import_module("baselines")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"baselines.{info.name}")


def available_strategies() -> list[str]:
    _import_baselines()
    return sorted(_REGISTRY)


def get_strategy(name: str) -> type[Strategy]:
    """The registered strategy class; an unknown name lists the known ones."""
    if name not in _REGISTRY:
        _import_baselines()
    if name not in _REGISTRY:
        raise UserFacingError(
            f"grid.strategies: unknown strategy {name!r}; registered: {', '.join(available_strategies())} "
            f"(a new one is a file in baselines/ with @register({name!r}))"
        )
    return _REGISTRY[name]


def tie_break_key(sample_id: str) -> str:
    """Deterministic, order-free tie breaker: the id's hash (DESIGN §1.2)."""
    return hashlib.sha256(sample_id.encode()).hexdigest()


def top_n(scores: dict[str, float], n: int) -> list[str]:
    """The ``n`` highest-scoring ids in descending score order, ties broken by id hash."""
    ranked = sorted(scores, key=lambda i: (-scores[i], tie_break_key(i)))
    return ranked[:n]


def jaccard(a, b) -> float:
    """|A & B| / |A | B| of two id collections (1.0 for two empty ones)."""
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


class EntropyTopN(Strategy):
    """EDCO's rule: each round the current model re-scores the whole pool with estimator
    ``estimator_kind`` (inference entropy; ``perplexity`` for its cheap twin); the round trains
    on the top-N, highest score (most uncertain) first.

    Two cheaper variants hook in here, both off by default (the paper's rule):
    ``rescore_fraction() < 1`` re-scores only a seeded random subset of the pool each round
    (plus any id without a score yet, so round 1 scores everything) and carries every other
    id's latest score over from the previous round; ``stop_overlap()`` = t stops re-scoring
    once the last two selections overlap (Jaccard) >= t, after which the last scores, and so
    the last selection, are reused. Both read only ``ctx.previous``, so they resume exactly.
    A round's ``scores`` is always the full table (fresh and carried), which is what the next
    round carries from.
    """

    scores_with_model = True
    estimator_kind = "prefix"

    def rescore_fraction(self) -> float:
        """Fraction of the pool re-scored per round; 1.0 (the paper) = all of it."""
        return 1.0

    def stop_overlap(self) -> float | None:
        """Jaccard overlap of the last two selections that stops re-scoring; None (the paper) = never."""
        return None

    def select(self, ctx: RoundContext) -> Selection:
        from edco.estimator import score_pool

        last = dict(ctx.previous[-1].scores) if ctx.previous else {}
        threshold = self.stop_overlap()
        if threshold is not None and len(ctx.previous) >= 2 and len(last) == len(self.pool):
            overlap = jaccard(ctx.previous[-1].ids, ctx.previous[-2].ids)
            if overlap >= threshold:
                log.info("round %d: selections of rounds %d and %d overlap %.3f >= %.3f; not re-scoring",
                         ctx.round, ctx.round - 2, ctx.round - 1, overlap, threshold)
                return Selection(ids=top_n(last, ctx.n), scores=last)
        due = self.rescore_ids(ctx, last)
        records = [r for r in self.pool if r["id"] in due]
        rows = score_pool(ctx.model, ctx.tokenizer, records, self.config["estimator"], self.estimator_kind,
                          seed=ctx.seed * 1000 + ctx.round)
        fresh = {row["id"]: row["score"] for row in rows}
        if len(fresh) < len(self.pool):
            log.info("round %d: re-scored %d of %d samples, %d scores carried over",
                     ctx.round, len(fresh), len(self.pool), len(self.pool) - len(fresh))
        scores = {r["id"]: fresh[r["id"]] if r["id"] in fresh else last[r["id"]] for r in self.pool}
        return Selection(ids=top_n(scores, ctx.n), scores=scores,
                         tokens_generated=sum(row["n_tokens"] for row in rows))

    def rescore_ids(self, ctx: RoundContext, last: dict[str, float]) -> set[str]:
        """Ids to score this round: all of them (the paper), or ``rescore_fraction`` of the
        pool drawn with a (seed, round) generator plus every id ``last`` has no score for."""
        fraction = self.rescore_fraction()
        if fraction >= 1.0 or not last:
            return set(self.by_id)
        k = math.ceil(fraction * len(self.pool))
        drawn = random.Random(f"rescore-{ctx.seed}-{ctx.round}").sample(sorted(self.by_id), k)
        return set(drawn) | {i for i in self.by_id if i not in last}


def check_budget(n: int, pool_size: int, where: str) -> None:
    if n > pool_size:
        raise UserFacingError(
            f"curriculum.n: {n} is larger than the training pool of {where} ({pool_size} samples); "
            f"lower curriculum.n or enlarge the pool"
        )
