"""Real chat templates: the staged Qwen3 tokenizer's template (../shared/tokenizers/qwen3) rendered
for a training example, a scoring prompt and an evaluation prompt, through the suite's own helper
and through each consumer that renders it (TRL SFT, TRL GRPO, lm-eval HFLM); and the Llama 3
date stamp pinned.

What Qwen3's template renders (enable_thinking false, the suite's default):
  generation prompt  ...<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n   (an EMPTY think block)
  prompt + answer    ...<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n{answer}<|im_end|>\\n
so the SFT target is the answer alone and the empty block sits in the (unscored) prompt; with
enable_thinking true the generation prompt stops at "assistant\\n" (the model opens <think>
itself) while the training conversation still carries the empty block, which then becomes part
of the target: SFT would teach "never think" under a prompt that asks for thinking.
"""

from __future__ import annotations

import functools

import pytest
import torch

from edco import prompts
from edco.prompts import PINNED_DATE, chat_messages, chat_template_kwargs, completion_text, render_chat, sft_texts

RECORD = {"id": "r1", "question": "Which radio is a mesh protocol?",
          "options": {"A": "Bluetooth", "B": "Zigbee", "C": "Wi-Fi"}, "answer": "B"}
USER = ("<|im_start|>user\nWhich radio is a mesh protocol?\nA. Bluetooth\nB. Zigbee\nC. Wi-Fi\n"
        f"{prompts.ANSWER_INSTRUCTION}<|im_end|>\n")
EMPTY_THINK = "<think>\n\n</think>\n\n"
NO_THINKING = chat_template_kwargs({"enable_thinking": False})
THINKING = chat_template_kwargs({"enable_thinking": True})


@functools.cache
def _qwen3_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


@pytest.fixture
def qwen3(shared_root):
    return _qwen3_tokenizer(str(shared_root / "tokenizers" / "qwen3"))


@pytest.fixture
def tiny_qwen3(qwen3):
    """A random one-layer Qwen3 on the real vocabulary: only the consumers' prompt rendering is tested."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(qwen3), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8, tie_word_embeddings=True,
                         eos_token_id=qwen3.eos_token_id, pad_token_id=qwen3.pad_token_id)
    return AutoModelForCausalLM.from_config(config)


def test_kwargs_turn_thinking_off_by_default_setting_and_pin_the_date():
    assert NO_THINKING == {"enable_thinking": False, "date_string": PINNED_DATE}
    assert THINKING["enable_thinking"] is True
    with pytest.raises(KeyError):  # the schema fills the default; a missing key is a bug, not "off"
        chat_template_kwargs({})


def test_scoring_and_evaluation_prompt_ends_in_an_empty_think_block(qwen3):
    text = render_chat(qwen3, chat_messages(RECORD), NO_THINKING, add_generation_prompt=True)
    assert text == USER + "<|im_start|>assistant\n" + EMPTY_THINK
    # the model starts after a closed block: it is never left inside <think>
    assert text.count("<think>") == text.count("</think>") == 1


def test_thinking_prompt_only_when_asked(qwen3):
    text = render_chat(qwen3, chat_messages(RECORD), THINKING, add_generation_prompt=True)
    assert text == USER + "<|im_start|>assistant\n"


def test_sft_target_is_the_answer_alone_and_the_prompt_a_token_prefix(qwen3):
    prompt, target = sft_texts(qwen3, RECORD, NO_THINKING)
    assert prompt == render_chat(qwen3, chat_messages(RECORD), NO_THINKING, add_generation_prompt=True)
    assert target == completion_text(RECORD) + "<|im_end|>\n" == "Zigbee\nAnswer: B<|im_end|>\n"
    p_ids = qwen3(prompt, add_special_tokens=False)["input_ids"]
    ids = qwen3(prompt + target, add_special_tokens=False)["input_ids"]
    assert ids[: len(p_ids)] == p_ids  # TRL's completion mask starts exactly at the answer


def test_sft_target_with_thinking_on_would_teach_an_empty_think_block(qwen3):
    _, target = sft_texts(qwen3, RECORD, THINKING)
    assert target == EMPTY_THINK + "Zigbee\nAnswer: B<|im_end|>\n"


def test_trl_sft_tokenises_the_kwargs_column_as_the_suite_renders(qwen3, tiny_qwen3, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    # TRL 1.16 SFT has no config field: each row carries `chat_template_kwargs` (sft_trainer.py:1317).
    row = {"prompt": chat_messages(RECORD), "completion": [{"role": "assistant", "content": completion_text(RECORD)}],
           "chat_template_kwargs": NO_THINKING}
    args = SFTConfig(output_dir=str(tmp_path), max_length=512, completion_only_loss=True, use_cpu=True,
                     report_to=[])
    trainer = SFTTrainer(model=tiny_qwen3, args=args, train_dataset=Dataset.from_list([row]),
                         processing_class=qwen3)
    example = trainer.train_dataset[0]
    prompt, target = sft_texts(qwen3, RECORD, NO_THINKING)
    scored = [label != -100 for label in example["labels"]]  # TRL's completion-only labels
    assert qwen3.decode([t for t, s in zip(example["input_ids"], scored) if not s]) == prompt
    assert qwen3.decode([t for t, s in zip(example["input_ids"], scored) if s]) == target


def test_trl_grpo_rollout_prompts_carry_the_kwargs(qwen3, tiny_qwen3, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(tmp_path), chat_template_kwargs=NO_THINKING, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=4, use_cpu=True, report_to=[])
    trainer = GRPOTrainer(model=tiny_qwen3, reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
                          args=args, train_dataset=Dataset.from_list([{"prompt": chat_messages(RECORD)}]),
                          processing_class=qwen3)
    # grpo_trainer.py:1745: every rollout prompt (HF generate and the vLLM engine alike) is
    # tokenised here, with GRPOConfig.chat_template_kwargs
    prompt_ids, _, _ = trainer._tokenize_prompts([chat_messages(RECORD)])
    expected = render_chat(qwen3, chat_messages(RECORD), NO_THINKING, add_generation_prompt=True)
    assert qwen3.decode(prompt_ids[0]) == expected


def test_lm_eval_hflm_renders_the_same_evaluation_prompt(qwen3, tiny_qwen3):
    from lm_eval.models.huggingface import HFLM

    # lm-eval 0.4.13: HFLM(enable_thinking=...) joins chat_template_args (huggingface.py:404)
    lm = HFLM(pretrained=tiny_qwen3, tokenizer=qwen3, batch_size=1, device="cpu",
              enable_thinking=NO_THINKING["enable_thinking"], chat_template_args={"date_string": PINNED_DATE})
    assert lm.apply_chat_template(chat_messages(RECORD)) == \
        render_chat(qwen3, chat_messages(RECORD), NO_THINKING, add_generation_prompt=True)


# Llama 3.x official templates open with this date logic (no Llama 3.2 template is staged, so the
# header is rebuilt here around the real Llama 3 tokenizer: the logic, not the file, is tested).
LLAMA_DATE_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
    "{%- set date_string = strftime_now('%d %b %Y') %}{%- else %}{%- set date_string = '26 Jul 2024' %}"
    "{%- endif %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December 2023\\n'"
    " + 'Today Date: ' + date_string + '\\n\\n<|eot_id|>' }}"
    "{%- for m in messages %}{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
    " + m['content'] + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def test_llama3_date_stamp_is_pinned(shared_root):
    import datetime

    from edco.models import _load_llama3_tiktoken

    tok = _load_llama3_tiktoken(shared_root / "tokenizers" / "llama3")
    tok.chat_template = LLAMA_DATE_TEMPLATE
    messages = chat_messages(RECORD)
    unpinned = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    today = datetime.datetime.now().strftime("%d %b %Y")
    assert f"Today Date: {today}\n" in unpinned  # without the pin the prompt changes every day
    pinned = render_chat(tok, messages, NO_THINKING, add_generation_prompt=True)
    assert f"Today Date: {PINNED_DATE}\n" in pinned and pinned.replace(PINNED_DATE, today) == unpinned


# --------------------------------------------------------------------------- the suite's own consumers
# The same template rendered through the code paths a run takes, with the model's config entry
# (models.<m>.enable_thinking filled by the schema: false) and with thinking turned on.
def model_entry(thinking: bool) -> dict:
    from edco.config import section_defaults

    return {**section_defaults("models", "*"), "source": "hub", "arch": "qwen3", "hub_id": "Qwen/Qwen3-4B",
            "enable_thinking": thinking}


def generation_prompt(thinking: bool) -> str:
    return USER + "<|im_start|>assistant\n" + ("" if thinking else EMPTY_THINK)


def test_schema_default_turns_thinking_off():
    assert model_entry(False) == {**model_entry(True), "enable_thinking": False}
    from edco.config import section_defaults

    assert section_defaults("models", "*")["enable_thinking"] is False


@pytest.mark.parametrize("thinking", [False, True], ids=["default", "asked"])
def test_estimator_prompts_full_teacher_forced_and_perplexity(qwen3, thinking):
    from edco import estimator

    kwargs = chat_template_kwargs(model_entry(thinking))
    for kind in ("full", "teacher_forced", "perplexity"):
        assert qwen3.decode(estimator.prompt_ids(qwen3, RECORD, kind, kwargs)) == generation_prompt(thinking)
    assert "<think>" not in qwen3.decode(estimator.prompt_ids(qwen3, RECORD, "prefix", kwargs))  # raw text


def test_vllm_scoring_requests_carry_the_same_ids(qwen3):
    """vLLM gets token ids rendered here, never a chat to render itself (edco.estimator)."""
    from types import SimpleNamespace

    from edco import estimator
    from edco.config import section_defaults

    sent = []

    class Engine:
        def generate(self, requests, params, use_tqdm=True):
            sent.extend(r["prompt_token_ids"] for r in requests)
            answer = SimpleNamespace(token_ids=[qwen3.eos_token_id], logprobs=[{0: SimpleNamespace(logprob=0.0)}])
            return [SimpleNamespace(outputs=[answer], prompt_logprobs=None) for _ in requests]

    cfg = {**section_defaults("estimator"), "backend": "vllm", "entropy": "top20"}
    estimator.vllm_token_entropies(Engine(), qwen3, [RECORD], cfg, "full", 0, False,
                                   sampling_params=lambda **kw: SimpleNamespace(**kw),
                                   template_kwargs=chat_template_kwargs(model_entry(False)))
    assert qwen3.decode(sent[0]) == generation_prompt(False)


@pytest.mark.parametrize("thinking", [False, True], ids=["default", "asked"])
def test_sft_trainer_targets_follow_the_generation_prompt(qwen3, tiny_qwen3, tmp_path, thinking):
    from edco.config import section_defaults
    from edco.trainer import make_sft_trainer

    sft = make_sft_trainer(tiny_qwen3, qwen3, [RECORD], section_defaults("sft"), 0, "cpu", str(tmp_path),
                           model_entry(thinking))
    example = sft.train_dataset[0]
    scored = [label != -100 for label in example["labels"]]
    prompt = qwen3.decode([t for t, s in zip(example["input_ids"], scored) if not s])
    target = qwen3.decode([t for t, s in zip(example["input_ids"], scored) if s])
    assert (prompt, target) == sft_texts(qwen3, RECORD, chat_template_kwargs(model_entry(thinking)))
    assert prompt == generation_prompt(thinking)
    assert ("<think>" in target) is thinking  # asked to think, SFT would teach an empty block (see the docstring)


@pytest.mark.parametrize("thinking", [False, True], ids=["default", "asked"])
def test_grpo_trainer_rollout_prompts(qwen3, tiny_qwen3, tmp_path, thinking):
    from edco.config import section_defaults
    from edco.trainer import make_grpo_trainer

    rl = {**section_defaults("rl"), "per_device_train_batch_size": 2, "num_generations": 2,
          "max_completion_length": 4, "max_steps": 1}
    grpo = make_grpo_trainer(tiny_qwen3, qwen3, [RECORD], rl, 0, "cpu", str(tmp_path / "o"), model_entry(thinking))
    prompt_ids, _, _ = grpo._tokenize_prompts([chat_messages(RECORD)])
    assert qwen3.decode(prompt_ids[0]) == generation_prompt(thinking)


@pytest.mark.parametrize("thinking", [False, True], ids=["default", "asked"])
def test_lm_eval_prompts(qwen3, tiny_qwen3, thinking):
    from edco.config import section_defaults
    from edco.evaluate import make_lm

    config = {"evaluate": section_defaults("evaluate"), "compute": section_defaults("compute"),
              "models": {"m": model_entry(thinking)}}
    assert make_lm(tiny_qwen3, qwen3, config, "m").apply_chat_template(chat_messages(RECORD)) == \
        generation_prompt(thinking)
