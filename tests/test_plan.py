"""The resource planner (edco/plan.py): exact model-state arithmetic checked against tensors
measured on CPU, the paper config's plan, and the refusal of one that does not fit."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edco import curriculum, plan
from edco.config import load_config, round_budget, schema
from edco.curriculum import (STEP_KEYS, Cost, Strategy, available_strategies, get_strategy, strategy_cost,
                             strategy_options)
from edco.errors import UserFacingError

REPO = Path(__file__).resolve().parents[1]

# Small architectures with the quirks of the real ones: GQA, head_dim != hidden / heads (Qwen3).
TINY = {
    "qwen3": dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, vocab_size=131, max_position_embeddings=64),
    "llama": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, head_dim=16, vocab_size=97, max_position_embeddings=64),
}


def tiny_config(arch: str) -> dict:
    return {"models": {"m": {"source": "hub", "arch": arch, "size": TINY[arch]}}}


def build(arch: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    cls = {"qwen3": Qwen3Config, "llama": LlamaConfig}[arch]
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cls(tie_word_embeddings=True, **TINY[arch]), dtype=dtype)


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (tied weights counted once)."""
    seen = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_parameter_count_and_tensors_match_transformers(arch):
    model = build(arch, torch.float32)
    a = plan.arch_of(tiny_config(arch), "m")
    unique = {id(p): p for p in model.parameters()}.values()
    assert a.params == sum(p.numel() for p in unique)
    assert sorted(a.tensor_sizes()) == sorted(p.numel() for p in unique)


@pytest.mark.parametrize("master", ["float32", "bfloat16"])
@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_model_state_bytes_equal_measured_storage_after_one_adamw_step(arch, master):
    """Weights + gradients + AdamW state (exp_avg, exp_avg_sq, step) of a model after one
    optimiser step, measured as tensor storage: the planner's bytes, exactly."""
    model = build(arch, getattr(torch, master))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
    ids = torch.randint(0, TINY[arch]["vocab_size"], (2, 9))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    params = list({id(p): p for p in model.parameters()}.values())
    measured = {
        "weights": storage_bytes(params),
        "grads": storage_bytes(p.grad for p in params),
        "optimizer": storage_bytes(v for state in optimizer.state.values() for v in state.values()),
    }
    assert measured == plan.model_state_bytes(plan.arch_of(tiny_config(arch), "m"), master, "adamw_torch")


@pytest.mark.parametrize("master", ["float32", "bfloat16"])
@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_saved_activations_and_autocast_copies_equal_what_a_forward_pass_saves(arch, master):
    """Every tensor a bf16-autocast forward of the backbone saves for the backward pass
    (recorded by a saved-tensors hook), split into autocast's bf16 copies of weights and
    activations: the planner's bytes, exactly (without checkpointing)."""
    model = build(arch, getattr(torch, master))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    # matmul saves its bf16 weight copy transposed; no activation here has two weight dims
    weight_shapes = {shape for p in model.parameters() if p.dim() == 2 for shape in (tuple(p.shape), tuple(p.shape)[::-1])}
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = (t.untyped_storage().nbytes(), t.dtype, tuple(t.shape))
        return t

    batch, seq = 3, 40
    ids = torch.randint(0, TINY[arch]["vocab_size"], (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        model.model(input_ids=ids)
    copies = [n for ptr, (n, dtype, shape) in saved.items()
              if ptr not in params and dtype == torch.bfloat16 and shape in weight_shapes]
    activations = sum(n for ptr, (n, _, _) in saved.items() if ptr not in params) - sum(copies)
    a = plan.arch_of(tiny_config(arch), "m")
    residual = plan.BYTES[master]
    rope = 2 * seq * a.head_dim * residual  # cos and sin of the positions, shared by the layers
    ids_bytes = batch * seq * 8
    assert activations - rope - ids_bytes == plan.activation_bytes(a, batch * seq, False, residual)
    if master == "float32":  # bf16 weights need no copies
        assert sum(copies) == a.linear_params * 2
    else:
        assert not copies


def test_paper_models_have_their_published_sizes():
    """Qwen3-4B: 4.02 B parameters, 3.6 B without the embedding (its model card); Llama-3.2-3B:
    3.21 B (Meta's model card); both from the config.json numbers in config/config.yaml."""
    config = load_config(REPO / "config" / "config.yaml")
    qwen, llama = plan.arch_of(config, "qwen3_4b"), plan.arch_of(config, "llama3_2_3b")
    assert qwen.params == 4_022_468_096 and qwen.params - qwen.vocab * qwen.hidden == 3_633_511_936
    assert llama.params == 3_212_749_824


def test_llama_vocabulary_is_the_staged_tokenizers(shared_root):
    """The planner's Llama-3.2 vocabulary (config.json's 128,256) is the real tokenizer's size."""
    tok = shared_root / "tokenizers" / "llama3"
    ranks = sum(1 for line in (tok / "tokenizer.model").read_text().splitlines() if line.strip())
    specials = json.loads((tok / "special_tokens.json").read_text())
    config = load_config(REPO / "config" / "config.yaml")
    assert plan.arch_of(config, "llama3_2_3b").vocab == ranks + len(specials) == 128256


def test_paper_config_fits_an_80_gb_gpu_per_job():
    """An "80 GB" A100 / H100 as torch reports it (79.1-79.3 GiB), rounded down."""
    config = load_config(REPO / "config" / "config.yaml")
    p = plan.make_plan(config)
    assert p.fits and plan.refusal(p, "config/config.yaml") is None
    budget = config["compute"]["gpu_memory_gb"] * 1e9
    assert 79.0 * 2**30 <= budget <= 79.3 * 2**30
    assert all(job.peak.total <= budget for job in p.jobs)
    rules = {j.rule for j in p.jobs}
    assert rules == {"train", "evaluate_base", "estimator_bench"}
    assert sum(j.rule == "train" for j in p.jobs) == 144  # compute.job: run, as the workflow's train rule


def fp32_unsharded(config: dict) -> dict:
    """The paper config as it was before issue #17: everything float32, torch AdamW, the rollout
    engine awake through training, 64 completions per micro-batch."""
    config = copy.deepcopy(config)
    for m in config["models"].values():
        m["dtype"] = "float32"
    for section in ("sft", "rl"):
        config[section]["optim"] = "adamw_torch"
    config["rl"].update(vllm_enable_sleep_mode=False, per_device_train_batch_size=64, gradient_accumulation_steps=1)
    return config


def test_float32_unsharded_variant_is_refused_with_the_job_and_the_settings_that_fit():
    config = fp32_unsharded(load_config(REPO / "config" / "config.yaml"))
    p = plan.make_plan(config)
    assert not p.fits
    message = plan.refusal(p, "variant.yaml")
    assert message.startswith("variant.yaml: the resource plan does not fit")
    first = message.splitlines()[1]
    assert "job train communication/qwen3_4b/rl/random/seed0 (and 35 like it)" in first
    assert f"> compute.gpu_memory_gb {config['compute']['gpu_memory_gb']:g}" in first
    assert "models.qwen3_4b.dtype: bfloat16" in first
    assert "rl.optim: adamw_bnb_8bit" in first
    with pytest.raises(plan.PlanError, match="qwen3_4b/rl"):
        plan.check_plan(config, "variant.yaml")


def test_the_settings_named_in_a_refusal_make_the_job_fit():
    config = fp32_unsharded(load_config(REPO / "config" / "config.yaml"))
    p = plan.make_plan(config)
    for job in p.over():
        changes = plan.settings_that_fit(config, job)
        assert changes, job.name
        fixed = copy.deepcopy(config)
        for change in "; ".join(changes).replace(", ", "; ").split("; "):
            key, value = change.split(": ")
            node = fixed
            *path, last = key.split(".")
            for k in path:
                node = node[k]
            node[last] = {"true": True}.get(value, int(value) if value.isdigit() else value)
        budget = config["compute"]["gpu_memory_gb"] * 1e9
        assert job.rule == "train" and plan.train_job(fixed, job.name, job.runs).peak.total <= budget


def test_more_gpus_are_data_parallel_and_hold_the_whole_model_each():
    """gpus > 1 speeds a job up (GPU-hours count every GPU) but every GPU holds all of it."""
    config = load_config(REPO / "config" / "config.yaml")
    runs = [("law", "qwen3_4b", "sft", "random", 0)]
    one = plan.train_job(config, "x", runs)
    config["models"]["qwen3_4b"]["gpus"] = 4
    four = plan.train_job(config, "x", runs)
    assert four.peak.total == one.peak.total and four.gpu_hours == pytest.approx(4 * one.gpu_hours)


def test_checkpointing_and_smaller_micro_batches_lower_the_activations():
    config = load_config(REPO / "config" / "config.yaml")
    a = plan.arch_of(config, "qwen3_4b")
    full = plan.activation_bytes(a, 8 * 4096, checkpointing=False, residual_bytes=4)
    ckpt = plan.activation_bytes(a, 8 * 4096, checkpointing=True, residual_bytes=4)
    assert ckpt < full / 5
    assert plan.activation_bytes(a, 4 * 4096, True, 4) == pytest.approx(ckpt / 2)


def test_gpu_hours_are_the_config_counts_times_the_plan_times():
    """SFT edco_full run on Qwen3-4B: 8 rounds x 7000 samples x 2.24 s of full entropy, 8 x
    ceil(1750 / 8) steps x 1 s, and one evaluation of 0.5 h."""
    config = load_config(REPO / "config" / "config.yaml")
    job = plan.train_job(config, "x", [("law", "qwen3_4b", "sft", "edco_full", 0)])
    assert job.gpu_hours == pytest.approx((8 * 7000 * 2.24 + 8 * 219 * 1.0) / 3600 + 0.5)
    assert job.disk_gb == pytest.approx(4_022_468_096 * 2 / 1e9)  # final/ in bf16


def test_rollout_engine_that_cannot_hold_one_sequence_is_named():
    config = load_config(REPO / "config" / "config.yaml")
    config["rl"].update(vllm_gpu_memory_utilization=0.2, vllm_max_model_length=131072)
    problems = plan.vllm_kv_problems(config)
    assert any(p.startswith("llama3_2_3b: rl.vllm_gpu_memory_utilization = 0.2") for p in problems)
    assert "vLLM:" in plan.refusal(plan.make_plan(config), "c.yaml")


@pytest.mark.parametrize("name", ["smoke", "local", "cpu_study"])
def test_every_cpu_config_plans(name):
    config = load_config(REPO / "config" / f"{name}.yaml")
    p = plan.make_plan(config)
    assert p.fits and len([j for j in p.jobs if j.rule == "train"]) > 0
    assert plan.markdown(p, name).startswith("# Resource plan")


def test_a_hub_model_without_sizes_names_the_keys():
    config = load_config(REPO / "config" / "config.yaml")
    del config["models"]["qwen3_4b"]["size"]
    with pytest.raises(plan.PlanError, match=r"models.qwen3_4b.size: the planner needs hidden_size.*vocab_size"):
        plan.make_plan(config)


def test_write_plan_writes_markdown_and_csv(tmp_path):
    config = load_config(REPO / "config" / "config.yaml")
    md, csv = plan.write_plan(plan.make_plan(config), "config/config.yaml", tmp_path)
    assert "**Verdict: fits.**" in md.read_text()
    lines = csv.read_text().splitlines()
    assert lines[0].split(",") == plan.CSV_COLUMNS and len(lines) == 1 + 152


def test_the_planner_imports_no_torch():
    """The Snakefile runs it in the controller's environment (Snakemake, jsonschema, pyyaml),
    every shipped strategy's declaration included."""
    code = ("import sys; import edco.plan, edco.config, edco.curriculum as c; "
            "config = edco.config.load_config('config/smoke.yaml'); "
            "config['grid']['strategies'] = c.available_strategies(); edco.plan.make_plan(config); "
            "assert not {'torch', 'transformers', 'numpy', 'pandas'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_the_readme_cost_section_is_the_current_plan():
    """README.md quotes the planner's block verbatim; regenerate it with
    `python -m edco plan --config config/config.yaml --readme README.md`."""
    readme = (REPO / "README.md").read_text()
    block = plan.readme_block(plan.make_plan(load_config(REPO / "config" / "config.yaml")), "config/config.yaml")
    assert block in readme


def test_update_readme_rewrites_only_the_block(tmp_path):
    config = load_config(REPO / "config" / "config.yaml")
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{plan.README_BEGIN}\nstale numbers\n{plan.README_END}\nafter\n")
    plan.update_readme(plan.make_plan(config), page)
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("\nafter\n") and "stale" not in text and "**Verdict: fits.**" in text
    page.write_text("no markers")
    with pytest.raises(plan.PlanError, match="no plan block"):
        plan.update_readme(plan.make_plan(config), page)


def test_the_plan_command(tmp_path):
    """`python -m edco plan`: prints the plan; --check exits 1 naming the job; --out-dir writes."""
    ok = subprocess.run([sys.executable, "-m", "edco", "plan", "--check", "--out-dir", str(tmp_path)], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "**Verdict: fits.**" in ok.stdout and (tmp_path / "plan.csv").is_file()
    variant = tmp_path / "fp32.yaml"
    import yaml

    variant.write_text(yaml.safe_dump(fp32_unsharded(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))))
    refused = subprocess.run([sys.executable, "-m", "edco", "plan", "--config", str(variant), "--check"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "**Verdict: does not fit.**" in refused.stdout
    assert "edco plan: error:" in refused.stderr and "qwen3_4b/rl/random/seed0" in refused.stderr


# --------------------------------------------------------------------------- strategies' declared cost
def declared_cost_config() -> dict:
    """The CPU study with every shipped strategy, options that make the declarations differ
    from the paper's rule, a pool of 90 and step counts the training ratios scale exactly."""
    config = load_config(REPO / "config" / "cpu_study.yaml")
    config["grid"]["strategies"] = available_strategies()
    config["data"]["max_train"] = 90
    config["sft"]["num_train_epochs"] = 2
    config["rl"]["max_steps"] = 10
    config["strategy_options"] = {"edco_partial": {"rescore_fraction": 0.25}, "edco_early_stop": {"stop_overlap": 0.5},
                                  "random_matched": {"compute_ratio_sft": 1.5, "compute_ratio_rl": 2.0}}
    return config


@pytest.mark.parametrize("paradigm", ["sft", "rl"])
def test_every_shipped_strategy_is_planned_as_it_declares(paradigm):
    """For each registered strategy: the planned scoring time is the samples its declaration
    says it scores (all of the pool once, or all in round 1 and ceil(fraction x pool) each later
    round) times its estimator's time per sample; its training time is random's times its
    declared ratio; its job holds a scoring phase of its estimator kind exactly when it scores."""
    config = declared_cost_config()
    rounds = round_budget(config, paradigm, "qwen3")[0]
    per = config["plan"]["seconds_per_sample"]
    per_sample = {**per, "prefix": per["prefix"] * config["estimator"]["prefix_tokens"] / 128}

    def hours(strategy):
        job = plan.train_job(config, "x", [("law", "qwen3", paradigm, strategy, 0)])
        scoring, training = plan._run_hours(config, "qwen3", paradigm, strategy_cost(config, strategy), 90)
        assert job.gpu_hours == pytest.approx(scoring + training + config["plan"]["eval_hours_per_run"])
        return job, scoring * 3600, training * 3600

    _, _, random_training = hours("random")
    assert random_training > 0
    names = available_strategies()
    assert {"random", "random_matched", "edco", "edco_full", "edco_partial", "static_difficulty"} <= set(names)
    for name in names:
        cost = get_strategy(name).cost(strategy_options(config, name))
        job, scoring, training = hours(name)
        if cost.scores_with is None:
            samples = 0
        elif cost.when == "once":
            samples = 90
        else:
            samples = 90 + (rounds - 1) * math.ceil(cost.fraction * 90)
        assert scoring == pytest.approx(samples * per_sample.get(cost.scores_with, 0)), name
        assert training == pytest.approx(cost.ratio(paradigm) * random_training), name
        scoring_phases = {p.name for p in job.phases if p.name.startswith("scoring")}
        assert scoring_phases == ({f"scoring ({cost.scores_with})"} if cost.scores_with else set()), name
        assert not any("unknown" in note for note in job.notes), name
    # The options change the declarations, and so the plan: not the paper's rule everywhere.
    assert strategy_cost(config, "edco_partial").fraction == 0.25
    assert strategy_cost(config, "random_matched").ratio(paradigm) == {"sft": 1.5, "rl": 2.0}[paradigm]


def test_random_matched_is_planned_from_its_ratio_without_scoring():
    """The CPU study's random_matched: no scoring, and compute_ratio x random's training."""
    config = load_config(REPO / "config" / "cpu_study.yaml")
    options = config["strategy_options"]["random_matched"]
    for paradigm in ("sft", "rl"):
        pool = plan._pool_size(config, paradigm, "qwen3")[0]
        random = plan._run_hours(config, "qwen3", paradigm, strategy_cost(config, "random"), pool)
        matched = plan._run_hours(config, "qwen3", paradigm, strategy_cost(config, "random_matched"), pool)
        steps = config[paradigm][STEP_KEYS[paradigm]]
        assert matched[0] == 0
        assert matched[1] == pytest.approx(random[1] * round(steps * options[f"compute_ratio_{paradigm}"]) / steps)
    assert "unknown" not in plan.markdown(plan.make_plan(config), "cpu_study")


def test_a_new_strategy_is_planned_from_its_own_file(monkeypatch):
    """A strategy the planner has never heard of: its declaration is all the planner reads."""

    class Toy(Strategy):
        description = "toy"

        @classmethod
        def cost(cls, opts):
            return Cost(scores_with="teacher_forced", when="each", training_ratio={"sft": 2.0})

    monkeypatch.setitem(curriculum._REGISTRY, "toy", Toy)
    config = declared_cost_config()
    rounds = round_budget(config, "sft", "qwen3")[0]
    toy = plan._run_hours(config, "qwen3", "sft", strategy_cost(config, "toy"), 90)
    random = plan._run_hours(config, "qwen3", "sft", strategy_cost(config, "random"), 90)
    assert toy[0] * 3600 == pytest.approx(rounds * 90 * config["plan"]["seconds_per_sample"]["teacher_forced"])
    assert toy[1] == pytest.approx(2 * random[1])
    job = plan.train_job(config, "x", [("law", "qwen3", "sft", "toy", 0)])
    assert "scoring (teacher_forced)" in {p.name for p in job.phases}


def test_python_m_edco_strategies_prints_each_declared_cost(capsys):
    from edco import cli

    assert cli.main(["strategies"]) == 0
    out = capsys.readouterr().out
    assert out.count("cost at the default options: ") == len(available_strategies())
    assert "cost at the default options: no model call; trains 1.5x the num_train_epochs of sft; 1.5x the max_steps" \
           " of rl" in out
    assert "cost at the default options: scores the pool with full each round; trains with the paradigm budget" in out
    assert Cost("prefix", fraction=0.25).describe().startswith("scores the pool with prefix each round (round 1 all")


def test_an_unregistered_strategy_stops_the_planner():
    config = load_config(REPO / "config" / "cpu_study.yaml")
    with pytest.raises(UserFacingError, match="unknown strategy 'nope'"):
        plan.train_job(config, "x", [("law", "qwen3", "sft", "nope", 0)])


# --------------------------------------------------------------------------- settings from the config
def test_model_sizes_come_from_the_config_and_the_schema_defaults():
    """A size block without head_dim and max_position_embeddings: the planner sizes what the
    builder builds (edco.config.model_size: width / heads, the schema's positions)."""
    config = load_config(REPO / "config" / "smoke.yaml")
    size = config["models"]["qwen3"]["size"]
    assert "head_dim" not in size
    positions = schema()["properties"]["models"]["additionalProperties"]["properties"]["size"]["properties"][
        "max_position_embeddings"]["default"]
    a = plan.arch_of(config, "qwen3")
    assert (a.head_dim, a.max_positions) == (size["hidden_size"] // size["num_attention_heads"], positions)
    config["models"]["qwen3"]["size"].update(head_dim=8, max_position_embeddings=4096)
    a = plan.arch_of(config, "qwen3")
    assert (a.head_dim, a.max_positions) == (8, 4096)


def test_the_estimator_benchmark_is_planned_from_its_settings():
    """Its GPU-hours follow estimator_bench.prefix_ks, retest, checkpoint and limit: vLLM makes
    one call per K (hf samples once, to the largest K)."""
    config = load_config(REPO / "config" / "config.yaml")
    per = config["plan"]["seconds_per_sample"]
    bench = config["estimator_bench"]

    def hours(**settings):
        trial = copy.deepcopy(config)
        trial["estimator_bench"].update(settings)
        return plan.estimator_bench_job(trial, "law", "qwen3_4b").gpu_hours * 3600

    ks = sorted(set(bench["prefix_ks"]) | {config["estimator"]["prefix_tokens"]})
    one = per["full"] + per["prefix"] * sum(ks) / 128
    reference = per["teacher_forced"] + per["perplexity"]
    assert hours() == pytest.approx(2 * bench["limit"] * (2 * one + reference))
    assert hours(retest=False, checkpoint=False) == pytest.approx(bench["limit"] * (one + reference))
    assert hours(prefix_ks=[128]) == pytest.approx(2 * bench["limit"] * (2 * (per["full"] + per["prefix"]) + reference))
    assert hours(limit=10) == pytest.approx(hours() / 100)
    config["estimator"]["backend"] = "hf"
    hf_one = per["full"] + per["prefix"] * max(ks) / 128
    assert hours() == pytest.approx(2 * bench["limit"] * (2 * hf_one + reference))


# --------------------------------------------------------------------------- what a GPU holds besides training
def embedding_elements(a: "plan.Arch") -> int:
    return a.vocab * a.hidden


@pytest.mark.parametrize("model", ["qwen3_4b", "llama3_2_3b"])
def test_bitsandbytes_8bit_state_of_the_embedding_is_fp32(model):
    """Under a bitsandbytes 8-bit AdamW the Trainer keeps the embedding's (= the tied LM head's)
    two states in fp32: 8 bytes per element instead of 2 plus the block absmaxes, ~2.3 GB more
    for either paper model; torchao's 8-bit AdamW has no such override."""
    a = plan.arch_of(load_config(REPO / "config" / "config.yaml"), model)
    n = embedding_elements(a)
    extra = 2 * 4 * n - 2 * (n + 4 * math.ceil(n / plan.BNB_BLOCK))
    for optim in sorted(plan.BNB_8BIT_OPTIMS):
        assert plan.optimizer_state_bytes(a, optim, "float32") - plan.optimizer_state_bytes(
            a, "adamw_torch_8bit", "float32") == extra
    assert 2.3e9 < extra < 2.4e9


def test_transformers_forces_fp32_embedding_state_for_the_bitsandbytes_optimisers():
    """What the planner models, read from the installed transformers: create_optimizer registers
    every nn.Embedding weight for 32-bit state when a bitsandbytes optimiser runs with 8 bits,
    which each of BNB_8BIT_OPTIMS is, and adamw_torch_8bit is torchao's."""
    import inspect

    from transformers import Trainer, trainer_optimizer

    source = inspect.getsource(Trainer.create_optimizer)
    assert 'optimizer_kwargs.get("optim_bits", None) == 8' in source and "isinstance(module, nn.Embedding)" in source
    assert 'register_module_override(module, "weight", {"optim_bits": 32})' in source
    bnb = {str(getattr(o, "value", o)) for o in trainer_optimizer._BITSANDBYTES_OPTIMIZERS}
    torchao = {str(getattr(o, "value", o)) for o in trainer_optimizer._TORCHAO_OPTIMIZERS}
    assert plan.BNB_8BIT_OPTIMS <= bnb and all("8bit" in o for o in plan.BNB_8BIT_OPTIMS)
    assert plan.EIGHT_BIT_OPTIMS - plan.BNB_8BIT_OPTIMS <= torchao
    assert 'optim_bits = 8 if "8bit" in optim_name else 32' in inspect.getsource(
        trainer_optimizer._get_bitsandbytes_optimizer)


def test_vllm_engines_take_their_share_of_the_gpus_reported_memory():
    """vLLM asks for gpu_memory_utilization x the memory torch reports (compute.gpu_memory_gb):
    the scoring engine of a train job and the benchmark, and TRL's rollout engine awake."""
    config = load_config(REPO / "config" / "config.yaml")
    total = config["compute"]["gpu_memory_gb"] * 1e9
    job = plan.train_job(config, "x", [("law", "qwen3_4b", "rl", "edco", 0)])
    phases = {p.name: p.parts for p in job.phases}
    scoring_share = config["estimator"]["vllm_gpu_memory_utilization"]
    rollout_share = config["rl"]["vllm_gpu_memory_utilization"]
    assert phases["scoring (prefix)"]["vLLM scoring engine"] == scoring_share * total
    assert phases["rollouts (vLLM awake)"]["vLLM rollout engine"] == rollout_share * total
    bench = plan.estimator_bench_job(config, "law", "qwen3_4b")
    assert bench.peak.parts["vLLM scoring engine"] == scoring_share * total


def test_save_weights_copies_are_planned_as_measured(monkeypatch):
    """save_weights of fp32 master weights hands save_pretrained a bf16 copy of every tensor
    (tied ones once): the planner's 'save_weights copies', exactly; nothing to copy without a cast."""
    from edco import models

    config = {"models": {"m": {"source": "hub", "arch": "qwen3", "size": TINY["qwen3"], "dtype": "bfloat16",
                               "master_dtype": "float32"}}}
    model = build("qwen3", torch.float32)
    handed = {}
    monkeypatch.setattr(type(model), "save_pretrained",
                        lambda self, out, **kw: handed.update(kw.get("state_dict") or {}))
    monkeypatch.setattr(models.io, "read_json", lambda path: {})
    monkeypatch.setattr(models.io, "write_json", lambda path, data: None)
    models.save_weights(model, type("Tok", (), {"save_pretrained": lambda self, out: None})(), "unused", "bfloat16")
    phase = plan.save_phase(config, "m", plan.arch_of(config, "m"))
    assert storage_bytes(handed.values()) == phase.parts["save_weights copies"]
    assert phase.parts["weights (master)"] == storage_bytes(model.parameters())
    config["models"]["m"]["dtype"] = "float32"
    assert plan.save_phase(config, "m", plan.arch_of(config, "m")) is None


def test_a_null_scratch_dir_is_sized_and_warned_on_a_gpu_config():
    """Each train job's temporary saves (one model in models.<m>.dtype: the GRPO reference or a
    vLLM scoring engine's weights) go to the system temp directory when compute.scratch_dir is
    null: the plan sizes them, says so, and a job of that config says so at its start."""
    config = load_config(REPO / "config" / "config.yaml")
    assert config["compute"]["scratch_dir"] is None
    ckpt = plan.arch_of(config, "qwen3_4b").params * 2 / 1e9
    rl = plan.train_job(config, "x", [("law", "qwen3_4b", "rl", "random", 0)])
    sft_scoring = plan.train_job(config, "x", [("law", "qwen3_4b", "sft", "edco", 0)])
    sft_random = plan.train_job(config, "x", [("law", "qwen3_4b", "sft", "random", 0)])
    assert rl.scratch_gb == sft_scoring.scratch_gb == pytest.approx(ckpt) and sft_random.scratch_gb == 0
    warning = plan.train_scratch_warning(config, [("law", "qwen3_4b", "rl", "random", 0)])
    assert warning.startswith(f"compute.scratch_dir is null: each train job writes temporary model saves of up to "
                              f"{ckpt:.1f} GB") and f"{8 * ckpt:.0f} GB for 8 jobs" in warning
    assert warning in plan.markdown(plan.make_plan(config), "c")
    assert plan.train_scratch_warning(config, [("law", "qwen3_4b", "sft", "random", 0)]) is None
    config["compute"]["scratch_dir"] = "/local/scratch"
    assert plan.train_scratch_warning(config, [("law", "qwen3_4b", "rl", "random", 0)]) is None
    assert "compute.scratch_dir is null" not in plan.markdown(plan.make_plan(config), "c")
    cpu = load_config(REPO / "config" / "cpu_study.yaml")
    assert plan.train_scratch_warning(cpu, [("law", "qwen3", "rl", "random", 0)]) is None


def test_a_train_job_warns_at_its_start(monkeypatch, tmp_path, caplog):
    """python -m edco train on a GPU config with compute.scratch_dir: null logs the warning
    before its first run (the GPU check and the run itself stubbed: no GPU here)."""
    import yaml

    from edco import cli, gpu, trainer

    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(gpu, "check_gpu_settings", lambda config, source: None)

    def stop(*args):
        raise SystemExit("stub run")

    monkeypatch.setattr(trainer, "run_rounds", stop)
    with caplog.at_level("WARNING", logger="edco.trainer"), pytest.raises(SystemExit, match="stub run"):
        cli.main(["train", "--config", str(path), "--domain", "law", "--model", "qwen3_4b", "--paradigm", "rl",
                  "--strategy", "random", "--seed", "0"])
    assert any(r.getMessage().startswith("compute.scratch_dir is null") for r in caplog.records)
