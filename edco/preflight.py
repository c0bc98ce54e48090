"""Preflight: every GPU path of a run once, at minimum size, before the run (docs/design.md#preflight).

    python -m edco preflight --config config/config.yaml --config config/preflight.yaml

The config files are layered as Snakemake layers ``--configfile`` (edco.config.load_layers);
config/preflight.yaml shrinks the paper config to minimum size and keeps everything that sets
memory (models, dtypes, batch and sequence lengths, vLLM's shares). For each model of
``grid.models``, in this one process, on one GPU, five phases, each measured for its peak memory
and set beside what the resource planner (edco.plan, ``python -m edco plan``) says it needs:

    sft       an SFT round (strategy random: nothing scored)   plan: micro-step, optimiser step, save
    scoring   the SFT model held as a trainer holds it between  plan: scoring (<kind>), every kind the
              rounds (master dtype) and the pool scored through       grid's strategies score with
              estimator.backend (vLLM: its engine beside it)
    rl        a GRPO round, rollouts through rl.use_vllm        plan: rollouts, micro-step, optimiser step, save
    evaluate  lm-eval of the SFT model (evaluate.limit)         plan: evaluation
    bench     the estimator benchmark (estimator_bench.limit)   plan: the estimator_bench job

Measured, on CUDA: the GPU's memory in use by every process (a vLLM engine runs in a process of
its own), sampled every 50 ms, less what was in use when the preflight began, and at least this
process's own peak as torch's allocator records it; the plan's CUDA-context estimate is added,
as the plan counts one. A phase fails where measured > planned x 1.10, and the command then
exits 1. On CPU (CI runs it with SmolLM2 and vLLM's CPU build): the resident memory of this
process and its children, printed, not compared (it counts the interpreter, libraries and
vLLM-CPU's KV cache, none of which a GPU plan holds). A phase that needs a library this machine
lacks (vLLM, bitsandbytes) is skipped, and the output says which and why.

Outputs: results/preflight/ (whatever run the layers name: the preflight starts its runs over,
so it never writes into a real run), preflight.{csv,md} there.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import psutil

from edco import estimator, io, layout, plan
from edco.config import base_label
from edco.curriculum import strategy_cost
from edco.data import make_data
from edco.devices import release_memory
from edco.errors import UserFacingError
from edco.estimator_bench import run_bench
from edco.evaluate import evaluate_to_file
from edco.models import load_model, load_model_from
from edco.prompts import chat_template_kwargs
from edco.trainer import run_rounds
from edco.trainer.pretrain import write_base_model

log = logging.getLogger("edco.preflight")

RUN = "preflight"  # results/preflight/: the preflight's own, started over each time
TOLERANCE = 0.10  # measured may exceed planned by 10 % (the bar: the plan's estimates are estimates)
SAMPLE_SECONDS = 0.05
PHASES = ("sft", "scoring", "rl", "evaluate", "bench")
EIGHT_BIT = plan.EIGHT_BIT_OPTIMS


class PreflightError(UserFacingError):
    pass


@dataclass
class Row:
    """One phase of one model: what ran, how long, measured and planned peak memory (GB, 1e9)."""

    model: str
    phase: str
    ran: str
    seconds: float | None = None
    measured_gb: float | None = None
    planned_gb: float | None = None
    planned_phase: str = ""
    verdict: str = ""

    @property
    def over(self) -> bool:
        return self.verdict.startswith("OVER")


# --------------------------------------------------------------------------- what runs, what is skipped
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_libraries(config: dict, phase: str, have=_installed) -> list[str]:
    """The libraries ``phase`` needs under ``config`` that ``have`` says are absent."""
    needs = []
    vllm_scoring = config["estimator"]["backend"] == "vllm"
    if phase in ("scoring", "bench") and vllm_scoring:
        needs.append(("vllm", "estimator.backend: vllm"))
    if phase == "rl" and config["rl"]["use_vllm"]:
        needs.append(("vllm", "rl.use_vllm: true"))
    paradigm = {"sft": "sft", "rl": "rl"}.get(phase)
    if paradigm and config[paradigm]["optim"] in EIGHT_BIT:
        needs.append(("bitsandbytes", f"{paradigm}.optim: {config[paradigm]['optim']}"))
    return [f"{module} (for {why})" for module, why in needs if not have(module)]


def scoring_kinds(config: dict) -> list[str]:
    """The estimator kinds the grid's strategies score with (Strategy.cost), sorted."""
    return sorted({c.scores_with for s in config["grid"]["strategies"] if (c := strategy_cost(config, s)).scores_with})


# --------------------------------------------------------------------------- what the plan says
def planned(config: dict, domain: str, model: str, phase: str) -> tuple[float, str]:
    """(bytes, the plan's phase names) that the planner gives the preflight phase ``phase``."""
    arch = plan.arch_of(config, model)
    if phase in ("sft", "rl"):
        phases = plan.training_phases(config, model, phase, arch)
        phases += [p for p in [plan.save_phase(config, model, arch)] if p]
    elif phase == "scoring":
        resident = {"weights (master)": arch.params * plan.BYTES[config["models"][model]["master_dtype"]]}
        phases = [plan.scoring_phase(config, model, arch, kind, resident) for kind in scoring_kinds(config)]
    elif phase == "evaluate":
        phases = [plan.eval_phase(config, model, arch)]
    elif phase == "bench":
        phases = plan.estimator_bench_job(config, domain, model).phases
    else:
        raise ValueError(phase)
    top = max(phases, key=lambda p: p.total)
    return top.total, top.name


def judge(row: Row, device: str) -> str:
    """A measured phase against its plan: ok, OVER (exit 1), or not compared on a CPU."""
    if not str(device).startswith("cuda"):
        return "not compared (CPU: resident memory, not a GPU's)"
    if row.measured_gb <= row.planned_gb * (1 + TOLERANCE):
        return f"ok ({row.measured_gb / row.planned_gb:.0%} of plan)"
    return f"OVER plan by {row.measured_gb / row.planned_gb - 1:.0%} (> {TOLERANCE:.0%})"


# --------------------------------------------------------------------------- measuring
class PeakMemory:
    """Peak memory of a block, sampled in a thread every SAMPLE_SECONDS: on CUDA the device's
    memory in use (all processes) less ``baseline`` and at least torch's own peak; on CPU the
    resident memory of this process and its children."""

    def __init__(self, device: str, baseline: float = 0.0):
        self.device, self.baseline, self.peak = str(device), baseline, 0.0
        self._stop = threading.Event()

    @staticmethod
    def in_use(device: str) -> float:
        if device.startswith("cuda"):
            import torch

            free, total = torch.cuda.mem_get_info(device)
            return float(total - free)
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:  # a child that ended between the listing and the read
                pass
        return float(total)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.in_use(self.device) - self.baseline)
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.in_use(self.device) - self.baseline)
        if self.device.startswith("cuda"):
            import torch

            self.peak = max(self.peak, float(torch.cuda.max_memory_reserved(self.device)))
            self.peak += plan.CUDA_CONTEXT_GB * plan.GB  # as the plan counts this process's context
        return False


# --------------------------------------------------------------------------- the phases
def _prepare(config: dict, domain: str, models: list[str]) -> None:
    """The domain's data and each model's base model, as the DAG's first jobs write them."""

    if not layout.data_file(config["run"], domain, "train").exists():
        make_data(config, domain)
    seed = config["seeds"][0]
    for model in models:
        base = base_label(config, model, seed)
        if not layout.model_manifest(config["run"], model, base).exists():
            write_base_model(config, model, progress=False, base=base)


def _run(config: dict, domain: str, model: str, paradigm: str) -> Path:

    seed = config["seeds"][0]
    shutil.rmtree(layout.run_dir(config["run"], domain, model, paradigm, "random", seed), ignore_errors=True)
    return run_rounds(config, domain, model, paradigm, "random", seed) / "final"


def _score(config: dict, domain: str, model: str, checkpoint: Path | None) -> str:
    """The scoring between two rounds: the policy (the SFT phase's model, else the base model)
    in master dtype on the device, as a trainer holds it, and the pool scored with every kind
    the grid's strategies use, through the round loop's scorer (one engine for all kinds on vLLM)."""

    cfg, m, device = config["estimator"], config["models"][model], config["compute"]["device"]
    if checkpoint is None:
        policy, tokenizer = load_model(config, model, device, m["master_dtype"],
                                       base_label(config, model, config["seeds"][0]))
    else:
        policy, tokenizer = load_model_from(checkpoint, device, m["master_dtype"])
    pool = io.read_jsonl(layout.data_file(config["run"], domain, "train"))
    kinds, seed = scoring_kinds(config), config["seeds"][0]
    options = {"weights_dtype": m["dtype"], "scratch_dir": config["compute"]["scratch_dir"],
               "template_kwargs": chat_template_kwargs(m), "progress": False}
    if cfg["backend"] == "vllm":
        with estimator.vllm_engine(policy, tokenizer, cfg, seed, m["dtype"], config["compute"]["scratch_dir"]) as llm:
            for kind in kinds:
                estimator.score_pool(llm, tokenizer, pool, cfg, kind, seed, **options)
    else:
        for kind in kinds:
            estimator.score_pool(policy, tokenizer, pool, cfg, kind, seed, **options)
    return f"{len(pool)} samples x {', '.join(kinds) or 'no kind'} ({cfg['backend']})"


def _evaluate(config: dict, domain: str, model: str, checkpoint: Path | None) -> str:
    """lm-eval of the SFT phase's model (else the base model: the same weights' memory)."""

    out = layout.run_root(config["run"]) / "preflight" / f"eval_{domain}_{model}.json"
    which = str(checkpoint) if checkpoint else "base"
    evaluate_to_file(config, domain, model, which, out, base=base_label(config, model, config["seeds"][0]))
    return f"{len(io.read_json(out)['questions'])} questions ({'SFT model' if checkpoint else 'base model'})"


def _bench(config: dict, config_source: str, domain: str, model: str, answers) -> str:

    bench = config["estimator_bench"]
    out = layout.run_root(config["run"]) / "preflight" / f"bench_{domain}_{model}"
    run_bench(config, config_source, domain, model, [], out, config["seeds"][0], bench["limit"], bench["repeats"],
              None, False, answers(config, model) if answers and bench["validity"] else None)
    return f"{bench['limit']} samples, K in {sorted(set(bench['prefix_ks']) | {config['estimator']['prefix_tokens']})}"


# --------------------------------------------------------------------------- the command
def check_device(config: dict) -> str:
    device = config["compute"]["device"]
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise PreflightError("compute.device is cuda, but torch sees no GPU here; run the preflight on a GPU node "
                                 "(CI runs its CPU form: a CPU layer such as config/rehearsal.yaml on top)")
    return device


def run_preflight(config: dict, config_source: str, models: list[str] | None = None, answers=None) -> list[Row]:
    """Every phase for each model (``models``: default grid.models); returns the rows, written
    to results/<run>/preflight/preflight.{csv,md} as they come."""
    config = {**config, "run": RUN}
    device = check_device(config)
    domain = config["grid"]["domains"][0]
    models = models or config["grid"]["models"]
    unknown = [m for m in models if m not in config["models"]]
    if unknown:
        raise PreflightError(f"--model {', '.join(unknown)}: not a model of the config ({', '.join(config['models'])})")
    _prepare(config, domain, models)
    baseline = PeakMemory.in_use(device) if device.startswith("cuda") else 0.0
    rows: list[Row] = []
    for model in models:
        checkpoint = None
        if config["models"][model]["gpus"] > 1:
            rows += [Row(model, phase, f"skipped: models.{model}.gpus > 1 (the preflight runs one GPU)")
                     for phase in PHASES]
            continue
        for phase in PHASES:
            row = Row(model, phase, "")
            missing = missing_libraries(config, phase)
            if missing:
                row.ran = f"skipped: needs {', '.join(missing)}"
                rows.append(row)
                log.warning("preflight %s %s: %s", model, phase, row.ran)
                continue
            log.info("preflight %s: %s", model, phase)
            start = time.perf_counter()
            with PeakMemory(device, baseline) as peak:
                row.ran, checkpoint = _run_phase(config, config_source, domain, model, phase, checkpoint, answers)
                release_memory(device)
            row.seconds = time.perf_counter() - start
            row.measured_gb = peak.peak / plan.GB
            bytes_, row.planned_phase = planned(config, domain, model, phase)
            row.planned_gb = bytes_ / plan.GB
            row.verdict = judge(row, device)
            rows.append(row)
            log.info("preflight %s %s: %.1f s, %.2f GB measured, %.2f GB planned (%s): %s", model, phase,
                     row.seconds, row.measured_gb, row.planned_gb, row.planned_phase, row.verdict)
            write_rows(config, rows)
    write_rows(config, rows)
    return rows


def _run_phase(config: dict, config_source: str, domain: str, model: str, phase: str, checkpoint: Path | None,
               answers) -> tuple[str, Path | None]:
    """Run ``phase``; (what ran, the SFT model for the phases after it)."""
    if phase in ("sft", "rl"):
        final = _run(config, domain, model, phase)
        steps = _steps(final.parent)
        return f"1 round, {steps} optimiser step{'s' * (steps != 1)}", final if phase == "sft" else checkpoint
    if phase == "scoring":
        return _score(config, domain, model, checkpoint), checkpoint
    if phase == "evaluate":
        return _evaluate(config, domain, model, checkpoint), checkpoint
    return _bench(config, config_source, domain, model, answers), checkpoint


def _steps(run_path: Path) -> int:
    return io.read_json(run_path / "run.json")["totals"]["optimizer_steps"]


# --------------------------------------------------------------------------- output
COLUMNS = ("model", "phase", "ran", "seconds", "measured_gb", "planned_gb", "planned_phase", "verdict")


def _cell(value) -> str:
    return "" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(rows: list[Row], device: str) -> str:
    what = "GPU memory in use" if str(device).startswith("cuda") else "resident memory (RSS, this process + children)"
    lines = [f"# Preflight on {device}: measured peak {what} per phase vs the plan (GB, 1e9 bytes)", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(getattr(row, c)) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_rows(config: dict, rows: list[Row]) -> list[Path]:
    out = layout.run_root(config["run"]) / "preflight"
    buffer = StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([[_cell(getattr(row, c)) for c in COLUMNS] for row in rows])
    paths = [out / "preflight.csv", out / "preflight.md"]
    io.write_text(paths[0], buffer.getvalue())
    io.write_text(paths[1], markdown(rows, config["compute"]["device"]))
    return paths


def failures(rows: list[Row]) -> str | None:
    """The message the command exits 1 with, or None."""
    over = [row for row in rows if row.over]
    if not over:
        return None
    names = "; ".join(f"{r.model} {r.phase}: {r.measured_gb:.1f} GB measured, {r.planned_gb:.1f} GB planned "
                      f"({r.planned_phase})" for r in over)
    return (f"{len(over)} phase(s) used more GPU memory than planned + {TOLERANCE:.0%}: {names}. The plan "
            f"(python -m edco plan) underestimates these; a paper job may not fit where it says it does")
