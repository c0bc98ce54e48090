"""Does the smoke world have a difficulty ladder? Accuracy per level, before and after SFT.

    .venv/bin/python benchmarks/smoke_world.py --config config/smoke.yaml
    .venv/bin/python benchmarks/smoke_world.py --config config/smoke.yaml --models qwen3 --domains law --seeds 0 1

For each model of the grid: build + base-pretrain it (or load results/<run>/models/<model>
when a complete one is there), then greedy-evaluate it on a held-out general sample and on
every domain's test split (chat prompt, ``edco.prompts.parse_answer``); then, per domain and
seed, fine-tune a copy with the *random* curriculum exactly as the config's SFT budget says
(rounds x N samples, num_train_epochs passes in a fixed order, constant LR, fresh AdamW each
round) and evaluate again. Prints a table and writes it, with wall-clock and CPU seconds of
every phase, to results/<run>/benchmarks/smoke_world.json (atomically).

SFT runs in ``edco.models.train_steps`` (same loss, optimiser defaults and order as the TRL
trainer, but the LM head only on completion tokens); ``--trainer trl`` uses the suite's real
trainer (``edco.trainer.train_sft``) instead, to measure what a grid run costs.
One torch thread (``compute.threads``) so the other core stays free; on a shared machine
compare the CPU seconds, which load on the other core barely changes.
"""

from __future__ import annotations

import argparse
import copy
import logging
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edco import io, layout, models, synthetic  # noqa: E402
from edco.config import load_config, round_budget  # noqa: E402
from edco.prompts import chat_messages, parse_answer, quick_answer_prompt  # noqa: E402

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


def greedy_texts(model, tokenizer, records: list[dict], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy answers to the chat prompt, batched with left padding."""
    tokenizer.padding_side = "left"
    texts = []
    try:
        for i in range(0, len(records), batch_size):
            chunk = records[i: i + batch_size]
            prompts = [tokenizer.apply_chat_template(chat_messages(r), add_generation_prompt=True, tokenize=False)
                       for r in chunk]
            enc = tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = "right"
    return texts


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


def accuracy_by_level(model, tokenizer, records: list[dict], config: dict) -> dict:
    ev = config["evaluate"]
    texts = greedy_texts(model, tokenizer, records, ev["max_gen_toks"], ev["batch_size"])
    hits = defaultdict(list)
    for record, text in zip(records, texts):
        hits[record["difficulty"]].append(parse_answer(text) == record["answer"])
    by_level = {str(k): round(sum(v) / len(v), 3) for k, v in sorted(hits.items())}
    by_level["all"] = round(sum(sum(v) for v in hits.values()) / len(records), 3)
    return by_level


def random_sft(model, tokenizer, pool: list[dict], config: dict, seed: int, trainer: str, name: str) -> int:
    """The random strategy's rounds (as baselines/random.py draws them); returns optimiser steps."""
    (rounds, n), sft = round_budget(config, "sft", name), config["sft"]
    by_id = {r["id"]: r for r in pool}
    steps = 0
    for r in range(1, rounds + 1):
        ids = random.Random(f"random-{seed}-{r}").sample(sorted(by_id), n)
        chosen = [by_id[i] for i in ids]
        if trainer == "trl":
            from edco.trainer import train_sft

            steps += len(train_sft(model, tokenizer, chosen, sft, seed * 1000 + r, "cpu", config["models"][name]))
            continue
        examples = [models.encode_chat(tokenizer, rec) for rec in chosen]
        per_step = sft["per_device_train_batch_size"] * sft["gradient_accumulation_steps"]
        order = [list(range(i, min(i + per_step, n))) for i in range(0, n, per_step)]
        losses = models.train_steps(model, examples, order * sft["num_train_epochs"],
                                    learning_rate=sft["learning_rate"], schedule="constant",
                                    weight_decay=sft["weight_decay"], pad_id=tokenizer.pad_token_id,
                                    progress=False, log_every=0)
        steps += len(losses)
    return steps


def base_model(config: dict, name: str, general: list[dict], domain_train: list[dict], rebuild: bool):
    path = layout.model_dir(config["run"], name)
    if models.is_complete(path) and not rebuild:
        manifest = io.read_json(path / models.MANIFEST)
        if manifest.get("config") == config["models"][name]:
            model, tokenizer = models.load_model_from(path, "cpu", config["models"][name]["dtype"])
            print(f"[{name}] loaded {path} (pretrained in {manifest.get('pretrain_seconds')} s)")
            return model, tokenizer, manifest, None
        print(f"[{name}] {path} was built from another models.{name} config: building afresh")
    with Clock() as clock:
        model, tokenizer, manifest = models.build_base_model(config, name, general, domain_train, progress=False)
    print(f"[{name}] built + pretrained: {manifest['params']:,} params, vocab {manifest['vocab']}, "
          f"{clock.wall:.1f} s wall / {clock.cpu:.1f} s cpu, final loss {manifest['final_loss']:.3f}")
    return model, tokenizer, manifest, clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/smoke.yaml")
    parser.add_argument("--models", nargs="*", help="default: grid.models")
    parser.add_argument("--domains", nargs="*", help="default: grid.domains")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="SFT seeds (default 0)")
    parser.add_argument("--rebuild", action="store_true", help="build base models even if saved ones exist")
    parser.add_argument("--trainer", choices=["loop", "trl"], default="loop")
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

    report = {"config": args.config, "overrides": args.set, "run": config["run"], "threads": threads, "trainer": args.trainer,
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
                 "base": {}, "sft": {}}
        with Clock() as c:
            entry["base"]["general"] = accuracy_by_level(model, tokenizer, held_out, config)
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
        for domain in domains:
            with Clock() as c:
                entry["base"][domain] = accuracy_by_level(model, tokenizer, data[domain][1], config)
            rows.append((name, domain, "base", entry["base"][domain], c))
            print_row(*rows[-1])
        base_state = copy.deepcopy(model.state_dict())
        for domain in domains:
            train, test = data[domain]
            for seed in args.seeds:
                model.load_state_dict(base_state)
                with Clock() as train_clock:
                    steps = random_sft(model, tokenizer, train, config, seed, args.trainer, name)
                with Clock() as c:
                    acc = accuracy_by_level(model, tokenizer, test, config)
                entry["sft"].setdefault(domain, {})[str(seed)] = {
                    "accuracy": acc, "steps": steps, "train_seconds": train_clock.as_dict(),
                    "eval_seconds": c.as_dict()}
                rows.append((name, domain, f"sft s{seed}", acc, train_clock))
                print_row(*rows[-1])
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
    print(f"[{name}] {where:<13} {phase:<7} {levels}  all={acc['all']:.2f}  ({clock.wall:.1f} s wall, {clock.cpu:.1f} s cpu)")


def print_table(rows, levels) -> None:
    head = f"{'model':<7} {'split':<13} {'phase':<7} " + " ".join(f"{'L' + str(k):>5}" for k in levels) + \
        f" {'all':>5} {'wall s':>7} {'cpu s':>7}"
    print("\n" + head + "\n" + "-" * len(head))
    for name, where, phase, acc, clock in rows:
        cells = " ".join(f"{acc.get(str(k), float('nan')):>5.2f}" for k in levels)
        print(f"{name:<7} {where:<13} {phase:<7} {cells} {acc['all']:>5.2f} {clock.wall:>7.1f} {clock.cpu:>7.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
