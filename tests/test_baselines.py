"""The baselines beyond random/edco/static_difficulty, each on a hand-made pool with exact
expected ids: length, answer_complexity, ppl_dynamic, ucb_bandit (UCB arithmetic on known
rewards, resume), edco_partial (which ids are re-scored, seeded) and edco_early_stop; then
two of them end to end through ``run_rounds`` on a tiny model."""

from __future__ import annotations

import math

import pytest
from test_trainer_rounds import DOMAIN, MODEL, world  # noqa: F401  (the tiny world fixture)

from edco import curriculum, io, layout, trainer
from edco.curriculum import RoundContext, Selection, jaccard
from edco.errors import UserFacingError
from edco.trainer import rounds as round_loop

from baselines.answer_complexity import sentence_count
from baselines.ucb_bandit import quantile_arms, round_gain, ucb_indices


class WordTokenizer:
    """Stand-in tokenizer: one token per whitespace-separated word."""

    def encode(self, text, add_special_tokens=False):
        return text.split()


def strategy(name, pool, options=None, seed=0, rounds=2):
    config = {"estimator": {}, "curriculum": {"rounds": rounds, "n": 2}, "strategy_options": {name: options or {}}}
    return curriculum.get_strategy(name)(pool, config, seed), config


SCORER = None  # the scorer every ctx() hands a strategy; the `scorer` fixture installs a fake


def ctx(r, n, seed=0, model=None, previous=(), feedback=()):
    return RoundContext(round=r, n=n, seed=seed, config={}, model=model, tokenizer=WordTokenizer(),
                        previous=list(previous), feedback=list(feedback), scorer=SCORER)


class FakeScorer:
    """Deterministic ``score_pool``: score = fn(index of the id, model); records every call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, model, tokenizer, records, cfg, kind, seed, progress=True):
        self.calls.append({"model": model, "kind": kind, "seed": seed, "ids": [r["id"] for r in records]})
        return [{"id": r["id"], "score": float(self.fn(int(r["id"][1:]), model)), "n_tokens": 2, "seconds": 0.0}
                for r in records]


@pytest.fixture
def scorer(monkeypatch):
    import sys

    def install(fn):
        fake = FakeScorer(fn)
        monkeypatch.setattr(sys.modules[__name__], "SCORER", fake)
        return fake

    return install


def record(rid, question, explanation=None, answer="A", difficulty=None):
    r = {"id": rid, "question": question, "options": {"A": "yes", "B": "no way"}, "answer": answer, "source": "t"}
    if explanation is not None:
        r["explanation"] = explanation
    if difficulty is not None:
        r["difficulty"] = difficulty
    return r


# --------------------------------------------------------------------------- length
LENGTH_POOL = [
    record("a", "w w w", "x"),
    record("b", "w", "x"),
    record("c", "w w w w w", "x x x x"),
    record("d", "w w", "x x x x x x"),
    record("e", "w w w w"),  # no explanation: the target is the option text "yes"
]
# question + "A. yes" + "B. no way" (5 tokens) + explanation + "Answer: A" (2 tokens)
LENGTHS = {"a": 3 + 5 + 1 + 2, "b": 1 + 5 + 1 + 2, "c": 5 + 5 + 4 + 2, "d": 2 + 5 + 6 + 2, "e": 4 + 5 + 1 + 2}


def test_length_counts_question_and_answer_tokens_and_walks_short_to_long():
    # b 9 < a 11 < e 12 < d 15 < c 16; 2 rounds of 2 over 5: windows start at 0 and 3
    s, config = strategy("length", LENGTH_POOL)
    first = s.select(ctx(1, 2))
    second = s.select(ctx(2, 2))
    assert first.scores == LENGTHS and first.tokens_generated == 0
    assert first.ids == ["b", "a"]
    assert second.ids == ["d", "c"] and second.scores == {}
    # resumed at round 2: recomputed from the text, nothing read back
    resumed, _ = strategy("length", LENGTH_POOL)
    assert resumed.select(ctx(2, 2, previous=[Selection(ids=first.ids)])).ids == ["d", "c"]
    long_first, _ = strategy("length", LENGTH_POOL, {"order": "hard_to_easy"})
    assert long_first.select(ctx(1, 2)).ids == ["c", "d"]


# --------------------------------------------------------------------------- answer_complexity
def test_sentence_count_heuristic():
    assert sentence_count("Facts: a is 2. b is 3. 2 + 3 = 1.") == 3
    assert sentence_count("One clause without an end") == 1
    assert sentence_count("The dose is 3.5 mg. Then stop!") == 2  # no split inside a number
    assert sentence_count("甲。乙！丙") == 3
    assert sentence_count("First line\nsecond line?") == 2
    assert sentence_count("") == 0


def test_answer_complexity_ranks_by_steps_then_tokens():
    pool = [
        record("p1", "q", "Step one. Step two."),               # 2 sentences, 4 tokens
        record("p2", "q", "Short."),                            # 1 sentence,  1 token
        record("p3", "q", "A much longer single sentence here."),  # 1 sentence, 6 tokens
        record("p4", "q", answer="B"),                          # option "no way": 1 sentence, 2 tokens
        record("p5", "q", "First, recall it.\nThen add! Done?"),  # 3 sentences, 6 tokens
    ]
    s, _ = strategy("answer_complexity", pool, rounds=3)
    rounds = [s.select(ctx(r, 2)) for r in (1, 2, 3)]
    scale = 7  # 1 + the longest reasoning (6 tokens)
    assert rounds[0].scores == {"p1": 2 + 4 / scale, "p2": 1 + 1 / scale, "p3": 1 + 6 / scale,
                                "p4": 1 + 2 / scale, "p5": 3 + 6 / scale}
    # ranking p2 < p4 < p3 < p1 < p5; 3 windows of 2 over 5 start at 0, 2, 3
    assert [sel.ids for sel in rounds] == [["p2", "p4"], ["p3", "p1"], ["p1", "p5"]]


# --------------------------------------------------------------------------- ppl_dynamic
POOL10 = [{"id": f"s{i}", "question": f"q{i}"} for i in range(10)]


def test_ppl_dynamic_rescores_perplexity_each_round(scorer):
    fake = scorer(lambda i, model: (i * 3 + model * 7) % 10)  # the "model" is the round number
    s, _ = strategy("ppl_dynamic", POOL10)
    first, second = s.select(ctx(1, 3, model=1)), s.select(ctx(2, 3, model=2))
    assert [c["kind"] for c in fake.calls] == ["perplexity", "perplexity"]
    assert all(len(c["ids"]) == 10 for c in fake.calls)
    # i:     0 1 2 3 4 5 6 7 8 9
    # r1:    7 0 3 6 9 2 5 8 1 4   -> s4, s7, s0
    # r2:    4 7 0 3 6 9 2 5 8 1   -> s5, s8, s1
    assert first.ids == ["s4", "s7", "s0"]
    assert second.ids == ["s5", "s8", "s1"]
    assert second.tokens_generated == 20


# --------------------------------------------------------------------------- edco_partial
POOL20 = [{"id": f"s{i:02d}", "question": f"q{i}"} for i in range(20)]


def partial_scores(i, model):
    return i if model == 1 else 100 - i  # round 2's model reverses the ranking


def test_edco_partial_rescores_a_seeded_fraction_and_carries_the_rest(scorer):
    fake = scorer(partial_scores)
    s, _ = strategy("edco_partial", POOL20, {"rescore_fraction": 0.25}, seed=3)
    first = s.select(ctx(1, 4, seed=3, model=1))
    assert fake.calls[0]["ids"] == [r["id"] for r in POOL20]  # round 1: everything
    assert fake.calls[0]["kind"] == "prefix"
    assert first.ids == ["s19", "s18", "s17", "s16"]

    second = s.select(ctx(2, 4, seed=3, model=2, previous=[first]))
    rescored = ["s00", "s09", "s15", "s16", "s18"]  # ceil(0.25 x 20) = 5, drawn with (seed 3, round 2)
    assert fake.calls[1]["ids"] == rescored
    assert second.tokens_generated == 2 * 5
    expected = {f"s{i:02d}": float(i) for i in range(20)} | {sid: 100.0 - int(sid[1:]) for sid in rescored}
    assert second.scores == expected
    # fresh s00 100, s09 91, s15 85, s16 84 beat the carried s19 19
    assert second.ids == ["s00", "s09", "s15", "s16"]

    # the draw depends on (seed, round) only: another instance, same seed -> the same ids
    again, _ = strategy("edco_partial", POOL20, {"rescore_fraction": 0.25}, seed=3)
    again.select(ctx(2, 4, seed=3, model=2, previous=[first]))
    other_seed, _ = strategy("edco_partial", POOL20, {"rescore_fraction": 0.25}, seed=4)
    other_seed.select(ctx(2, 4, seed=4, model=2, previous=[first]))
    assert fake.calls[2]["ids"] == rescored
    assert fake.calls[3]["ids"] == ["s03", "s07", "s13", "s14", "s19"]

    # an id the previous round has no score for is always re-scored
    gap = Selection(ids=first.ids, scores={k: v for k, v in first.scores.items() if k != "s01"})
    s.select(ctx(2, 4, seed=3, model=2, previous=[gap]))
    assert fake.calls[4]["ids"] == sorted(rescored + ["s01"])


def test_edco_partial_at_fraction_one_is_edco(scorer):
    fake = scorer(partial_scores)
    partial, _ = strategy("edco_partial", POOL20, {"rescore_fraction": 1.0})
    edco, _ = strategy("edco", POOL20)
    picks = {}
    for name, s in (("partial", partial), ("edco", edco)):
        first = s.select(ctx(1, 4, model=1))
        picks[name] = (first, s.select(ctx(2, 4, model=2, previous=[first])))
    assert [c["ids"] for c in fake.calls] == [[r["id"] for r in POOL20]] * 4
    assert picks["partial"] == picks["edco"]


# --------------------------------------------------------------------------- edco_full_low
def test_edco_full_low_takes_edco_fulls_scores_from_the_bottom(scorer):
    """Full entropy re-scored each round as edco_full does; the N lowest, most certain first
    (ties by the same id hash as top-N): the mirror of edco_full's selection."""
    fake = scorer(lambda i, model: (i * 7 + model) % 10)  # ties: s0 and s10, s1 and s11, ...
    low, _ = strategy("edco_full_low", POOL20)
    full, _ = strategy("edco_full", POOL20)
    first = low.select(ctx(1, 4, model=1))
    second = low.select(ctx(2, 4, model=2, previous=[first]))
    for picked in (first, second):
        ranked = sorted(picked.scores, key=lambda i: (picked.scores[i], curriculum.tie_break_key(i)))
        assert picked.ids == ranked[:4]
        assert [picked.scores[i] for i in picked.ids] == sorted(picked.scores[i] for i in picked.ids)
        rest = set(picked.scores) - set(picked.ids)
        assert max(picked.scores[i] for i in picked.ids) <= min(picked.scores[i] for i in rest)
    assert first.ids != second.ids  # re-scored: round 2's scores are the round-2 model's
    assert [c["kind"] for c in fake.calls] == ["full", "full"]
    top = full.select(ctx(1, 4, model=1))
    assert top.scores == first.scores and not set(top.ids) & set(first.ids)  # same scores, the other end
    assert low.cost(low.opts) == full.cost(full.opts)  # the same scoring: equal cost


# --------------------------------------------------------------------------- edco_early_stop
def drifting(i, model):
    return i + (100 if model >= 2 and i == 0 else 0)  # from round 2 on, s0 jumps to the top


@pytest.mark.parametrize("threshold, rescored_rounds", [
    (0.6, [1, 2]),           # rounds 1-2 overlap 0.6: round 3 reuses round 2, and so does round 4
    (0.7, [1, 2, 3]),        # round 3 re-scores, picks round 2's set again (overlap 1): round 4 stops
    (None, [1, 2, 3, 4]),    # never stops: edco
])
def test_edco_early_stop_freezes_once_selections_overlap(scorer, threshold, rescored_rounds):
    fake = scorer(drifting)
    s, _ = strategy("edco_early_stop", POOL10, {"stop_overlap": threshold})
    picks = []
    for r in (1, 2, 3, 4):
        picks.append(s.select(ctx(r, 4, model=r, previous=picks)))
    assert [c["model"] for c in fake.calls] == rescored_rounds
    # rounds 1 and 2: {s9 s8 s7 s6} vs {s0 s9 s8 s7}: Jaccard 3/5 = 0.6
    assert picks[0].ids == ["s9", "s8", "s7", "s6"]
    assert picks[1].ids == ["s0", "s9", "s8", "s7"]
    assert jaccard(picks[0].ids, picks[1].ids) == pytest.approx(0.6)
    # whether frozen or re-scored, rounds 3-4 pick the same here; frozen rounds generate nothing
    assert picks[2].ids == picks[3].ids == picks[1].ids
    assert picks[2].scores == picks[1].scores
    assert [p.tokens_generated for p in picks] == [20 if r in rescored_rounds else 0 for r in (1, 2, 3, 4)]


def test_edco_early_stop_needs_two_selections(scorer):
    fake = scorer(drifting)
    s, _ = strategy("edco_early_stop", POOL10, {"stop_overlap": 0.0})
    first = s.select(ctx(1, 4, model=1))
    s.select(ctx(2, 4, model=2, previous=[first]))
    assert len(fake.calls) == 2  # round 2 has only one earlier selection: it re-scores


# --------------------------------------------------------------------------- ucb_bandit
def test_round_gain_is_loss_drop_or_reward_gain():
    sft = [{"loss": v} for v in (4.0, 3.0, 99.0, 1.0, 0.0)]  # odd: the middle step is left out
    assert round_gain(sft) == 3.0  # (4 + 3) / 2 - (1 + 0) / 2
    grpo = [{"loss": 0.0, "reward": v} for v in (0.25, 0.25, 0.5, 1.0)]
    assert round_gain(grpo) == 0.5  # (0.5 + 1) / 2 - (0.25 + 0.25) / 2
    assert round_gain([{"loss": 2.0}]) == 0.0 and round_gain([]) == 0.0


def test_ucb1_indices():
    index = ucb_indices([1, 2, 0], [0.5, 1.0, 0.0], c=1.0)
    assert index[0] == pytest.approx(0.5 + math.sqrt(2 * math.log(3)))
    assert index[1] == pytest.approx(0.5 + math.sqrt(math.log(3)))
    assert index[2] == math.inf
    assert ucb_indices([1, 1], [0.2, 0.1], c=0.0) == [0.2, 0.1]


BANDIT_POOL = ([record(f"e{i}", "q", difficulty=1) for i in range(4)]
               + [record(f"m{i}", "q", difficulty=2) for i in range(4)]
               + [record(f"h{i}", "q", difficulty=3) for i in range(2)])


def losses(*values):
    return [{"loss": v, "grad_norm": 1.0} for v in values]


def test_ucb_bandit_pulls_by_ucb1_with_known_rewards_and_resumes():
    s, _ = strategy("ucb_bandit", BANDIT_POOL, {"ucb_c": 1.0})
    assert [len(a) for a in s.arms] == [4, 4, 2]  # one arm per difficulty level, easiest first
    steps = {1: losses(2.0, 1.0), 2: losses(2.0, 1.5), 3: losses(1.0, 1.3)}  # gains 1.0, 0.5, -0.3
    picks = []
    for r in (1, 2, 3, 4):
        picks.append(s.select(ctx(r, 3, previous=picks)))
        s.update({"round": r, "steps": steps.get(r, [])})
    # rounds 1-3: the unplayed arm (+inf), easiest first; round 3's arm has 2 < N = 3 samples,
    # so the third comes from the best other arm: level 1, 1 + sqrt(2 ln 2) > 0.5 + sqrt(2 ln 2)
    assert [p.ids for p in picks[:3]] == [["e1", "e0", "e2"], ["m0", "m3", "m1"], ["h1", "h0", "e1"]]
    # after round 3: credit by share, level 3 got 2/3 of a pull, level 1 1/3
    pulls, sums = s.statistics(ctx(4, 3, previous=picks[:3]))
    assert pulls == pytest.approx([4 / 3, 1.0, 2 / 3])
    assert sums == pytest.approx([1.0 - 0.1, 0.5, -0.2])
    index = ucb_indices(pulls, sums, 1.0)
    assert index == pytest.approx([0.9 / (4 / 3) + math.sqrt(2 * math.log(3) / (4 / 3)),
                                   0.5 + math.sqrt(2 * math.log(3)),
                                   -0.3 + math.sqrt(2 * math.log(3) / (2 / 3))])
    assert max(range(3), key=index.__getitem__) == 1  # 1.982 > 1.959 > 1.515
    assert picks[3].ids == ["m3", "m0", "m1"]
    assert all(p.scores == {} and p.tokens_generated == 0 for p in picks)  # difficulty arms: no scoring

    # resumed before round 4: a fresh instance rebuilds the state from the history on disk
    resumed, _ = strategy("ucb_bandit", BANDIT_POOL, {"ucb_c": 1.0})
    history = [{"round": r, "steps": steps[r]} for r in (1, 2, 3)]
    assert resumed.select(ctx(4, 3, previous=picks[:3], feedback=history)).ids == picks[3].ids
    with pytest.raises(UserFacingError, match="no training logs of round 1"):
        strategy("ucb_bandit", BANDIT_POOL)[0].select(ctx(4, 3, previous=picks[:3]))


def test_ucb_bandit_c_zero_exploits():
    s, _ = strategy("ucb_bandit", BANDIT_POOL, {"ucb_c": 0.0})
    picks, history = [], []
    for r, gain_losses in zip((1, 2, 3), (losses(1.0, 0.9), losses(3.0, 1.0), losses(1.0, 0.0))):
        picks.append(s.select(ctx(r, 3, previous=picks, feedback=history)))
        history.append({"round": r, "steps": gain_losses})
    # c = 0: round 3 fills level 3's 2 samples with the best *mean* (level 2, 2.0 > 0.1);
    # its gain 1.0 is credited 1/3 to level 2, 2/3 to level 3 -> means 0.1, 1.75, 1.0
    assert [sid[0] for sid in picks[2].ids] == ["h", "h", "m"]
    pulls, sums = s.statistics(ctx(4, 3, previous=picks, feedback=history))
    assert pulls == pytest.approx([1.0, 4 / 3, 2 / 3]) and sums == pytest.approx([0.1, 2 + 1 / 3, 2 / 3])
    assert {sid[0] for sid in s.select(ctx(4, 3, previous=picks, feedback=history)).ids} == {"m"}


def test_ucb_bandit_uses_base_perplexity_quantiles_without_difficulty(scorer):
    fake = scorer(lambda i, model: 10.0 - i)  # s9 easiest ... s0 hardest
    s, _ = strategy("ucb_bandit", POOL10, {"ucb_buckets": 3})
    first = s.select(ctx(1, 3, model="base"))
    assert [c["kind"] for c in fake.calls] == ["perplexity"]
    assert s.arms == [["s9", "s8", "s7", "s6"], ["s5", "s4", "s3"], ["s2", "s1", "s0"]]
    assert first.ids == ["s8", "s9", "s7"]  # the easiest quarter, drawn with (seed 0, round 1)
    assert len(first.scores) == 10 and first.tokens_generated == 20

    # resumed at round 2: the arms come from round 1's saved perplexities, the trained model is not asked
    resumed, _ = strategy("ucb_bandit", POOL10, {"ucb_buckets": 3})
    second = resumed.select(ctx(2, 3, model="trained", previous=[first],
                                feedback=[{"round": 1, "steps": losses(1.0, 0.5)}]))
    assert len(fake.calls) == 1 and resumed.arms == s.arms
    assert second.ids == ["s5", "s3", "s4"] and second.scores == {}  # the unplayed middle arm
    with pytest.raises(UserFacingError, match="round 1's scores.parquet"):
        strategy("ucb_bandit", POOL10)[0].select(ctx(2, 3, previous=[Selection(ids=first.ids)]))


def test_quantile_arms_sizes():
    scores = {f"x{i}": float(i) for i in range(7)}
    assert quantile_arms(scores, 3) == [["x0", "x1", "x2"], ["x3", "x4"], ["x5", "x6"]]
    assert quantile_arms({"a": 1.0}, 3) == [["a"]]


# --------------------------------------------------------------------------- end to end
def test_bandit_and_partial_edco_run_end_to_end(world, monkeypatch):  # noqa: F811
    config, train, test = world
    # the bandit must get its rewards from the trainer's ctx.feedback, as a resumed run does
    monkeypatch.setattr(curriculum.get_strategy("ucb_bandit"), "update", lambda self, metrics: None)
    config["curriculum"].update(rounds=3)
    config["strategy_options"]["edco_partial"] = {"rescore_fraction": 0.25}
    level_of = {r["id"]: r["difficulty"] for r in train}
    test_ids = {r["id"] for r in test}
    n = config["curriculum"]["n"]
    runs = {name: trainer.run_rounds(config, DOMAIN, MODEL, "sft", name, 0) for name in ("ucb_bandit", "edco_partial")}

    for name, path in runs.items():
        assert io.read_json(path / "run.json")["totals"]["sample_visits"] == 3 * n
        for r in (1, 2, 3):
            rd = layout.round_dir(path, r)
            for artefact in ("scores.parquet", "selection.jsonl", "metrics.jsonl", "timing.json", "done.json"):
                assert (rd / artefact).is_file(), (name, r, artefact)
            selected = [row["id"] for row in io.read_jsonl(rd / "selection.jsonl")]
            assert len(selected) == n and len(set(selected)) == n
            assert not test_ids & set(selected)

    # bandit: levels 1 then 2 (both unplayed, easiest first), then the level whose round
    # dropped the loss more (one pull each, equal bonus), recomputed from what is on disk
    bandit = runs["ucb_bandit"]
    levels = [{level_of[row["id"]] for row in io.read_jsonl(layout.round_dir(bandit, r) / "selection.jsonl")}
              for r in (1, 2, 3)]
    gains = [round_gain(io.read_jsonl(layout.round_dir(bandit, r) / "metrics.jsonl")) for r in (1, 2)]
    assert levels[:2] == [{1}, {2}]
    assert levels[2] == {1 if gains[0] >= gains[1] else 2}
    fresh = curriculum.get_strategy("ucb_bandit")(train, config, 0)
    replay = fresh.select(RoundContext(round=3, n=n, seed=0, config=config,
                                       previous=round_loop._previous_selections(bandit, 2),
                                       feedback=round_loop._previous_feedback(bandit, 2)))
    assert replay.ids == [row["id"] for row in io.read_jsonl(layout.round_dir(bandit, 3) / "selection.jsonl")]

    # edco_partial: every round writes the full score table; rounds 2-3 generate for a quarter of it
    partial = runs["edco_partial"]
    tokens = [io.read_json(layout.round_dir(partial, r) / "timing.json")["tokens_generated"] for r in (1, 2, 3)]
    assert all(0 < t for t in tokens) and tokens[1] < tokens[0] and tokens[2] < tokens[0]
    for r in (1, 2, 3):
        assert sorted(round_loop._read_scores(layout.round_dir(partial, r) / "scores.parquet")) == sorted(level_of)


def test_random_matched_scales_the_step_setting_of_each_paradigm():
    from baselines.random_matched import RandomMatched

    config = {"strategy_options": {"random_matched": {"compute_ratio_sft": 1.5, "compute_ratio_rl": 1.5}}}
    strategy = RandomMatched([{"id": "a"}], config, 0)
    assert strategy.training_config("sft", {"num_train_epochs": 4, "learning_rate": 1.0}) == \
        {"num_train_epochs": 6, "learning_rate": 1.0}
    assert strategy.training_config("rl", {"max_steps": 16})["max_steps"] == 24
    # every other strategy keeps the paradigm's budget
    from baselines.random import RandomStrategy

    cfg = {"max_steps": 16}
    assert RandomStrategy([{"id": "a"}], config, 0).training_config("rl", cfg) is cfg
