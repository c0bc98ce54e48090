"""Does the smoke world have a difficulty ladder? Accuracy per level, before and after SFT.

    .venv/bin/python benchmarks/smoke_world.py --config config/smoke.yaml
    .venv/bin/python benchmarks/smoke_world.py --config config/smoke.yaml --models qwen3 --domains law --seeds 0 1

For each model of the grid: build + base-pretrain it (``edco.trainer.pretrain``, or load the one
this benchmark saved for the same model config and world, under
results/<run>/benchmarks/base_models/), then evaluate it on a held-out general sample and on
every domain's test split with the suite's evaluation (``edco.evaluate``, generate mode: chat
prompt, greedy, the reply parsed as a run's evaluation parses it); then, per domain and seed,
fine-tune a copy with the *random* curriculum exactly as the config's SFT budget says, through
the suite's trainer (``edco.trainer.train_sft``: rounds x N samples, fresh optimiser each
round) and evaluate again. Prints a table and writes it, with wall-clock and CPU seconds of
every phase, to results/<run>/benchmarks/smoke_world.json (atomically).

``--paradigms sft rl`` adds GRPO with the random curriculum (the suite's trainer,
``edco.trainer.train_grpo``, with the config's ``rl`` budget). ``--names Q S`` samples S answers
(temperature 1, as GRPO rolls out) to each domain's first Q training questions from the base
model and counts those that name the question's entity (benchmarks/sample_answers.py): a
base model that does not is one GRPO cannot teach (results/reference/cpu_study/grpo_diagnosis).
One torch thread (``compute.threads``) so the other core stays free; on a shared machine
compare the CPU seconds, which load on the other core barely changes.
"""

from __future__ import annotations

import argparse
import copy
import logging
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sample_answers import names_reference_entity, sample_texts  # noqa: E402
from edco import io, layout, models, synthetic  # noqa: E402
from edco.config import load_config, round_budget  # noqa: E402
from edco.evaluate import evaluate_model  # noqa: E402
from edco.trainer.grpo import train_grpo  # noqa: E402
from edco.trainer.pretrain import build_base_model  # noqa: E402
from edco.trainer.sft import train_sft  # noqa: E402
from edco.prompts import parse_answer, quick_answer_prompt  # noqa: E402

FACT_NAME = re.compile(r"(\w+) is \d")  # "lamton is 1": a recalled fact names lamton
GENERAL_EVAL_SIZE = 300  # fresh general questions (same entities, new draws): the base model's check


class Clock:
    """Wall-clock and process CPU seconds of a phase."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def as_dict(self) -> dict:
        return {"wall": round(self.wall, 2), "cpu": round(self.cpu, 2)}


def quick_texts(model, tokenizer, records: list[dict], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers to the raw quick-answer prompt (the prefix estimator's input)."""
    tokenizer.padding_side = "left"
    texts = []
    try:
        for i in range(0, len(records), batch_size):
            enc = tokenizer([quick_answer_prompt(r) for r in records[i: i + batch_size]], padding=True,
                            return_tensors="pt")
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = "right"
    return texts


def quick_answer_check(model, tokenizer, records: list[dict], config: dict) -> dict:
    """Share of quick answers that end in a parseable "Answer: X", and their accuracy: the base
    model must have learned the format the prefix estimator samples from."""
    texts = quick_texts(model, tokenizer, records, 32, config["evaluate"]["batch_size"])
    letters = [parse_answer(t) for t in texts]
    return {"parsed": round(sum(x is not None for x in letters) / len(records), 3),
            "accuracy": round(sum(x == r["answer"] for x, r in zip(letters, records)) / len(records), 3),
            "example": texts[-1]}


def accuracy_by_level(model, tokenizer, records: list[dict], config: dict, name: str,
                      examples: dict | None = None) -> dict:
    """Accuracy per level and overall through the suite's evaluation (``edco.evaluate``, generate
    mode, as a run's evaluation); ``examples`` (if given) gets the first reply of every level and
    the share of replies naming the question's entity."""
    settings = {**config, "evaluate": {**config["evaluate"], "modes": ["generate"], "limit": None}}
    with tempfile.TemporaryDirectory(prefix="smoke-world-") as tmp:
        questions = Path(tmp) / "questions.jsonl"
        io.write_jsonl(questions, records)
        report = evaluate_model(model, tokenizer, settings, name, "smoke_world", questions)
    answers = {q["id"]: q["generate"] for q in report["questions"]}
    texts = [answers[r["id"]]["reply"] for r in records]
    hits = defaultdict(list)
    for record, text in zip(records, texts):
        hits[record["difficulty"]].append(answers[record["id"]]["correct"])
        if examples is not None:
            examples.setdefault(f"L{record['difficulty']}", text)
    if examples is not None:
        examples["names_entity"] = round(sum(names_reference_entity(t, r) for t, r in zip(texts, records)) / len(records), 3)
        examples["names_in_order"] = names_in_order(texts, records)
    by_level = {str(k): round(sum(v) / len(v), 3) for k, v in sorted(hits.items())}
    by_level["all"] = round(sum(sum(v) for v in hits.values()) / len(records), 3)
    return by_level


def names_in_order(texts: list[str], records: list[dict]) -> dict[str, float]:
    """Per level, the share of answers whose recalled facts name exactly the question's
    entities in the reference order (what a chain needs before any value can be right)."""
    ok = defaultdict(list)
    for text, record in zip(texts, records):
        ok[f"L{record['difficulty']}"].append(FACT_NAME.findall(text) == FACT_NAME.findall(record["explanation"]))
    return {level: round(sum(v) / len(v), 3) for level, v in sorted(ok.items())}


def sft_round(model, tokenizer, chosen: list[dict], config: dict, seed: int, name: str) -> list[dict]:
    """One SFT round on ``chosen`` in order (the suite's trainer); one log row per optimiser step."""
    return train_sft(model, tokenizer, chosen, config["sft"], seed, "cpu", config["models"][name])


def grpo_round(model, tokenizer, chosen: list[dict], config: dict, seed: int, name: str) -> list[dict]:
    """One GRPO round with the suite's trainer (TRL); one log row per optimiser step."""
    return train_grpo(model, tokenizer, chosen, config["rl"], seed, "cpu", config["models"][name])


def random_rounds(model, tokenizer, pool: list[dict], test: list[dict], config: dict, seed: int, paradigm: str,
                  name: str, curve: bool) -> dict:
    """The random strategy's rounds (as baselines/random.py draws them): optimiser steps, and
    for GRPO the mean reward of the first and last quarter of the steps; with ``curve`` the
    test accuracy after every round (the learning curve at the budgets of 1..R rounds)."""
    rounds, n = round_budget(config, paradigm, name)
    by_id = {r["id"]: r for r in pool}
    train_round = sft_round if paradigm == "sft" else grpo_round
    logs, points = [], []
    for r in range(1, rounds + 1):
        chosen = [by_id[i] for i in random_ids(pool, n, seed, r)]
        logs += train_round(model, tokenizer, chosen, config, seed * 1000 + r, name)
        if curve and r < rounds:
            points.append({"round": r, "steps": len(logs), "accuracy": accuracy_by_level(model, tokenizer, test, config, name)})
    out = {"steps": len(logs), "curve": points}
    if paradigm == "rl":
        rewards = [row.get("reward", float("nan")) for row in logs]
        quarter = max(1, len(rewards) // 4)
        out.update(reward_first=round(sum(rewards[:quarter]) / quarter, 3),
                   reward_last=round(sum(rewards[-quarter:]) / quarter, 3))
    return out


def random_ids(pool: list[dict], n: int, seed: int, r: int) -> list[str]:
    """Round r's selection of the random strategy (as baselines/random.py draws it)."""
    return random.Random(f"random-{seed}-{r}").sample(sorted(r["id"] for r in pool), n)


def naming(model, tokenizer, records: list[dict], samples: int, seed: int) -> dict:
    """Sampled answers (temperature 1) that name the question's entity, and right letters."""
    torch.manual_seed(seed)
    named = right = total = 0
    for record in records:
        for text in sample_texts(model, tokenizer, record, samples, 1.0, 48):
            named += names_reference_entity(text, record)
            right += parse_answer(text) == record["answer"]
            total += 1
    return {"names_entity": round(named / total, 3), "right_letter": round(right / total, 3), "samples": total,
            "example": text}


def base_cache_dir(config: dict, name: str) -> Path:
    """Where this benchmark keeps a base model it built: keyed by everything the model depends
    on (models.<name>, the synthetic world, the grid's domains), so another world never
    reuses it (the run's own results/<run>/models/ says nothing about the world it saw)."""
    import hashlib
    import json

    key = {"model": config["models"][name], "synthetic": config["data"]["synthetic"], "domains": config["grid"]["domains"]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return layout.run_root(config["run"]) / "benchmarks" / "base_models" / f"{name}-{digest}"


def base_model(config: dict, name: str, general: list[dict], domain_train: list[dict], rebuild: bool):
    path = base_cache_dir(config, name)
    if models.is_complete(path) and not rebuild:
        manifest = io.read_json(path / models.MANIFEST)
        model, tokenizer = models.load_model_from(path, "cpu", "float32")
        print(f"[{name}] loaded {path} (pretrained in {manifest.get('pretrain_seconds')} s)")
        return model, tokenizer, manifest, None
    with Clock() as clock:
        model, tokenizer, manifest = build_base_model(config, name, general, domain_train, progress=False)
    models.save_model(model, tokenizer, path, manifest)
    print(f"[{name}] built + pretrained: {manifest['params']:,} params, vocab {manifest['vocab']}, "
          f"{clock.wall:.1f} s wall / {clock.cpu:.1f} s cpu, final loss {manifest['final_loss']:.3f} -> {path}")
    return model, tokenizer, manifest, clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/smoke.yaml")
    parser.add_argument("--models", nargs="*", help="default: grid.models")
    parser.add_argument("--domains", nargs="*", help="default: grid.domains")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="SFT seeds (default 0)")
    parser.add_argument("--rebuild", action="store_true",
                        help="build base models even if this benchmark saved ones for the same config")
    parser.add_argument("--paradigms", nargs="*", choices=["sft", "rl"], default=["sft"])
    parser.add_argument("--curve", action="store_true",
                        help="also evaluate after every round (train time then includes those evaluations)")
    parser.add_argument("--names", nargs=2, type=int, metavar=("Q", "S"),
                        help="sample S answers to each domain's first Q training questions from the base model")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. curriculum.rounds=3 sft.num_train_epochs=16 "
                             "(YAML values; the result is validated like a config file)")
    parser.add_argument("--out", help="default: results/<run>/benchmarks/smoke_world.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show up in a log file as they happen

    config = with_overrides(load_config(args.config), args.set)
    if config["data"]["source"] != "synthetic":
        raise SystemExit(f"{args.config}: data.source must be 'synthetic' for the smoke-world benchmark")
    threads = config["compute"]["threads"]
    torch.set_num_threads(threads)
    syn = config["data"]["synthetic"]
    domains = args.domains or config["grid"]["domains"]
    names = args.models or config["grid"]["models"]

    with Clock() as data_clock:
        general = synthetic.generate_general(syn)
        data = {d: synthetic.generate_domain(syn, d) for d in config["grid"]["domains"]}
        held_out = synthetic.generate_general({**syn, "general_size": GENERAL_EVAL_SIZE}, sample="heldout")
    domain_train = [r for d in config["grid"]["domains"] for r in data[d][0]]
    out = Path(args.out) if args.out else layout.run_root(config["run"]) / "benchmarks" / "smoke_world.json"

    report = {"config": args.config, "overrides": args.set, "run": config["run"], "threads": threads,
              "seeds": args.seeds, "sft": config["sft"], "curriculum": config["curriculum"],
              "synthetic": syn, "data_seconds": data_clock.as_dict(), "models": {}}
    rows = []
    for name in names:
        model, tokenizer, manifest, clock = base_model(config, name, general, domain_train, args.rebuild)
        entry = {"params": manifest.get("params"), "vocab": manifest.get("vocab"),
                 "pretrain_steps": manifest.get("pretrain_steps"), "final_loss": manifest.get("final_loss"),
                 "pretrain_loop_seconds": {"wall": manifest.get("pretrain_seconds"),
                                           "cpu": manifest.get("pretrain_cpu_seconds")},
                 "build_seconds": clock.as_dict() if clock else {"loaded": True,
                                                                  "pretrain": manifest.get("pretrain_seconds")},
                 "base": {}}
        with Clock() as c:
            entry["base"]["general"] = accuracy_by_level(model, tokenizer, held_out, config, name)
        entry["eval_general_seconds"] = c.as_dict()
        entry["base_quick_answer"] = {"general": quick_answer_check(model, tokenizer, held_out, config)}
        for domain in domains:
            entry["base_quick_answer"][domain] = quick_answer_check(model, tokenizer, data[domain][1], config)
        print(f"[{name}] quick-answer format (parsed / accuracy): " + ", ".join(
            f"{k} {v['parsed']:.2f}/{v['accuracy']:.2f}" for k, v in entry["base_quick_answer"].items()))
        rows.append((name, "general", "base", entry["base"]["general"], c))
        print_row(*rows[-1])
        # Every base evaluation before any fine-tuning: an ignorant model's answers are near-ties,
        # and those were seen to flip after a fine-tune + restore in the same process.
        entry["base_greedy"] = {}
        for domain in domains:
            examples = entry["base_greedy"][domain] = {}
            with Clock() as c:
                entry["base"][domain] = accuracy_by_level(model, tokenizer, data[domain][1], config, name, examples)
            rows.append((name, domain, "base", entry["base"][domain], c))
            print_row(*rows[-1])
            print(f"[{name}] {domain}: greedy base answers naming the question's entities in order {examples['names_in_order']}")
        if args.names:
            entry["base_names"] = {}
            for domain in domains:
                with Clock() as c:
                    entry["base_names"][domain] = naming(model, tokenizer, data[domain][0][: args.names[0]],
                                                         args.names[1], seed=0)
                entry["base_names"][domain]["seconds"] = c.as_dict()
                print(f"[{name}] {domain}: base answers naming the entity {entry['base_names'][domain]['names_entity']:.2f}, "
                      f"right letter {entry['base_names'][domain]['right_letter']:.2f} "
                      f"(e.g. {entry['base_names'][domain]['example']!r})")
        base_state = copy.deepcopy(model.state_dict())
        for paradigm in args.paradigms:
            entry.setdefault(paradigm, {})
            for domain in domains:
                train, test = data[domain]
                for seed in args.seeds:
                    model.load_state_dict(base_state)
                    with Clock() as train_clock:
                        trained = random_rounds(model, tokenizer, train, test, config, seed, paradigm,
                                                name, args.curve)
                    examples = {}
                    with Clock() as c:
                        acc = accuracy_by_level(model, tokenizer, test, config, name, examples)
                    entry[paradigm].setdefault(domain, {})[str(seed)] = {
                        "accuracy": acc, **trained, "greedy": examples, "train_seconds": train_clock.as_dict(),
                        "eval_seconds": c.as_dict()}
                    for point in trained["curve"]:
                        print_row(name, domain, f"{paradigm} s{seed} r{point['round']}", point["accuracy"], None)
                    rows.append((name, domain, f"{paradigm} s{seed}", acc, train_clock))
                    print_row(*rows[-1])
                    print(f"[{name}] {domain} {paradigm} s{seed}: names in order {examples['names_in_order']}"
                          + (f", reward {trained['reward_first']} -> {trained['reward_last']}" if paradigm == "rl" else ""))
        model.load_state_dict(base_state)
        report["models"][name] = entry
        io.write_json(out, report)  # after every model: a killed run keeps what it measured

    print_table(rows, config["data"]["synthetic"]["levels"])
    print(f"wrote {out}")
    return 0


def with_overrides(config: dict, pairs: list[str]) -> dict:
    """``a.b=value`` pairs applied to a loaded config, then validated again."""
    import yaml

    from edco.config import validate_config

    config = copy.deepcopy(config)
    for pair in pairs:
        key, _, value = pair.partition("=")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        value = yaml.safe_load(value)
        if isinstance(value, str):  # YAML 1.1 reads "2e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        node[leaf] = value
    return validate_config(config, "<config + --set>") if pairs else config


def print_row(name, where, phase, acc, clock) -> None:
    levels = "  ".join(f"L{k}={v:.2f}" for k, v in acc.items() if k != "all")
    timing = f"  ({clock.wall:.1f} s wall, {clock.cpu:.1f} s cpu)" if clock else ""
    print(f"[{name}] {where:<13} {phase:<7} {levels}  all={acc['all']:.2f}{timing}")


def print_table(rows, levels) -> None:
    head = f"{'model':<7} {'split':<13} {'phase':<7} " + " ".join(f"{'L' + str(k):>5}" for k in levels) + \
        f" {'all':>5} {'wall s':>7} {'cpu s':>7}"
    print("\n" + head + "\n" + "-" * len(head))
    for name, where, phase, acc, clock in rows:
        cells = " ".join(f"{acc.get(str(k), float('nan')):>5.2f}" for k in levels)
        print(f"{name:<7} {where:<13} {phase:<7} {cells} {acc['all']:>5.2f} {clock.wall:>7.1f} {clock.cpu:>7.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
