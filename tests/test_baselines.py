"""The baselines beyond random/edco/static_difficulty, each on a hand-made pool with exact
expected ids: length, answer_complexity, ppl_dynamic, ucb_bandit (UCB arithmetic on known
rewards, resume), edco_partial (which ids are re-scored, seeded) and edco_early_stop; then
two of them end to end through ``run_rounds`` on a tiny model."""

from __future__ import annotations

import pytest

import edco.estimator
from edco import curriculum
from edco.curriculum import RoundContext, Selection, jaccard

from baselines.answer_complexity import sentence_count


class WordTokenizer:
    """Stand-in tokenizer: one token per whitespace-separated word."""

    def encode(self, text, add_special_tokens=False):
        return text.split()


def strategy(name, pool, curriculum_cfg=None, seed=0):
    config = {"estimator": {}, "curriculum": {"rounds": 2, "n": 2, "order": "easy_to_hard", **(curriculum_cfg or {})}}
    return curriculum.get_strategy(name)(pool, config, seed), config


def ctx(r, n, seed=0, model=None, previous=(), feedback=()):
    return RoundContext(round=r, n=n, seed=seed, config={}, model=model, tokenizer=WordTokenizer(),
                        previous=list(previous), feedback=list(feedback))


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
    def install(fn):
        fake = FakeScorer(fn)
        monkeypatch.setattr(edco.estimator, "score_pool", fake)
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
    s, _ = strategy("answer_complexity", pool, {"rounds": 3})
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


