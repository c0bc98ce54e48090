"""edco.prompts.parse_answer on answers as real instruct models write them.

Each row: (reply, options, expected letter or None). ``OPTS`` is a four-option TeleQnA-like
question; replies follow what SmolLM2-135M-Instruct, Qwen3 and Llama 3 write under their chat
templates (special tokens left in, as lm-eval's HFLM decodes them), plus the forms that must
choose nothing.
"""

from __future__ import annotations

import pytest

from edco.prompts import completion_text, parse_answer

OPTS = {"A": "Bluetooth", "B": "Wi-Fi", "C": "Zigbee", "D": "LoRaWAN"}
NESTED = {"A": "5G", "B": "5G NR", "C": "LTE", "D": "Wi-Fi"}
MED = {"A": "Acute cholecystitis", "B": "Acute pancreatitis", "C": "Peptic ulcer", "D": "Appendicitis"}
LAW = {"A": "无效", "B": "可撤销", "C": "效力待定", "D": "有效"}

CASES = [
    # bare and labelled letters
    ("B", OPTS, "B"),
    ("B.", OPTS, "B"),
    ("(B)", OPTS, "B"),
    ("B) Wi-Fi", OPTS, "B"),
    ("**B**", OPTS, "B"),
    ("**B. Wi-Fi**", OPTS, "B"),
    ("- B. Wi-Fi", OPTS, "B"),
    ("b)", OPTS, "B"),
    ("c", OPTS, "C"),
    # SmolLM2's greedy answers: the option line, end-of-turn token left in
    ("A. Bluetooth<|im_end|>", OPTS, "A"),
    ("D) LoRaWAN<|im_end|>", OPTS, "D"),
    ("B. Wi-Fi\n\nExplanation: unlike option A, Wi-Fi uses the 2.4 GHz band.<|im_end|>", OPTS, "B"),
    # explicit statements
    ("The answer is B", OPTS, "B"),
    ("Answer: B", OPTS, "B"),
    ("Answer: (B)", OPTS, "B"),
    ("**Answer:** D", OPTS, "D"),
    ("**Answer**: D", OPTS, "D"),
    ("Answer: c", OPTS, "C"),
    ("the answer is b.", OPTS, "B"),
    ("Answer: A. Bluetooth", OPTS, "A"),
    ("Answer: B<|eot_id|>", OPTS, "B"),
    ("The correct answer is A. Bluetooth.\n\nExplanation: Bluetooth is a short-range radio.", OPTS, "A"),
    ("I think the correct answer is (C) Zigbee.", OPTS, "C"),
    ("Option C is correct.", OPTS, "C"),
    ("C is the right answer because Zigbee is a mesh protocol.", OPTS, "C"),
    ("(A) is wrong and (B) is right.", OPTS, "B"),
    ("I would go with B.", OPTS, "B"),
    ("Therefore the final answer is $\\boxed{D}$.", OPTS, "D"),
    # the last explicit statement wins; one naming several letters chooses nothing
    ("Answer: A\nWait, that is the wrong band.\nAnswer: C", OPTS, "C"),
    ("Answer: B and C", OPTS, None),
    ("Answer: B, C", OPTS, None),
    # Chinese (JEC-QA): full-width punctuation and letters are normalised
    ("答案：B", LAW, "B"),
    ("答案是B", LAW, "B"),
    ("答案：（Ｂ）", LAW, "B"),
    ("根据《民法典》的规定，正确答案为C。", LAW, "C"),
    ("故选A", LAW, "A"),
    ("选项B的说法正确。", LAW, "B"),
    ("答案：AB", LAW, None),  # a multi-answer reply to a single-answer question
    ("选A和C", LAW, None),
    # the option's own text
    ("Wi-Fi", OPTS, "B"),
    ("The answer is Bluetooth.", OPTS, "A"),
    ("Zigbee is the mesh protocol here.", OPTS, "C"),
    ("5G NR", NESTED, "B"),  # "5G" lies inside "5G NR": the longer option is the one named
    ("效力待定", LAW, "C"),
    ("Bluetooth or Wi-Fi, both work.", OPTS, None),
    # a lone capital letter, the weakest evidence
    ("The most likely diagnosis is C.", MED, "C"),
    ("A and B are both plausible, but I am unsure.", OPTS, None),
    # thinking blocks: only what follows </think> counts; an unfinished one has not answered
    ("<think>\nMaybe A? Or B.\n</think>\n\nAnswer: C", OPTS, "C"),
    ("<think>\nLet me compare A and B", OPTS, None),
    # no choice
    ("A. Bluetooth\nB. Wi-Fi\nC. Zigbee\nD. LoRaWAN", OPTS, None),  # the option list echoed
    ("The answer is a protocol used for short-range links.", OPTS, None),
    ("answer: a good question, but I cannot tell.", OPTS, None),
    ("I'm not sure.", OPTS, None),
    ('End your reply with "Answer: X", where X is the letter.', OPTS, None),  # the instruction echoed
    ("Answer: E", OPTS, None),  # not an option of this question
    ("", OPTS, None),
    (None, OPTS, None),
    # without options: letters A-J, no option texts; or an explicit set of letters
    ("Answer: B", None, "B"),
    ("Answer: K", None, None),
    ("Bluetooth", None, None),
    ("B", "AB", "B"),
    ("C", "AB", None),
]


@pytest.mark.parametrize(("reply", "options", "expected"), CASES, ids=[repr(c[0])[:40] for c in CASES])
def test_parse_answer(reply, options, expected):
    assert parse_answer(reply, options) == expected


def test_the_table_is_large_and_covers_every_outcome():
    assert len(CASES) >= 40
    assert {c[2] for c in CASES} >= {"A", "B", "C", "D", None}


def test_options_padded_by_datasets_drop_their_none_letters():
    # HF `datasets` pads option structs to the union of keys: E exists only as None here.
    padded = {**OPTS, "E": None}
    assert parse_answer("Answer: E", padded) is None
    assert parse_answer("LoRaWAN", padded) == "D"


@pytest.mark.parametrize("letter", "ABCD")
def test_every_sft_target_parses_to_its_answer(letter):
    record = {"question": "q", "options": OPTS, "answer": letter}
    assert parse_answer(completion_text(record), OPTS) == letter
    explained = {**record, "explanation": "Zigbee and Wi-Fi share the band; (A) is a decoy."}
    assert parse_answer(completion_text(explained), OPTS) == letter


def test_grpo_reward_reads_replies_among_the_questions_own_options():
    from edco.trainer.grpo import correct_letter_reward, grpo_dataset

    records = [{"question": "q1", "options": OPTS, "answer": "A"},
               {"question": "q2", "options": {"A": "x", "B": "y", "C": "LoRaWAN"}, "answer": "C"}]
    # TRL hands reward functions the dataset's columns; `datasets` pads the 3-option row with D: None.
    options = grpo_dataset(records)["options"]
    assert options[1] == {"A": "x", "B": "y", "C": "LoRaWAN", "D": None}
    replies = ["A. Bluetooth<|im_end|>", "LoRaWAN", "Answer: D", "D. LoRaWAN"]
    rewards = correct_letter_reward(replies, ["A", "C", "B", "D"], options=[options[0], options[1]] * 2)
    # reply 3 names a wrong option; reply 4 names a D the second question lacks
    assert rewards == [1.0, 1.0, 0.0, 0.0]
