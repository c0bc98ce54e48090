"""What does a policy write before (or after) GRPO rewards it? Sampled answers to the first
questions of a data file, and whether they even name the question's entity.

    .venv/bin/python benchmarks/sample_answers.py --model results/cpu_study/models/qwen3/seed0 \\
        --data results/cpu_study/data/law/train.jsonl --questions 3 --samples 6

Samples ``--samples`` answers per question at ``--temperature`` (the chat prompt GRPO rolls
out from), prints each with its parsed letter, and counts how many are right and how many
name an entity of the reference explanation ("Facts: lamton is 1." names lamton). In the
smoke world a rollout that names another entity earns its reward by luck, so GRPO has
nothing question-specific to reinforce (results/reference/cpu_study/README.md, GRPO).
Writes the counts and texts to ``--out`` (JSON, atomically) when given.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edco import io, models  # noqa: E402
from edco.prompts import chat_messages, parse_answer  # noqa: E402

FACT = re.compile(r"(\w+) is \d")  # "lamton is 1" in a smoke-world explanation


def reference_entities(record: dict) -> set[str]:
    """Entities the reference explanation states facts about (empty outside the smoke world)."""
    return set(FACT.findall(record.get("explanation", "")))


def names_reference_entity(text: str, record: dict) -> bool:
    """Does the answer state a fact about one of the question's own entities?"""
    return bool(set(FACT.findall(text)) & reference_entities(record))


def sample_texts(model, tokenizer, record: dict, samples: int, temperature: float, max_new_tokens: int) -> list[str]:
    enc = tokenizer.apply_chat_template(chat_messages(record), add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                             max_new_tokens=max_new_tokens, num_return_sequences=samples,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def sample_answers(model_dir: str, data: str, questions: int, samples: int, temperature: float,
                   max_new_tokens: int, seed: int) -> dict:
    model, tokenizer = models.load_model_from(model_dir, "cpu", "float32")
    model.eval()
    torch.manual_seed(seed)
    rows = []
    for record in io.read_jsonl(data)[:questions]:
        texts = sample_texts(model, tokenizer, record, samples, temperature, max_new_tokens)
        rows.append({"id": record["id"], "question": record["question"], "answer": record["answer"],
                     "explanation": record.get("explanation", ""),
                     "samples": [{"text": t, "letter": parse_answer(t),
                                  "names_entity": names_reference_entity(t, record)} for t in texts]})
    every = [s for row in rows for s in row["samples"]]
    return {"model": model_dir, "data": data, "temperature": temperature, "seed": seed,
            "samples": len(every),
            "right_letter": sum(s["letter"] == row["answer"] for row in rows for s in row["samples"]),
            "names_entity": sum(s["names_entity"] for s in every),
            "distinct_texts": len({s["text"] for s in every}),
            "questions": rows}


def print_report(result: dict) -> None:
    for row in result["questions"]:
        print(f"{row['id']}: {row['question']}  (answer {row['answer']}; {row['explanation']})")
        for s in row["samples"]:
            print(f"    {s['text']!r:60s} -> {s['letter']}{'' if s['names_entity'] else '   (another entity)'}")
    print(f"{result['samples']} samples: {result['right_letter']} right letter, {result['names_entity']} name "
          f"the question's entity, {result['distinct_texts']} distinct texts")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a saved model directory (base model or a run's final/)")
    parser.add_argument("--data", required=True, help="a JSONL data file (the data contract)")
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--samples", type=int, default=6, help="answers per question")
    parser.add_argument("--temperature", type=float, default=1.0, help="GRPO's rollout temperature (paper 1.0)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = sample_answers(args.model, args.data, args.questions, args.samples, args.temperature,
                            args.max_new_tokens, args.seed)
    print_report(result)
    if args.out:
        io.write_json(Path(args.out), result)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
