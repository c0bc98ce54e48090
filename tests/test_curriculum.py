"""Curriculum generator: registry, top-N with deterministic ties, the random strategy."""

from __future__ import annotations

import pytest

from edco import curriculum
from edco.curriculum import RoundContext, Selection, Strategy, register, top_n
from edco.errors import UserFacingError

POOL = [{"id": f"s{i}", "question": f"q{i}"} for i in range(50)]
CONFIG = {"strategy_options": {}, "estimator": {}}  # what strategies read of a config


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
    strategy = cls(POOL, CONFIG, seed=0)
    first = strategy.select(RoundContext(round=1, n=10, seed=0, config=CONFIG)).ids
    again = cls(POOL, CONFIG, seed=0).select(RoundContext(round=1, n=10, seed=0, config=CONFIG)).ids
    second = strategy.select(RoundContext(round=2, n=10, seed=0, config=CONFIG)).ids
    other_seed = cls(POOL, CONFIG, seed=1).select(RoundContext(round=1, n=10, seed=1, config=CONFIG)).ids
    assert first == again
    assert first != second and first != other_seed
    assert len(set(first)) == 10 and set(first) <= {r["id"] for r in POOL}


def test_unknown_strategy_lists_the_registered_ones():
    with pytest.raises(UserFacingError, match=r"unknown strategy 'nope'; registered: .*random"):
        curriculum.get_strategy("nope")


def test_a_baseline_registers_with_one_decorator(monkeypatch):
    monkeypatch.setattr(curriculum, "_REGISTRY", dict(curriculum._REGISTRY))

    @register("test_last_n")
    class LastN(Strategy):
        description = "the last N of the pool"

        def select(self, ctx):
            return Selection(ids=[r["id"] for r in self.pool][-ctx.n:])

    assert curriculum.get_strategy("test_last_n") is LastN
    assert "test_last_n" in curriculum.available_strategies()
    picked = LastN(POOL, CONFIG, 0).select(RoundContext(round=1, n=2, seed=0, config=CONFIG))
    assert picked.ids == ["s48", "s49"]


def test_budget_larger_than_pool_is_refused():
    with pytest.raises(UserFacingError, match="curriculum.n: 60 is larger than the training pool"):
        curriculum.check_budget(60, len(POOL), "domain 'law'")


@pytest.mark.parametrize("name, kind", [("edco", "prefix"), ("edco_full", "full")])
def test_edco_rescores_each_round_and_takes_top_n(name, kind):
    calls = []

    def fake_score_pool(model, tokenizer, records, cfg, kind, seed, progress=True):
        calls.append((model, kind, seed))
        # the "model" is a round number here: scores shift with it, as a trained model's would
        return [{"id": r["id"], "score": (int(r["id"][1:]) * 7 + model * 13) % 50, "n_tokens": 3, "seconds": 0.0}
                for r in records]

    strategy = curriculum.get_strategy(name)(POOL, CONFIG, seed=2)
    picks = [strategy.select(RoundContext(round=r, n=5, seed=2, config=CONFIG, model=r, scorer=fake_score_pool))
             for r in (1, 2)]
    assert [c[1] for c in calls] == [kind, kind]
    assert calls[0][2] != calls[1][2]  # a fresh sampling seed per round
    for r, pick in zip((1, 2), picks):
        expected = sorted(POOL, key=lambda s: -((int(s["id"][1:]) * 7 + r * 13) % 50))[:5]
        assert pick.ids == [s["id"] for s in expected]  # scores are distinct: no ties here
        assert len(pick.scores) == len(POOL)
        assert pick.tokens_generated == 3 * len(POOL)
    assert picks[0].ids != picks[1].ids


def test_static_difficulty_scores_once_and_walks_easy_to_hard():
    calls = []

    def fake_score_pool(model, tokenizer, records, cfg, kind, seed, progress=True):
        calls.append(kind)
        return [{"id": r["id"], "score": float(int(r["id"][1:])), "n_tokens": 1, "seconds": 0.0} for r in records]

    config = {"estimator": {}, "curriculum": {"rounds": 3, "n": 10}, "strategy_options": {}}
    strategy = curriculum.get_strategy("static_difficulty")(POOL, config, seed=0)
    rounds = [strategy.select(RoundContext(round=r, n=10, seed=0, config=config, scorer=fake_score_pool))
              for r in (1, 2, 3)]
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

    config["strategy_options"] = {"static_difficulty": {"order": "hard_to_easy"}}
    hard_first = curriculum.get_strategy("static_difficulty")(POOL, config, seed=0)
    first = hard_first.select(RoundContext(round=1, n=10, seed=0, config=config, scorer=fake_score_pool))
    assert first.ids == [f"s{i}" for i in range(49, 39, -1)]


# --------------------------------------------------------------------------- strategy options
def test_options_are_filled_from_the_strategy_and_validated_naming_the_key():
    from baselines.ucb_bandit import UcbBandit

    bandit = curriculum.get_strategy("ucb_bandit")(POOL, CONFIG, seed=0)
    assert bandit.opts == {"ucb_buckets": 4, "ucb_c": 1.0} == {k: v["default"] for k, v in UcbBandit.options.items()}
    given = {**CONFIG, "strategy_options": {"ucb_bandit": {"ucb_c": 0.5}}}
    assert curriculum.get_strategy("ucb_bandit")(POOL, given, seed=0).opts == {"ucb_buckets": 4, "ucb_c": 0.5}
    for options, message in [
        ({"ucb_bandit": {"ucb_c": -1}}, "strategy_options.ucb_bandit.ucb_c: -1 is less than the minimum of 0"),
        ({"ucb_bandit": {"ucb_buckets": "four"}}, "strategy_options.ucb_bandit.ucb_buckets: 'four' is not of type 'integer'"),
        ({"ucb_bandit": {"ucb_k": 1}}, "strategy_options.ucb_bandit.ucb_k: unknown option of strategy 'ucb_bandit' "
                                       "(its options: ucb_buckets, ucb_c)"),
        ({"ucb_bandit": [1]}, "strategy_options.ucb_bandit: expected a mapping of options, got list"),
    ]:
        with pytest.raises(UserFacingError) as err:
            curriculum.strategy_options({"strategy_options": options}, "ucb_bandit")
        assert str(err.value) == message
    with pytest.raises(UserFacingError, match=r"^strategy_options.edco.order: unknown option of strategy 'edco' "
                                              r"\(it has no options\)$"):
        curriculum.strategy_options({"strategy_options": {"edco": {"order": "hard_to_easy"}}}, "edco")


def test_check_strategies_names_a_misspelt_strategy_and_checks_only_what_runs():
    config = {"grid": {"strategies": ["random"]}, "strategy_options": {"ucb_bandt": {"ucb_c": 1.0}}, "learning_rates": {}}
    with pytest.raises(UserFacingError, match="^strategy_options.ucb_bandt: no such strategy; registered: .*ucb_bandit"):
        curriculum.check_strategies(config)
    config["strategy_options"] = {"edco_partial": {"rescore_fraction": 2}}
    curriculum.check_strategies(config)  # grid runs random only: edco_partial's options are not read
    with pytest.raises(UserFacingError, match="strategy_options.edco_partial.rescore_fraction: 2 is greater than"):
        curriculum.check_strategies(config, ["random", "edco_partial"])


def test_an_option_needs_a_description_and_a_default():
    class Bad(Strategy):
        description = "has an option without a description"
        options = {"k": {"type": "integer", "default": 1}}

    with pytest.raises(ValueError, match="option 'k' needs a description and a default"):
        register("test_bad_option")(Bad)


def test_every_shipped_strategy_describes_itself_and_its_options(capsys):
    from edco import cli

    names = curriculum.available_strategies()
    assert not curriculum.broken_baselines()
    assert cli.main(["strategies"]) == 0
    out = capsys.readouterr().out
    for name in names:
        cls = curriculum.get_strategy(name)
        assert cls.description and "\n" not in cls.description, name
        assert f"{name}  " in out and cls.description in out
        for option, spec in cls.options.items():
            assert spec["description"] and f"{option} (default " in out
    assert "order (default \"easy_to_hard\")" in out and "stop_overlap (default null)" in out


# --------------------------------------------------------------------------- lookup by file
@pytest.fixture
def baselines_dir(tmp_path, monkeypatch):
    """A baselines package path of three files: alpha.py (registers 'alpha'), zeta.py
    (registers 'zeta_name', not its file name) and broken.py (a syntax error); the registry
    starts empty and every module imported from there is forgotten afterwards."""
    import importlib
    import sys

    import baselines

    for name, text in {
        "alpha.py": "from edco.curriculum import Strategy, register\n\n@register('alpha')\nclass A(Strategy):\n"
                    "    description = 'a'\n",
        "zeta.py": "from edco.curriculum import Strategy, register\n\n@register('zeta_name')\nclass Z(Strategy):\n"
                   "    description = 'z'\n",
        "broken.py": "from edco.curriculum import register\n\ndef oops(:\n",
    }.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(baselines, "__path__", [str(tmp_path)])
    monkeypatch.setattr(curriculum, "_REGISTRY", {})
    monkeypatch.setattr(curriculum, "_BROKEN", {})
    importlib.invalidate_caches()
    before = set(sys.modules)
    yield tmp_path
    for module in set(sys.modules) - before:
        if module.startswith("baselines."):
            del sys.modules[module]


def test_lookup_imports_the_named_file_first(baselines_dir):
    import sys

    assert curriculum.get_strategy("alpha").__name__ == "A"
    assert "baselines.alpha" in sys.modules and "baselines.zeta" not in sys.modules  # nothing else imported
    assert curriculum.broken_baselines() == {}


def test_a_broken_file_breaks_only_itself_and_is_named(baselines_dir):
    assert curriculum.get_strategy("zeta_name").__name__ == "Z"  # not a file name: every file is scanned
    broken = str(baselines_dir / "broken.py")
    assert list(curriculum.broken_baselines()) == [broken]
    assert curriculum.get_strategy("alpha").__name__ == "A"
    with pytest.raises(UserFacingError) as err:
        curriculum.get_strategy("broken")
    assert str(err.value).startswith(f"strategy 'broken': {broken} failed to import: SyntaxError")
    with pytest.raises(UserFacingError, match=rf"unknown strategy 'nope'; registered: alpha, zeta_name .*; {broken} "
                                              rf"failed to import \(SyntaxError"):
        curriculum.get_strategy("nope")
