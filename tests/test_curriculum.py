"""Curriculum generator: registry, top-N with deterministic ties, the random strategy."""

from __future__ import annotations

import pytest

from edco import curriculum
from edco.curriculum import RoundContext, Selection, Strategy, register, top_n
from edco.errors import UserFacingError

POOL = [{"id": f"s{i}", "question": f"q{i}"} for i in range(50)]


def test_top_n_descending_with_hash_ties():
    scores = {"a": 1.0, "b": 3.0, "c": 2.0, "d": 2.0}
    ranked = top_n(scores, 3)
    assert ranked[0] == "b"
    # c and d tie: the order is fixed by the id hash, not by dict order
    tied = sorted(["c", "d"], key=curriculum.tie_break_key)
    assert ranked[1:] == tied
    assert top_n(dict(reversed(list(scores.items()))), 3) == ranked


def test_random_strategy_is_seeded_per_round():
    cls = curriculum.get_strategy("random")
    strategy = cls(POOL, {}, seed=0)
    first = strategy.select(RoundContext(round=1, n=10, seed=0, config={})).ids
    again = cls(POOL, {}, seed=0).select(RoundContext(round=1, n=10, seed=0, config={})).ids
    second = strategy.select(RoundContext(round=2, n=10, seed=0, config={})).ids
    other_seed = cls(POOL, {}, seed=1).select(RoundContext(round=1, n=10, seed=1, config={})).ids
    assert first == again
    assert first != second and first != other_seed
    assert len(set(first)) == 10 and set(first) <= {r["id"] for r in POOL}


def test_unknown_strategy_lists_the_registered_ones():
    with pytest.raises(UserFacingError, match=r"unknown strategy 'nope'; registered: .*random"):
        curriculum.get_strategy("nope")


def test_a_baseline_registers_with_one_decorator():
    @register("test_last_n")
    class LastN(Strategy):
        def select(self, ctx):
            return Selection(ids=[r["id"] for r in self.pool][-ctx.n:])

    assert curriculum.get_strategy("test_last_n") is LastN
    assert "test_last_n" in curriculum.available_strategies()
    picked = LastN(POOL, {}, 0).select(RoundContext(round=1, n=2, seed=0, config={}))
    assert picked.ids == ["s48", "s49"]


def test_budget_larger_than_pool_is_refused():
    with pytest.raises(UserFacingError, match="curriculum.n: 60 is larger than the training pool"):
        curriculum.check_budget(60, len(POOL), "domain 'law'")


@pytest.mark.parametrize("name, kind", [("edco", "prefix"), ("edco_full", "full")])
def test_edco_rescores_each_round_and_takes_top_n(monkeypatch, name, kind):
    calls = []

    def fake_score_pool(model, tokenizer, records, cfg, kind, seed, progress=True):
        calls.append((model, kind, seed))
        # the "model" is a round number here: scores shift with it, as a trained model's would
        return [{"id": r["id"], "score": (int(r["id"][1:]) * 7 + model * 13) % 50, "n_tokens": 3, "seconds": 0.0}
                for r in records]

    import edco.estimator

    monkeypatch.setattr(edco.estimator, "score_pool", fake_score_pool)
    strategy = curriculum.get_strategy(name)(POOL, {"estimator": {}}, seed=2)
    picks = [strategy.select(RoundContext(round=r, n=5, seed=2, config={}, model=r)) for r in (1, 2)]
    assert [c[1] for c in calls] == [kind, kind]
    assert calls[0][2] != calls[1][2]  # a fresh sampling seed per round
    for r, pick in zip((1, 2), picks):
        expected = sorted(POOL, key=lambda s: -((int(s["id"][1:]) * 7 + r * 13) % 50))[:5]
        assert pick.ids == [s["id"] for s in expected]  # scores are distinct: no ties here
        assert len(pick.scores) == len(POOL)
        assert pick.tokens_generated == 3 * len(POOL)
    assert picks[0].ids != picks[1].ids


def test_static_difficulty_scores_once_and_walks_easy_to_hard(monkeypatch):
    import edco.estimator

    calls = []

    def fake_score_pool(model, tokenizer, records, cfg, kind, seed, progress=True):
        calls.append(kind)
        return [{"id": r["id"], "score": float(int(r["id"][1:])), "n_tokens": 1, "seconds": 0.0} for r in records]

    monkeypatch.setattr(edco.estimator, "score_pool", fake_score_pool)
    config = {"estimator": {}, "curriculum": {"rounds": 3, "n": 10, "order": "easy_to_hard"}}
    strategy = curriculum.get_strategy("static_difficulty")(POOL, config, seed=0)
    rounds = [strategy.select(RoundContext(round=r, n=10, seed=0, config=config)) for r in (1, 2, 3)]
    assert calls == ["perplexity"]  # scored once, with the base model of round 1
    # 50 samples ranked by perplexity s0 < s1 < ...; windows start at 0, 20, 40
    assert rounds[0].ids == [f"s{i}" for i in range(0, 10)]
    assert rounds[1].ids == [f"s{i}" for i in range(20, 30)]
    assert rounds[2].ids == [f"s{i}" for i in range(40, 50)]
    assert len(rounds[0].scores) == 50 and rounds[1].scores == {}

    # resumed at round 3: takes round 1's saved scores instead of scoring a trained model
    resumed = curriculum.get_strategy("static_difficulty")(POOL, config, seed=0)
    previous = [Selection(ids=rounds[0].ids, scores=rounds[0].scores), Selection(ids=rounds[1].ids)]
    assert resumed.select(RoundContext(round=3, n=10, seed=0, config=config, previous=previous)).ids == rounds[2].ids
    assert calls == ["perplexity"]

    config["curriculum"]["order"] = "hard_to_easy"
    hard_first = curriculum.get_strategy("static_difficulty")(POOL, config, seed=0)
    assert hard_first.select(RoundContext(round=1, n=10, seed=0, config=config)).ids == [f"s{i}" for i in range(49, 39, -1)]
