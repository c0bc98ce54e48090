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
from edco.curriculum import STEP_KEYS, Cost, Strategy, available_strategies, get_strategy, strategy_cost, strategy_options
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


def test_paper_config_fits_80_gb_per_job():
    config = load_config(REPO / "config" / "config.yaml")
    p = plan.make_plan(config)
    assert p.fits and plan.refusal(p, "config/config.yaml") is None
    assert config["compute"]["gpu_memory_gb"] == 80
    assert all(job.peak.total <= 80e9 for job in p.jobs)
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
    assert "> compute.gpu_memory_gb 80" in first and "models.qwen3_4b.dtype: bfloat16" in first
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
        assert job.rule == "train" and plan.train_job(fixed, job.name, job.runs).peak.total <= 80e9


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
    assert hours() == pytest.approx(2 * bench["limit"] * (2 * (per["full"] + per["prefix"] * max(ks) / 128) + reference))
