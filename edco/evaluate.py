"""Evaluation through lm-eval on the suite's own task YAMLs (edco/tasks/edco_mcq/, package data).

Two modes (config ``evaluate.modes``): ``generate`` — chat template, greedy, the last
"Answer: X" parsed, as the paper evaluates; ``loglikelihood`` — the most likely option
letter, raw text. Only the *test* split is ever evaluated. Per-question results are kept
so that statistics can pair strategies over the same questions.

    python -m edco evaluate --config config/smoke.yaml --domain law --model qwen3 \
        --checkpoint results/smoke/runs/law/qwen3/sft/random/seed0/final \
        --out results/smoke/eval/law/qwen3/sft/random/seed0.json
    # --checkpoint base  evaluates the base model (round 0, no fine-tuning)
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import time
from collections import defaultdict
from pathlib import Path

from edco import io, layout
from edco.models import load_model, load_model_from
from edco.prompts import INVALID, chat_template_kwargs

log = logging.getLogger("edco.evaluate")

# Package data: found in an installed wheel as in a checkout (lm-eval reads the files by path).
TASK_DIR = Path(str(importlib.resources.files("edco").joinpath("tasks").joinpath("edco_mcq")))
TASK_FILES = {"generate": "edco_mcq_gen.yaml", "loglikelihood": "edco_mcq_ll.yaml"}
# lm-eval reports "<metric>,<filter>": the generative task's filter is named "answer".
METRIC = {"generate": "exact_match,answer", "loglikelihood": "acc,none"}


def task_config(mode: str, domain: str, test_file: Path, max_gen_toks: int) -> dict:
    """The mode's task YAML with this run's test file and a per-domain task name."""
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(TASK_DIR / TASK_FILES[mode], resolve_func=True)
    cfg["task"] = f"{cfg['task']}_{domain}"
    cfg["dataset_kwargs"] = {"data_files": {"test": str(Path(test_file).resolve())}}
    if mode == "generate":
        cfg["generation_kwargs"] = {**cfg["generation_kwargs"], "max_gen_toks": max_gen_toks}
    return cfg


def _per_question(samples: list[dict], mode: str) -> dict[str, dict]:
    """id -> {pred, correct} from lm-eval's logged samples; generative answers also keep the
    model's reply, so an unparseable one can be read."""
    out = {}
    for s in samples:
        doc = s["doc"]
        if mode == "generate":
            out[doc["id"]] = {"pred": s["filtered_resps"][0], "correct": bool(s["exact_match"]),
                              "reply": s["resps"][0][0]}
            continue
        letters = [k for k, v in doc["options"].items() if v is not None]
        lls = [r[0] for r in s["filtered_resps"]]
        out[doc["id"]] = {"pred": letters[max(range(len(lls)), key=lls.__getitem__)], "correct": bool(s["acc"])}
    return out


def unparsed_share(answers: dict[str, dict]) -> float:
    """Share of answers from which no option could be read (``pred`` None or ``[invalid]``,
    the generative task's fallback): a model that answers in a form the parser does not read
    scores 0 on those questions, which is a different finding from choosing wrong."""
    return sum(a["pred"] in (None, INVALID) for a in answers.values()) / max(1, len(answers))


def make_lm(model, tokenizer, config: dict, model_name: str):
    """lm-eval's HFLM over an in-memory model, rendering chat prompts with the model's chat-template
    arguments (thinking off unless configured, the Llama date pinned), as training and scoring do.
    They go in as ``chat_template_args`` (HFLM hands them to every ``apply_chat_template``), not as
    HFLM's own ``enable_thinking``, which would refuse the log-likelihood mode; that mode is raw
    text, and a generated think block is stripped by the answer parser (edco.prompts.clean_reply)."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=config["evaluate"]["batch_size"],
                device=config["compute"]["device"],
                chat_template_args=chat_template_kwargs(config["models"][model_name]))


@contextlib.contextmanager
def _without_environment_report():
    """lm-eval's ``simple_evaluate`` ends by recording the environment: the git hash and
    ``torch.utils.collect_env`` (``pip list``, ``nvidia-smi``, ... in subprocesses), ~1.4 s
    of every call, longer than evaluating a tiny model; the smoke grid makes ~150 calls.
    The suite never reads those fields (its results record the config), so skip them."""
    import lm_eval.evaluator as evaluator

    saved = evaluator.add_env_info, evaluator.get_git_commit_hash
    evaluator.add_env_info, evaluator.get_git_commit_hash = (lambda storage: None), (lambda: None)
    try:
        yield
    finally:
        evaluator.add_env_info, evaluator.get_git_commit_hash = saved


def evaluate_model(model, tokenizer, config: dict, model_name: str, domain: str, test_file: Path) -> dict:
    """Run every configured mode on ``test_file``; return summary + per-question results."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    ecfg = config["evaluate"]
    lm = make_lm(model, tokenizer, config, model_name)
    rows = {r["id"]: r for r in io.read_jsonl(test_file)}
    per_question: dict[str, dict] = {qid: {"id": qid, "difficulty": r.get("difficulty")} for qid, r in rows.items()}
    summary = {}
    # Our tasks come as dicts: skip indexing lm-eval's thousands of built-in YAMLs (~10 s).
    task_manager = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
    for mode in ecfg["modes"]:
        t0 = time.perf_counter()
        task = task_config(mode, domain, test_file, ecfg["max_gen_toks"])
        with _without_environment_report():
            result = lm_eval.simple_evaluate(
                model=lm, tasks=[task], limit=ecfg["limit"], log_samples=True,
                apply_chat_template=(mode == "generate"), bootstrap_iters=0, task_manager=task_manager,
                random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
            )
        name = task["task"]
        answers = _per_question(result["samples"][name], mode)
        for qid, ans in answers.items():
            per_question[qid][mode] = ans
        summary[mode] = {
            "accuracy": result["results"][name][METRIC[mode]],
            "n": len(answers),
            "unparsed": unparsed_share(answers),
            "seconds": time.perf_counter() - t0,
            "per_level": _accuracy_per_level(answers, rows),
        }
        log.info("%s %s: accuracy %.3f on %d questions (%.0f %% unparseable)", domain, mode,
                 summary[mode]["accuracy"], len(answers), 100 * summary[mode]["unparsed"])
    evaluated = [q for q in per_question.values() if any(m in q for m in ecfg["modes"])]
    return {"summary": summary, "questions": evaluated}


def _accuracy_per_level(answers: dict[str, dict], rows: dict[str, dict]) -> dict[str, float]:
    by_level = defaultdict(list)
    for qid, ans in answers.items():
        level = rows[qid].get("difficulty")
        if level is not None:
            by_level[str(level)].append(ans["correct"])
    return {lvl: sum(v) / len(v) for lvl, v in sorted(by_level.items())}


def evaluate_to_file(config: dict, domain: str, model_name: str, checkpoint: str, out: str | Path,
                     base: str = layout.SHARED_BASE) -> Path:
    """Evaluate ``checkpoint`` (a directory, or ``base``: base model ``base``, "shared" or
    "seed<s>") on ``domain``'s test split; write ``out``."""
    device = config["compute"]["device"]
    if checkpoint == "base":
        model, tokenizer = load_model(config, model_name, device, base=base)
    else:
        model, tokenizer = load_model_from(checkpoint, device, config["models"][model_name]["dtype"])
    test_file = layout.data_file(config["run"], domain, "test")
    log.info("evaluating %s (%s) on %s -> %s", model_name, checkpoint, test_file, out)
    report = evaluate_model(model, tokenizer, config, model_name, domain, test_file)
    report.update({"domain": domain, "model": model_name, "checkpoint": checkpoint,
                   **({"base": base} if checkpoint == "base" else {})})
    io.write_json(out, report)
    return Path(out)
