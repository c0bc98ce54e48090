"""Every prompt the suite shows a model, in one place.

Training, evaluation and full-entropy scoring use the model's chat template with
``chat_messages``; the paper's prefix estimator uses ``quick_answer_prompt`` as raw text
(no chat template). Completions end with ``Answer: X`` so one parser serves SFT targets,
GRPO rewards and generative evaluation; ``parse_answer`` also reads the forms real
instruct models write instead (``A. Bluetooth``, ``**B**``, ``答案：C``).

Every chat-template call goes through ``render_chat`` with ``chat_template_kwargs(model_cfg)``
(thinking mode off unless configured, the Llama 3 date pinned), so training, scoring and
evaluation prompts agree token for token.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from edco.errors import UserFacingError

# docs/design.md#entropy-estimator: the paper's quick-answer instruction for the prefix estimator, verbatim.
QUICK_ANSWER_INSTRUCTION = (
    "Answer the question below in at most three sentences; if reasoning is needed keep it "
    "as short as possible.\nQuestion:\n"
)
ANSWER_INSTRUCTION = 'End your reply with "Answer: X", where X is the letter of the correct option.'

# The synthetic world's reasoning chain: recalled facts ("kornet is 2.") and running sums ("2 + 3 = 1.").
_FACT_RE = re.compile(r"\S+ is (\d)\.")
_SUM_RE = re.compile(r"= (\d)\.")


def options_of(record: dict) -> dict[str, str]:
    """The record's options; ``None`` entries (HF ``datasets`` pads option structs to the
    union of keys across rows, e.g. 4- and 5-option questions in one file) are dropped."""
    return {letter: text for letter, text in record["options"].items() if text is not None}


def format_question(record: dict) -> str:
    """Question text followed by one ``A. option`` line per option, in key order."""
    lines = [record["question"].strip()]
    lines += [f"{letter}. {text}" for letter, text in options_of(record).items()]
    return "\n".join(lines)


def user_message(record: dict) -> str:
    return f"{format_question(record)}\n{ANSWER_INSTRUCTION}"


def chat_messages(record: dict) -> list[dict]:
    """Conversational prompt (TRL prompt/completion format, lm-eval chat template)."""
    return [{"role": "user", "content": user_message(record)}]


def completion_text(record: dict) -> str:
    """SFT target: the explanation (or the option text) then ``Answer: X``."""
    letter = record["answer"]
    reason = (record.get("explanation") or record["options"][letter]).strip()
    return f"{reason}\nAnswer: {letter}"


def quick_answer_prompt(record: dict) -> str:
    """Raw-text prompt of the paper's prefix estimator (no chat template)."""
    return QUICK_ANSWER_INSTRUCTION + format_question(record) + "\n"


def quick_answer_text(record: dict) -> str:
    """Short answer to ``quick_answer_prompt`` (taught in base pretraining): for a synthetic
    record, level 1 the recalled fact, level k the recalled values and their sum
    ('2 + 3 + 1 = 2.', the chain's last running sum), then ``Answer: X``. The recalled values
    come first, so the prefix estimator's first K tokens are where a model that lacks the facts
    is unsure. Records without a fact chain (real data) get ``completion_text``."""
    values = _FACT_RE.findall(record.get("explanation") or "")
    if not values:
        return completion_text(record)
    if len(values) == 1:
        short = record["explanation"]
    else:
        short = " + ".join(values) + f" = {_SUM_RE.findall(record['explanation'])[-1]}."
    return completion_text({**record, "explanation": short})


# --------------------------------------------------------------------------- chat templates
# Llama 3.x templates stamp "Today Date: <strftime_now>" into their system header unless the
# caller passes `date_string`: prompts would change by the day (and differ between a model's
# training and its evaluation). Pinned to the template's own fallback. A template that does not
# use a variable ignores it: transformers hands every kwarg to the renderer, vLLM drops those
# its template does not reference, so one dict serves every model.
PINNED_DATE = "26 Jul 2024"


class PromptError(UserFacingError):
    """A chat template that would show the model a different prompt in training and generation."""


def chat_template_kwargs(model_cfg: dict) -> dict:
    """Keyword arguments of every chat-template call for this model (``models.<m>``).

    ``enable_thinking`` is off unless the config turns it on: the paper's answers carry no
    thinking block. Consumers: ``render_chat`` (the suite's own calls), TRL GRPO
    (``GRPOConfig.chat_template_kwargs``) and SFT (a ``chat_template_kwargs`` dataset column),
    lm-eval (``HFLM(chat_template_args=...)``, edco.evaluate.make_lm) and the estimator's prompt
    ids (edco.estimator.prompt_ids), which its vLLM backend sends as token ids.
    """
    return {"enable_thinking": bool(model_cfg["enable_thinking"]), "date_string": PINNED_DATE}


def render_chat(tokenizer, messages: list[dict], template_kwargs: dict, add_generation_prompt: bool) -> str:
    """The chat template's text for ``messages``. Tokenise it with ``add_special_tokens=False``:
    the template already holds the BOS token where the model has one."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **template_kwargs)


def sft_texts(tokenizer, record: dict, template_kwargs: dict) -> tuple[str, str]:
    """(prompt, target) of an SFT example as TRL splits it: the generation prompt, and what the
    whole conversation adds after it (the answer and the end-of-turn token).

    With Qwen3's template and ``enable_thinking: false`` the generation prompt ends in an empty
    ``<think>\\n\\n</think>\\n\\n`` block and the conversation renders the same block before the
    answer, so the block belongs to the prompt (no loss on it) and the target is the answer
    alone: the model trains on exactly the context it generates from.
    """
    messages = chat_messages(record)
    prompt = render_chat(tokenizer, messages, template_kwargs, add_generation_prompt=True)
    reply = [{"role": "assistant", "content": completion_text(record)}]
    full = render_chat(tokenizer, messages + reply, template_kwargs, add_generation_prompt=False)
    if not full.startswith(prompt):
        raise PromptError(
            f"chat template of {getattr(tokenizer, 'name_or_path', '?')!r}: the generation prompt is not a "
            f"prefix of prompt + answer with {template_kwargs}, so training and generation would see "
            f"different prompts; check models.<m>.enable_thinking")
    return prompt, full[len(prompt):]


# --------------------------------------------------------------------------- answer parsing
# What `parse_answer` reads, in order of precedence (the first level that finds a letter decides):
#   1. explicit statements: "Answer: B", "the correct answer is (B)", "答案：B", "答案是B", "选B",
#      "\boxed{B}", "B is correct", "I choose B". The LAST statement wins (a model that revises
#      itself means its last word). A statement naming several letters ("Answer: B and C") gives None.
#   2. option labels opening a line: "B", "B.", "(B)", "B) text", "**B**", "B: text", "- B. text"
#      (SmolLM2 answers "A. Bluetooth"). Several different letters (an echoed option list) give None.
#   3. labels inside the text: "(B)", "[B]", "**B**", "option B", "选项B", "B项".
#   4. the text of exactly one option (when options are given), e.g. "It is Bluetooth.".
#   5. a lone capital letter ("I'd go with B"); "A"/"I" before a lower-case word are read as
#      the article / pronoun, not as options.
# On levels 2-5 several different letters mean no choice (None). A letter outside the options is
# never a match. A lower-case letter counts only where it cannot be a word: not followed by
# another word ("the answer is a protocol" chooses nothing; "answer: b." chooses B).
# Special tokens (<|im_end|>, <|eot_id|>, ...) and <think> blocks are removed first; an
# unterminated <think> (a reply cut off while thinking) has not answered.
INVALID = "[invalid]"  # lm-eval's fallback string; tables count it as the unparseable share
DEFAULT_LETTERS = "ABCDEFGHIJ"  # without options: up to ten options, as in MMLU-Pro

_SPECIAL_TOKEN = re.compile(r"<\|[^<>|\s]{1,40}\|>|</?s>|<eos>|<end_of_turn>")
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S)
_LETTER = r"[\(\[]?\s*(?P<letter>[A-Za-z])\s*[\)\]]?(?![A-Za-z0-9])"
_STATEMENTS = [re.compile(p, re.I) for p in (
    r"\banswer\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be))?[\s*_:=\-]*"
    r"(?:(?:option|choice)\s*)?" + _LETTER,
    r"(?:答案|应选|故选|选择|选(?!项))\s*(?:应该是|应当是|应为|是|为)?[\s*_:=]*" + _LETTER,
    r"\\boxed\{\s*" + _LETTER,
    r"\b(?:choose|chose|pick|select|go\s+with)\s+(?:(?:option|choice)\s*)?" + _LETTER,
)] + [re.compile(r"(?:\b(?:option|choice)\s*)?[\(\[]?(?P<letter>[A-Z])[\)\]]?\s+is\s+(?:the\s+)?"
                 r"(?:correct|right|best)\b")]
_MORE_LETTERS = re.compile(r"\s*(?:,|and\b|or\b|&|/|和|或|、)\s*[\(\[]?[A-Z](?![A-Za-z0-9])")
_LINE_LABEL = re.compile(r"^[\s*#>_\-]*(?:(?:option|choice)\s*)?[\(\[]?(?P<letter>[A-Za-z])"
                         r"(?:[\)\]:、]|\.(?![A-Za-z])|\*\*|\s+[-–—]\s|\s*$)", re.I | re.M)
_INLINE_LABELS = [re.compile(p, re.I) for p in (
    r"(?<![A-Za-z0-9])[\(\[](?P<letter>[A-Za-z])[\)\]]",
    r"\*\*\s*(?P<letter>[A-Za-z])\s*[.):]?\s*\*\*",
    r"\b(?:option|choice)\s+[\(\[]?(?P<letter>[A-Za-z])(?![A-Za-z0-9])",
    r"选项\s*(?P<letter>[A-Za-z])(?![A-Za-z0-9])",
    r"(?<![A-Za-z0-9])(?P<letter>[A-Za-z])\s*(?:项|选项)",
)]
# "A" / "I" followed by a lower-case word, unless that word joins letters ("A and B").
_ARTICLE_NEXT = re.compile(r"\s+(?!(?:and|or|nor|vs)\b)[a-z]")
_BARE_CAPITAL = re.compile(r"(?<![A-Za-z0-9'’\-])(?P<letter>[A-Z])(?![A-Za-z0-9'’\-])")


def clean_reply(text: str) -> str:
    """The reply as ``parse_answer`` reads it: NFKC (full-width letters and colons become
    ASCII), thinking blocks and special tokens removed."""
    text = unicodedata.normalize("NFKC", text)
    return _SPECIAL_TOKEN.sub("", _THINK.sub("", text))


def _allowed(options) -> dict[str, str | None]:
    """letter -> option text (None when only letters are known)."""
    if options is None:
        return dict.fromkeys(DEFAULT_LETTERS)
    if isinstance(options, Mapping):  # a record's options; None pads HF structs (see options_of)
        return {str(k).upper(): v for k, v in options.items() if v is not None}
    return dict.fromkeys(str(letter).upper() for letter in options)


def _letter(match: re.Match, text: str, allowed) -> str | None:
    """The match's letter if it is an option and, lower-case, not a word of the sentence."""
    letter = match.group("letter")
    if letter.islower() and re.match(r"\s+[A-Za-z]", text[match.end("letter"):]):
        return None
    return letter.upper() if letter.upper() in allowed else None


def _last_statement(text: str, allowed) -> tuple[bool, str | None]:
    """(found, letter) of the last explicit statement; letter None when it names several."""
    found = []
    for pattern in _STATEMENTS:
        for m in pattern.finditer(text):
            letter = _letter(m, text, allowed)
            if letter:
                several = _MORE_LETTERS.match(text, m.end())
                found.append((m.start("letter"), None if several else letter))
    if not found:
        return False, None
    return True, max(found, key=lambda f: f[0])[1]


def _one_letter(patterns: Iterable[re.Pattern], text: str, allowed) -> tuple[bool, str | None]:
    """(found, letter): letter None when the matches name different letters."""
    letters = {letter for p in patterns for m in p.finditer(text) if (letter := _letter(m, text, allowed))}
    return bool(letters), (letters.pop() if len(letters) == 1 else None)


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


def _option_text_letter(text: str, allowed) -> tuple[bool, str | None]:
    """(found, letter) from the option texts the reply contains, longest first: an option whose
    text lies inside another found option's text ("5G" in "5G NR") does not count."""
    reply = f" {_words(text)} "
    found = {}
    for letter, option in allowed.items():
        words = _words(option or "")
        # Latin text must match whole words; CJK text has no spaces to match on.
        if words and (f" {words} " in reply if words.isascii() else words in reply):
            found[letter] = words
    kept = {k for k, w in found.items() if not any(w != v and w in v for v in found.values())}
    return bool(kept), (kept.pop() if len(kept) == 1 else None)


def _bare_capital(text: str, allowed) -> tuple[bool, str | None]:
    letters = set()
    for m in _BARE_CAPITAL.finditer(text):
        if m.group("letter") in "AI" and _ARTICLE_NEXT.match(text, m.end()):
            continue  # the article "A" / the pronoun "I"
        if m.group("letter") in allowed:
            letters.add(m.group("letter"))
    return bool(letters), (letters.pop() if len(letters) == 1 else None)


def parse_answer(text: str | None, options=None) -> str | None:
    """The option letter a free-text reply chooses, or None (see the precedence above).

    ``options``: a record's options (letter -> text; the text also counts as a choice), an
    iterable of letters, or None (letters A-J, no option texts).
    """
    if not text:
        return None
    text, allowed = clean_reply(text), _allowed(options)
    levels = (
        lambda: _last_statement(text, allowed),
        lambda: _one_letter([_LINE_LABEL], text, allowed),
        lambda: _one_letter(_INLINE_LABELS, text, allowed),
        lambda: _option_text_letter(text, allowed),
        lambda: _bare_capital(text, allowed),
    )
    for level in levels:
        found, letter = level()
        if found:
            return letter
    return None
