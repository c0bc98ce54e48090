"""The Snakemake DAG: dry runs of every shipped config (no network), and config errors
that stop the workflow before any job with the key named."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edco import config as edco_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "-n", "--quiet", "rules", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def job_counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.M)}


def planned_jobs(printed: str) -> list[dict[str, str]]:
    """Snakemake's dry-run plan as one dict per job (rule, input, output, wildcards, ...), read by
    field, never by position: the order Snakemake prints jobs in differs between machines."""
    jobs = []
    for block in re.split(r"\n\s*\n", printed):
        head = re.search(r"^(?:local)?rule (\w+):$", block, re.M)
        if head:
            fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
            jobs.append({"rule": head[1], **fields})
    return jobs


def grid_size(config: dict) -> int:
    g = config["grid"]
    return len(g["domains"]) * len(g["models"]) * len(g["paradigms"]) * len(g["strategies"]) * len(config["seeds"])


# How many runs one train job covers, by compute.job: the keys it does not take as wildcards.
RUNS_PER_JOB = {"run": lambda c: 1, "cell": lambda c: len(c["seeds"]),
                "block": lambda c: len(c["seeds"]) * len(c["grid"]["strategies"])}


def results_tree() -> set[str]:
    return {str(p.relative_to(REPO)) for p in (REPO / "results").rglob("*")}


@pytest.mark.parametrize("name", ["smoke", "local", "config", "cpu_study", "cpu_study_v3", "rehearsal", "real",
                                  "real_estimator"])
def test_dry_run_lists_the_whole_grid_and_writes_nothing(name):
    from test_config import LAYERED, shipped_raw

    path = REPO / "config" / f"{name}.yaml"
    config = shipped_raw(path)
    files = [f"config/{LAYERED[path.name]}"] if path.name in LAYERED else []
    before = results_tree()
    # A run name of its own, so nothing an earlier real run left under results/ is reused.
    result = dry_run("--configfile", *files, f"config/{name}.yaml", "--config", f"run=dry_{name}")
    assert result.returncode == 0, result.stderr + result.stdout
    assert results_tree() == before, "a dry run wrote into the checkout"
    counts = job_counts(result.stdout)
    job = config.get("compute", {}).get("job", "run")
    assert counts["train"] == grid_size(config) // RUNS_PER_JOB[job](config)
    assert counts["resolved_config"] == 1
    filled = edco_config.validate_config(config)
    assert counts["evaluate_base"] == sum(len(edco_config.base_labels(filled, m)) for m in config["grid"]["models"])
    from edco.report.registry import table_names

    assert counts["table"] == len(table_names(filled))  # one job per table of the registry the run has
    assert counts["questions"] == 1 and counts["plots"] == 1


def test_per_seed_base_models_are_built_and_evaluated_once_each():
    """With pretrain.per_seed every seed of that model gets its own base_model and evaluate_base
    job (the other model keeps one shared); each train job waits for the base models it uses."""
    result = dry_run("--configfile", "config/smoke.yaml", "--config", "run=dry_per_seed",
                     "models={qwen3: {pretrain: {per_seed: true}}}")
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    seeds = len(yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["seeds"])
    assert counts["base_model"] == seeds + 1 and counts["evaluate_base"] == seeds + 1
    printed = subprocess.run([*SNAKEMAKE, "-n", "-p", "--configfile", "config/smoke.yaml", "--config",
                              "run=dry_per_seed", "models={qwen3: {pretrain: {per_seed: true}}}"],
                             cwd=REPO, capture_output=True, text=True, timeout=300).stdout
    assert "--model qwen3 --base seed1" in printed and "--model llama --base shared" in printed
    qwen_trains = [job["input"] for job in planned_jobs(printed)
                   if job["rule"] == "train" and "model=qwen3" in job.get("wildcards", "")]
    assert qwen_trains
    for inputs in qwen_trains:
        assert all(f"models/qwen3/seed{s}/manifest.json" in inputs for s in range(seeds)), inputs


def test_one_table_rule_writes_every_table_of_the_registry():
    """Each table the run has (edco.report.registry) is one job of the wildcarded `table` rule,
    whose outputs are that table's four files; questions.parquet and the plots have a job each."""
    from edco.report.registry import table_names

    printed = subprocess.run([*SNAKEMAKE, "-n", "--configfile", "config/smoke.yaml", "--config", "run=dry_tables"],
                             cwd=REPO, capture_output=True, text=True, timeout=300).stdout
    jobs = planned_jobs(printed)
    tables = {job["wildcards"].removeprefix("table="): job["output"] for job in jobs if job["rule"] == "table"}
    filled = edco_config.validate_config(yaml.safe_load((REPO / "config" / "smoke.yaml").read_text()))
    assert sorted(tables) == sorted(table_names(filled)) and "verdict" in tables and "estimator" in tables
    for name, outputs in tables.items():
        assert sorted(outputs.split(", ")) == sorted(f"results/dry_tables/tables/{name}.{fmt}"
                                                     for fmt in ("csv", "md", "tex", "html")), name
    assert [job["output"] for job in jobs if job["rule"] == "questions"] == ["results/dry_tables/tables/questions.parquet"]
    assert "results/dry_tables/plots/verdict.png" in next(job["output"] for job in jobs if job["rule"] == "plots")


def test_default_config_is_the_paper():
    result = subprocess.run([*SNAKEMAKE, "-n", "-p"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "--model qwen3_4b" in result.stdout and "results/paper/config.yaml" in result.stdout


def test_bad_config_stops_the_workflow_with_the_key(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["sft"]["learing_rate"] = 1e-3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = dry_run("--configfile", str(bad))
    assert result.returncode != 0
    assert "sft: unknown key 'learing_rate'" in result.stdout + result.stderr


def test_unknown_strategy_stops_the_workflow(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["grid"]["strategies"] = ["random", "no_such_strategy"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    result = dry_run("--configfile", str(bad))
    assert result.returncode != 0
    assert "unknown strategy 'no_such_strategy'" in result.stdout + result.stderr


def test_train_launches_through_accelerate_when_a_model_asks_for_gpus(tmp_path):
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["models"]["qwen3_4b"]["gpus"] = 2
    raw["seeds"], raw["grid"]["domains"] = [0], ["law"]
    path = tmp_path / "two_gpus.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = subprocess.run([*SNAKEMAKE, "-n", "--printshellcmds", "--configfile", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    trains = [line.strip().removeprefix("Shell command: ") for line in result.stdout.splitlines()
              if " train --config" in line]
    qwen = [line for line in trains if "--model qwen3_4b" in line]
    llama = [line for line in trains if "--model llama3_2_3b" in line]
    assert qwen and llama
    # Each through its GPU lock (the job's own GPUs), accelerate on a free port per job.
    assert all(line.startswith("python -m edco.gpulock 2 -- accelerate launch --multi_gpu --num_processes 2 ")
               and " --main_process_port 0 " in line and " -m edco train " in line for line in qwen)
    assert all(line.startswith("python -m edco.gpulock 1 -- python -m edco train ") for line in llama)


def test_every_gpu_job_takes_its_gpus_through_the_lock_and_cpu_jobs_do_not():
    gpu = subprocess.run([*SNAKEMAKE, "-n", "--printshellcmds", "--config", "run=lock_dry"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert gpu.returncode == 0, gpu.stderr + gpu.stdout
    shells = [line.strip().removeprefix("Shell command: ") for line in gpu.stdout.splitlines()
              if line.startswith("Shell command: ")]
    model_jobs = [line for line in shells if any(c in line for c in (" train --config", " evaluate --config",
                                                                     " estimator-bench --config"))]
    assert {" train --config", " evaluate --config", " estimator-bench --config"} <= {
        c for line in model_jobs for c in (" train --config", " evaluate --config", " estimator-bench --config") if c in line}
    assert all(line.startswith("python -m edco.gpulock 1 -- ") for line in model_jobs)
    assert not [line for line in shells if "gpulock" in line and "make-data" in line]
    cpu = subprocess.run([*SNAKEMAKE, "-n", "--printshellcmds", "--configfile", "config/smoke.yaml",
                          "--config", "run=lock_dry_cpu"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert cpu.returncode == 0 and "gpulock" not in cpu.stdout


def fp32_unsharded_paper(tmp_path: Path) -> Path:
    """The paper config before issue #17's memory fixes: fp32 everywhere, torch AdamW, the
    rollout engine awake through training, 64 completions per micro-batch."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for model in raw["models"].values():
        model["dtype"] = "float32"
    raw["sft"]["optim"] = raw["rl"]["optim"] = "adamw_torch"
    raw["rl"].update(vllm_enable_sleep_mode=False, per_device_train_batch_size=64, gradient_accumulation_steps=1)
    raw["run"] = "refused"
    path = tmp_path / "fp32.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_real_run_that_does_not_fit_stops_before_any_job_and_a_dry_run_warns(tmp_path):
    """The plan runs in Snakemake's own process (pure Python, no torch): a real run stops while
    the workflow is parsed, naming the job and the settings that would fit; nothing is written."""
    path = fp32_unsharded_paper(tmp_path)
    real = subprocess.run([*SNAKEMAKE, "--cores", "1", "--configfile", str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    out = real.stdout + real.stderr
    assert real.returncode != 0
    assert "the resource plan does not fit" in out and "job train communication/qwen3_4b/rl/random/seed0" in out
    assert "rl.optim: adamw_bnb_8bit" in out and "Finished job" not in out
    assert not (REPO / "results" / "refused").exists()
    try:  # a run that starts no GPU job is not refused
        config_only = subprocess.run([*SNAKEMAKE, "--cores", "1", "--configfile", str(path), "--until", "resolved_config"],
                                     cwd=REPO, capture_output=True, text=True, timeout=300)
        assert config_only.returncode == 0, config_only.stderr
        assert (REPO / "results" / "refused" / "config.yaml").is_file()
    finally:
        shutil.rmtree(REPO / "results" / "refused", ignore_errors=True)
    dry = dry_run("--configfile", str(path))
    assert dry.returncode == 0 and job_counts(dry.stdout)["train"] == 144
    assert "the resource plan does not fit" in dry.stderr and "A real run stops before its first GPU job." in dry.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only failure")
def test_a_gpu_job_stops_on_a_cpu_machine_with_the_settings_named():
    """The GPU check runs in each job's own environment (not in Snakemake's, which may lack
    CUDA and vLLM): on this CPU machine a job of the paper config stops with one line naming
    every GPU-only setting, and no traceback."""
    cli = subprocess.run([sys.executable, "-m", "edco", "train", "--config", "config/config.yaml", "--domain", "law",
                          "--model", "qwen3_4b", "--paradigm", "rl", "--strategy", "edco", "--seed", "0"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    line = next(line for line in cli.stderr.splitlines() if "GPU-only settings cannot run on this machine" in line)
    for setting in ("compute.device: cuda", "estimator.backend: vllm", "rl.use_vllm: true"):
        assert setting in line


def test_the_snakefile_runs_no_gpu_check_of_its_own():
    """A data-only run of a GPU config must not need a GPU where Snakemake runs (issue #17): the
    only onstart is the resource plan's refusal (pure Python, and only when a GPU job would run)
    and the external check (edco/external.py: files, Hub cache and token, and nvidia-smi's driver
    version, blocking only the jobs that need them)."""
    snakefile = (REPO / "Snakefile").read_text() + "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    assert "check_gpu_settings(" not in snakefile and not re.search(r"^\s*(import torch|from torch)", snakefile, re.M)
    assert snakefile.count("onstart:") == 1 and "raise PlanError(PLAN_REFUSAL)" in snakefile
    assert "raise ExternalError(message(missing, CONFIG_SOURCE))" in snakefile


GPU_RULES = {"train", "evaluate_base", "estimator_bench"}
LOCAL_RULES = {"resolved_config", "questions", "table", "plots", "config_page", "all"}


def test_slurm_profile_dry_run_asks_gpus_for_exactly_the_gpu_jobs(fake_conda_env, tmp_path):
    """The paper config through profiles/slurm (the `dryrun` executor stands in for the plugin,
    which need not be installed): every training, scoring and evaluation job asks for a GPU,
    every other job for none, and each job carries the profile's SLURM resources."""
    # The plugin's own settings (slurm-*) exist only where it is installed: dropped here
    # (tests/test_slurm.py runs the profile whole, with the plugin, on a real cluster).
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({k: v for k, v in profile.items() if not k.startswith("slurm-")}))
    result = subprocess.run([*SNAKEMAKE, "-n", "--profile", str(tmp_path), "--executor", "dryrun"], cwd=REPO,
                            env=fake_conda_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", result.stdout, re.M)
    assert {name for name, _ in jobs} >= GPU_RULES | {"data", "base_model"}
    for name, line in jobs:
        resources = dict(item.split("=", 1) for item in line.split(", "))
        gpus = int(resources.get("gpu", 0))
        assert (gpus > 0) == (name in GPU_RULES), f"{name}: gpu={gpus}"
        if name in LOCAL_RULES:  # run on the submitting node
            continue
        assert resources.get("slurm_partition") == ("gpu" if name in GPU_RULES else "cpu"), name
        assert "runtime" in resources and "cpus_per_task" in resources, name
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert "--gres" not in yaml.safe_dump(profile)  # the plugin rejects --gres in slurm_extra


def test_one_flag_adds_the_beyond_paper_strategies():
    """`--config grid='{beyond_paper: true}'` (a nested override, which snakemake hands over as
    strings) turns the smoke grid's 4 strategies into 10: every train job (one per
    domain x model x paradigm with compute.job: block) then runs all ten."""
    from edco.config import BEYOND_PAPER_STRATEGIES

    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    assert config["grid"].get("beyond_paper", False) is False
    cells = len(config["grid"]["domains"]) * len(config["grid"]["models"]) * len(config["grid"]["paradigms"])
    result = subprocess.run([*SNAKEMAKE, "-n", "--printshellcmds", "--configfile", "config/smoke.yaml", "--config",
                             "run=smoke_beyond_dry", "grid={beyond_paper: true}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    blocks = [line for line in result.stdout.splitlines() if "-m edco train " in line]
    assert len(blocks) == cells
    strategies = config["grid"]["strategies"] + list(BEYOND_PAPER_STRATEGIES)
    assert all(re.findall(r"--strategy (\w+)", line) == strategies for line in blocks)
    assert not (REPO / "results" / "smoke_beyond_dry").exists()


def test_estimator_bench_of_the_base_model_alone_trains_nothing():
    """estimator_bench.checkpoint: false measures the base models only: the benchmark then waits
    for no training run (the real-model estimator claim runs it on its own, --until its table)."""
    result = subprocess.run([*SNAKEMAKE, "-n", "--printshellcmds", "--configfile", "config/smoke.yaml", "--config",
                             "run=dry_bench", "estimator_bench={checkpoint: false}", "--until",
                             "results/dry_bench/tables/estimator.md"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    assert "train" not in counts and counts["estimator_bench"] == 6
    commands = [line for line in result.stdout.splitlines() if "edco estimator-bench" in line]
    assert len(commands) == 6 and not any("--checkpoint" in line for line in commands)
