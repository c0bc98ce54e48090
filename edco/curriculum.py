"""Curriculum generator (paper component 2): which samples a round trains on, in what order.

A *strategy* is one class in ``baselines/<name>.py`` decorated with ``@register("<name>")``.
Each round the trainer builds a ``RoundContext`` (the current model, the round number, the
budget N, the scorer) and asks the strategy for a ``Selection``: the ids to train on, in
training order, plus the scores it used. EDCO's own rule (re-score the pool with the current
model, take the top-N, train in descending score order; docs/design.md#curriculum-generator) is ``top_n`` below,
used by ``baselines/edco.py``; nothing else re-implements it.

A new baseline is one file in ``baselines/`` (README, "Add a baseline"). ``get_strategy(name)``
imports ``baselines/<name>.py`` first and scans the other files only if that does not
register the name; a file that fails to import breaks only itself, and the error names it.
A strategy declares its options (``Strategy.options``: JSON-schema properties, each with a
description and a default); their values live in the config under
``strategy_options.<name>`` and are validated and filled here. It also declares its cost
(``Strategy.cost`` -> ``Cost``: what it scores the pool with, how often, how much of it, and
its training budget relative to the paradigm's): the resource planner, the GPU check and the
trainer's budget (``Strategy.training_config``) all read that declaration, so a new strategy
is planned and checked from its own file.

This module imports nothing heavy (no torch): the scorer (``edco.estimator.score_pool``)
reaches a strategy through ``RoundContext.scorer``, so the workflow and ``python -m edco
strategies`` can look strategies up cheaply.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jsonschema

from edco.errors import UserFacingError

log = logging.getLogger("edco.curriculum")

BASELINES = "baselines"
_REGISTRY: dict[str, type["Strategy"]] = {}
_BROKEN: dict[str, str] = {}  # baseline file -> why it failed to import


@dataclass
class RoundContext:
    """What a strategy may look at when it picks round ``round`` (1-based).

    ``previous[i]`` and ``feedback[i]`` describe round ``i + 1``: its selection (ids in
    order, the scores it wrote) and what ``Strategy.update`` received after training it
    (``{"round", "steps"}``, the per-step trainer logs). The trainer reads both back from
    disk each round, so a resumed run hands a strategy the same history as an unbroken one.
    ``scorer`` is ``edco.estimator.score_pool`` (the trainer passes it; tests pass a fake).
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
    scorer: Callable | None = None


@dataclass
class Selection:
    """A round's curriculum: ``ids`` in training order; ``scores`` id -> score (may be empty)."""

    ids: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    tokens_generated: int = 0


# The paradigm setting that sets a round's optimiser steps: what a strategy's training_ratio scales.
STEP_KEYS = {"sft": "num_train_epochs", "rl": "max_steps"}
# How often a strategy scores the pool: every round, or once (round 1, the base model).
WHEN = ("each", "once")


@dataclass(frozen=True)
class Cost:
    """What a strategy costs besides the paradigm's training, as the strategy declares it
    (``Strategy.cost``); the planner, the GPU check and the trainer read it from there.

    ``scores_with``: the estimator kind it scores the pool with (prefix, full, perplexity,
    teacher_forced: ``edco.estimator``), None = no model call. ``when``: "each" round or "once"
    (round 1). ``fraction``: the share of the pool scored in each round after the first (round 1
    scores all of it; ``ceil(fraction x pool)`` samples). ``training_ratio``: paradigm -> optimiser
    steps relative to the paradigm's (``STEP_KEYS``; absent = 1). ``bound``: when the scoring
    figures are an upper bound, why (the planner prints it)."""

    scores_with: str | None = None
    when: str = "each"
    fraction: float = 1.0
    training_ratio: dict[str, float] = field(default_factory=dict)
    bound: str = ""

    def __post_init__(self):
        if self.when not in WHEN or not 0 < self.fraction <= 1 or any(r <= 0 for r in self.training_ratio.values()):
            raise ValueError(f"Cost: when in {WHEN}, 0 < fraction <= 1, training ratios > 0; got {self}")

    def scored_samples(self, pool: int, rounds: int) -> int:
        """Samples scored by a run of ``rounds`` rounds over a pool of ``pool``."""
        if self.scores_with is None:
            return 0
        return pool if self.when == "once" else pool + (rounds - 1) * math.ceil(self.fraction * pool)

    def ratio(self, paradigm: str) -> float:
        return self.training_ratio.get(paradigm, 1.0)

    def describe(self) -> str:
        """One line for ``python -m edco strategies``."""
        if self.scores_with is None:
            scoring = "no model call"
        else:
            share = "" if self.fraction == 1 else f" (round 1 all of it, then {self.fraction:g} of it)"
            when = "each round" if self.when == "each" else "once"
            scoring = f"scores the pool with {self.scores_with} {when}{share}"
        steps = "; ".join(f"{r:g}x the {STEP_KEYS[p]} of {p}" for p, r in self.training_ratio.items() if r != 1)
        bound = f" (upper bound: {self.bound})" if self.bound else ""
        return f"{scoring}; trains {steps or 'with the paradigm budget'}{bound}"


def trained_section(cost: Cost, paradigm: str, section: dict) -> dict:
    """The ``sft`` / ``rl`` section a strategy of ``cost`` trains with: the paradigm's, its
    ``STEP_KEYS`` setting times the strategy's training ratio (rounded, at least 1)."""
    ratio = cost.ratio(paradigm)
    if ratio == 1:
        return section
    key = STEP_KEYS[paradigm]
    return {**section, key: max(1, round(section[key] * ratio))}


class Strategy:
    """Base class. ``pool`` is the domain's training split (never the test split)."""

    name = "base"
    #: One line for ``python -m edco strategies``.
    description = ""
    #: The strategy's options: JSON-schema properties, each with ``description`` and ``default``.
    #: Values come from ``strategy_options.<name>`` in the config (``self.opts``, filled).
    options: dict[str, dict] = {}

    def __init__(self, pool: list[dict], config: dict, seed: int):
        self.pool = pool
        self.by_id = {r["id"]: r for r in pool}
        self.config = config
        self.seed = seed
        self.opts = strategy_options(config, self.name)

    def select(self, ctx: RoundContext) -> Selection:
        raise NotImplementedError

    def update(self, round_metrics: dict) -> None:
        """Feedback after a round was trained (e.g. for bandits); default: nothing."""

    @classmethod
    def cost(cls, opts: dict) -> Cost:
        """What this strategy costs with options ``opts`` (filled): by default no model call and
        the paradigm's budget. A strategy that scores with the model, or trains longer, says so
        here, in its own file; ``strategy_cost`` is how others ask."""
        return Cost()

    def training_config(self, paradigm: str, cfg: dict) -> dict:
        """The trainer settings (the ``sft`` / ``rl`` section) this strategy's rounds train with:
        the paradigm's budget scaled by the declared training ratio. Every strategy keeps the
        paradigm's budget (docs/design.md#strategies-and-the-budget); only a compute-matched reference (``random_matched``)
        declares another, on purpose, and the cost table says so."""
        return trained_section(self.cost(self.opts), paradigm, cfg)

    def score(self, ctx: RoundContext, records: list[dict], kind: str, seed: int) -> tuple[dict[str, float], int]:
        """(id -> score, tokens generated) of ``records`` by estimator ``kind`` with the
        round's model."""
        if ctx.scorer is None:
            raise UserFacingError(f"strategy {self.name!r} scores with the model, but the round has no scorer "
                                  f"(RoundContext.scorer; the trainer passes edco.estimator.score_pool)")
        rows = ctx.scorer(ctx.model, ctx.tokenizer, records, self.config["estimator"], kind, seed)
        return {row["id"]: row["score"] for row in rows}, sum(row["n_tokens"] for row in rows)

    def base_model_perplexity(self, ctx: RoundContext) -> tuple[dict[str, float], int]:
        """The *base* model's perplexity of every reference answer, scored once: in round 1
        with the model in hand (the base model), or, in a resumed run, read back from round
        1's saved scores, since the model in hand is then a later round's and must not score.
        Returns (scores, tokens generated now: 0 when read back)."""
        if not ctx.previous:
            return self.score(ctx, self.pool, "perplexity", seed=ctx.seed)
        saved = ctx.previous[0].scores
        if set(saved) != set(self.by_id):
            raise UserFacingError(f"{self.name}: round 1's scores.parquet does not hold the base model's perplexity "
                                  f"of every sample; delete this run's directory and rerun it")
        return dict(saved), 0


# --------------------------------------------------------------------------- registry
def register(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: make a strategy available to configs under ``name``."""

    def wrap(cls: type[Strategy]) -> type[Strategy]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"strategy {name!r} registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
        if not cls.description or "\n" in cls.description:
            raise ValueError(f"strategy {name!r}: give the class a one-line `description` (python -m edco strategies)")
        for option, spec in cls.options.items():
            if "description" not in spec or "default" not in spec:
                raise ValueError(f"strategy {name!r}: option {option!r} needs a description and a default")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _baseline_files() -> dict[str, Path]:
    """Module name -> file of every ``baselines/*.py`` (every directory of the package path)."""
    package = importlib.import_module(BASELINES)
    files: dict[str, Path] = {}
    for directory in package.__path__:
        for path in sorted(Path(directory).glob("*.py")):
            if not path.name.startswith("_"):
                files.setdefault(path.stem, path)
    return files


def _import_baseline(module: str, path: Path) -> None:
    """Import one baseline file; a failure is recorded against the file, not raised."""
    try:
        importlib.import_module(f"{BASELINES}.{module}")
        _BROKEN.pop(str(path), None)
    except Exception as exc:  # any error in a user's file: it breaks only its own strategies
        _BROKEN[str(path)] = f"{type(exc).__name__}: {exc}"


def _import_all() -> None:
    for module, path in _baseline_files().items():
        _import_baseline(module, path)


def available_strategies() -> list[str]:
    """Every registered strategy (all baseline files imported; broken ones skipped)."""
    _import_all()
    return sorted(_REGISTRY)


def broken_baselines() -> dict[str, str]:
    """Baseline files that failed to import -> why (after ``available_strategies``)."""
    return dict(_BROKEN)


def get_strategy(name: str) -> type[Strategy]:
    """The registered strategy class. ``baselines/<name>.py`` is imported first; the other
    files only if that does not register ``name``. An unknown name lists the known ones; a
    name whose file fails to import names the file and the error."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    files = _baseline_files()
    if name in files:
        _import_baseline(name, files[name])
    if name not in _REGISTRY:
        _import_all()
    if name in _REGISTRY:
        return _REGISTRY[name]
    own = str(files[name]) if name in files else None
    if own in _BROKEN:
        raise UserFacingError(f"strategy {name!r}: {own} failed to import: {_BROKEN[own]}")
    broken = "".join(f"; {path} failed to import ({why})" for path, why in _BROKEN.items())
    raise UserFacingError(
        f"grid.strategies: unknown strategy {name!r}; registered: {', '.join(sorted(_REGISTRY))} "
        f"(a new one is a file in baselines/ with @register({name!r})){broken}"
    )


# --------------------------------------------------------------------------- options
def strategy_options(config: dict, name: str) -> dict:
    """The options of strategy ``name``: ``strategy_options.<name>`` of the config validated
    against the options the strategy declares, with their defaults filled. A bad value stops
    with one line naming ``strategy_options.<name>.<option>``."""
    declared = get_strategy(name).options
    given = config["strategy_options"][name] if name in config["strategy_options"] else {}
    key = f"strategy_options.{name}"
    if not isinstance(given, dict):
        raise UserFacingError(f"{key}: expected a mapping of options, got {type(given).__name__}")
    unknown = sorted(set(given) - set(declared), key=str)
    if unknown:
        allowed = f"its options: {', '.join(sorted(declared))}" if declared else "it has no options"
        raise UserFacingError(f"{key}.{unknown[0]}: unknown option of strategy {name!r} ({allowed})")
    for option, value in given.items():
        spec = {k: v for k, v in declared[option].items() if k not in ("description", "default")}
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(spec).iter_errors(value))
        if error is not None:
            raise UserFacingError(f"{key}.{option}: {error.message}")
    return {option: given[option] if option in given else spec["default"] for option, spec in declared.items()}


def strategy_cost(config: dict, name: str) -> Cost:
    """The declared cost of strategy ``name`` with the config's options for it."""
    return get_strategy(name).cost(strategy_options(config, name))


def check_strategies(config: dict, names: list[str] | None = None) -> None:
    """Strategies ``names`` (default: the grid's) exist and their options are valid, and every
    ``strategy_options`` and ``learning_rates`` entry names a strategy (a typo stops the run instead of being
    ignored). Called before work starts; a broken baseline file stops only the runs that use
    its strategies."""
    names = config["grid"]["strategies"] if names is None else names
    for name in names:
        strategy_options(config, name)
    files = _baseline_files()
    for section in ("strategy_options", "learning_rates"):
        for name in config[section]:
            if name not in names and name not in files and name not in available_strategies():
                raise UserFacingError(f"{section}.{name}: no such strategy; registered: "
                                      f"{', '.join(available_strategies())}")


# --------------------------------------------------------------------------- selection rules
def tie_break_key(sample_id: str) -> str:
    """Deterministic, order-free tie breaker: the id's hash (docs/design.md#curriculum-generator)."""
    return hashlib.sha256(sample_id.encode()).hexdigest()


def top_n(scores: dict[str, float], n: int) -> list[str]:
    """The ``n`` highest-scoring ids in descending score order, ties broken by id hash."""
    ranked = sorted(scores, key=lambda i: (-scores[i], tie_break_key(i)))
    return ranked[:n]


def bottom_n(scores: dict[str, float], n: int) -> list[str]:
    """The ``n`` lowest-scoring ids in ascending score order (``top_n``'s mirror, same tie-break)."""
    ranked = sorted(scores, key=lambda i: (scores[i], tie_break_key(i)))
    return ranked[:n]


def jaccard(a, b) -> float:
    """|A & B| / |A | B| of two id collections (1.0 for two empty ones)."""
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


class EntropyTopN(Strategy):
    """EDCO's rule: each round the current model re-scores the whole pool with estimator
    ``estimator_kind`` (inference entropy; ``perplexity`` for its cheap twin); the round trains
    on the top-N, highest score (most uncertain) first.

    Two cheaper variants hook in here, both off by default (the paper's rule): a declared
    ``Cost.fraction`` < 1 (``rescore_fraction()``) re-scores only a seeded random subset of the
    pool each round (plus any id without a score yet, so round 1 scores everything) and carries
    every other id's latest score over from the previous round; ``stop_overlap()`` = t stops re-scoring
    once the last two selections overlap (Jaccard) >= t, after which the last scores, and so
    the last selection, are reused. Both read only ``ctx.previous``, so they resume exactly.
    A round's ``scores`` is always the full table (fresh and carried), which is what the next
    round carries from.
    """

    estimator_kind = "prefix"

    def __init__(self, pool: list[dict], config: dict, seed: int):
        super().__init__(pool, config, seed)
        # A cheaper variant left at its defaults is the paper's rule: say so, it is easy to miss.
        if self.options and all(self.opts[k] == spec["default"] for k, spec in self.options.items()):
            log.warning("%s with its default options %s is the paper's rule (edco); set strategy_options.%s "
                        "(python -m edco strategies lists the options)", self.name, self.opts, self.name)

    @classmethod
    def cost(cls, opts: dict) -> Cost:
        return Cost(scores_with=cls.estimator_kind, when="each")

    def rescore_fraction(self) -> float:
        """Fraction of the pool re-scored per round, as the cost declares it; 1.0 (the paper) = all of it."""
        return self.cost(self.opts).fraction

    def stop_overlap(self) -> float | None:
        """Jaccard overlap of the last two selections that stops re-scoring; None (the paper) = never."""
        return None

    def select(self, ctx: RoundContext) -> Selection:
        last = dict(ctx.previous[-1].scores) if ctx.previous else {}
        threshold = self.stop_overlap()
        if threshold is not None and len(ctx.previous) >= 2 and len(last) == len(self.pool):
            overlap = jaccard(ctx.previous[-1].ids, ctx.previous[-2].ids)
            if overlap >= threshold:
                log.info("round %d: selections of rounds %d and %d overlap %.3f >= %.3f; not re-scoring",
                         ctx.round, ctx.round - 2, ctx.round - 1, overlap, threshold)
                return Selection(ids=self.pick(last, ctx.n), scores=last)
        due = self.rescore_ids(ctx, last)
        fresh, tokens = self.score(ctx, [r for r in self.pool if r["id"] in due], self.estimator_kind,
                                   seed=ctx.seed * 1000 + ctx.round)
        if len(fresh) < len(self.pool):
            log.info("round %d: re-scored %d of %d samples, %d scores carried over",
                     ctx.round, len(fresh), len(self.pool), len(self.pool) - len(fresh))
        scores = {r["id"]: fresh[r["id"]] if r["id"] in fresh else last[r["id"]] for r in self.pool}
        return Selection(ids=self.pick(scores, ctx.n), scores=scores, tokens_generated=tokens)

    def pick(self, scores: dict[str, float], n: int) -> list[str]:
        """The round's ids in training order: EDCO's top-N, most uncertain first."""
        return top_n(scores, n)

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
