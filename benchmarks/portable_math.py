"""Portable math (``compute.portable_math``, edco/portable.py), measured: does it make a base
model and a run bit-identical whatever x86-64 CPU computes them, and what does it cost?

One machine stands in for other CPUs by switching what a different CPU would switch: torch's
kernel ISA (ATEN_CPU_CAPABILITY), MKL's code branch (MKL_CBWR, MKL_ENABLE_INSTRUCTIONS),
oneDNN's ISA ceiling (ONEDNN_MAX_CPU_ISA) and glibc's CPU features (GLIBC_TUNABLES, which picks
libm's FMA or plain exp/log/pow/sin/cos). Each setting runs with portable math off and on, the
two side by side (so a pair shares the machine's load): the base model's SHA-256, and with
--runs one SFT and one GRPO run of ``edco`` (seed 0, first domain; scoring, selection,
training and evaluation) digested as final weights, selections, training metrics and
evaluation answers. Wall-clock and CPU seconds of each job are the cost.

    python benchmarks/portable_math.py --runs                      # smoke recipe, qwen3
    python benchmarks/portable_math.py --steps 60 --settings this,avx2   # a quick look
    python benchmarks/portable_math.py --digests results/smoke         # sha256 lines of its base models
    python benchmarks/portable_math.py --steps 40 --model qwen3 --model llama --settings this \
        --portable on --emulate Haswell-v4 --out results/reference/smoke/portable_math/emulated

Knobs cannot change what an instruction computes, and some differ between CPU makers (the
approximate reciprocals rcpps/rsqrtps that MKL's vector math uses: Intel's and AMD's tables
differ). ``--emulate CPU`` adds the setting ``emulated``: the same jobs under QEMU's user-mode
emulator (``apt-get install qemu-user``) as CPU model CPU (``qemu-x86_64 -cpu help``; e.g.
Haswell-v4, an Intel CPUID), whose software floating point computes those instructions exactly
(a job ~55x slower, its training loop ~190x: a quick look with --steps). Portable math on only: python -m edco's restart with
glibc's tunable would leave the emulator, so the emulated job starts with it already set.

Writes <out>/invariance.csv and <out>/invariance.md (default out: results/portable_math) and
prints the table. Jobs run as ``python -m edco`` subprocesses in results/portable_math_bench/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edco import io, layout  # noqa: E402
from edco.portable import KNOBS  # noqa: E402
from edco.report.render import markdown  # noqa: E402

RUN = "portable_math_bench"  # the jobs' run name, results/<RUN>/ (--name sets it)
NO_FMA = "glibc.cpu.hwcaps=-FMA,-FMA4"
# name -> (what it stands in for, environment). Knobs the machine's CPU would set differently.
SETTINGS = {
    "this": ("this CPU as it is (AVX-512 torch kernels, MKL's automatic branch)", {}),
    "avx2": ("torch's AVX2 kernels", {"ATEN_CPU_CAPABILITY": "avx2"}),
    "baseline": ("torch's baseline kernels", {"ATEN_CPU_CAPABILITY": "default"}),
    "mkl_avx2": ("MKL's AVX2 branch (ignored by MKL on a non-Intel CPU)", {"MKL_CBWR": "AVX2"}),
    "mkl_compatible": ("MKL's SSE2 branch", {"MKL_CBWR": "COMPATIBLE"}),
    "onednn_avx2": ("oneDNN at most AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "libm_no_fma": ("glibc's libm without FMA", {"GLIBC_TUNABLES": NO_FMA}),
    "avx2_cpu": ("an AVX2 CPU: all of torch, MKL, oneDNN at AVX2",
                 {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                  "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "old_cpu": ("a CPU without AVX or FMA: baseline torch, MKL SSE4.2, oneDNN SSE4.1, libm without FMA",
                {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "SSE4_2", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "ONEDNN_MAX_CPU_ISA": "SSE41", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4,-AVX"}),
}
# Keys of the training metrics and evaluation that are timings, not results.
TIMING = ("second", "runtime", "time")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _results(value):
    """``value`` without timing keys (recursively): what a digest of results covers."""
    if isinstance(value, dict):
        return {k: _results(v) for k, v in value.items() if not any(t in k for t in TIMING)}
    if isinstance(value, list):
        return [_results(v) for v in value]
    return value


def _digest(values) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def run_digests(run_path: Path, eval_path: Path) -> dict[str, str]:
    """A finished run's results as digests: final weights, every round's selection (ids and
    scores, in order), training metrics without timings, evaluation answers and accuracy."""
    rounds = sorted(run_path.glob("round*"), key=lambda p: int(p.name.removeprefix("round")))
    evaluation = io.read_json(eval_path)
    return {
        "weights": sha256(run_path / "final" / "model.safetensors"),
        "selections": _digest([io.read_jsonl(r / "selection.jsonl") for r in rounds]),
        "metrics": _digest([_results(io.read_jsonl(r / "metrics.jsonl")) for r in rounds]),
        "evaluation": _digest(_results({"questions": evaluation["questions"], "summary": evaluation["summary"]})),
    }


def write_configs(source: Path, work: Path, steps: int | None) -> dict[bool, Path]:
    """The config twice, portable math off and on, run name RUN (one data directory for both)."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    raw["run"] = RUN
    if steps is not None:
        for model in raw["models"].values():
            model.setdefault("pretrain", {})["steps"] = steps
    paths = {}
    for on in (False, True):
        raw.setdefault("compute", {})["portable_math"] = on
        paths[on] = work / f"config_{'on' if on else 'off'}.yaml"
        paths[on].write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return paths


def edco(args: list[str], env: dict[str, str], log: Path, emulator: list[str] = ()) -> tuple[float, float]:
    """``python -m edco args`` under ``env`` (behind ``emulator``, a command prefix); (wall
    seconds, CPU seconds of the job)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call([*emulator, sys.executable, "-m", "edco", *args], env=env, cwd=REPO, stdout=out,
                               stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code:
        sys.exit(f"python -m edco {' '.join(args)} failed ({code}); see {log}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def job_env(setting: dict[str, str]) -> dict[str, str]:
    """This process's environment without any dispatch knob, plus the setting's."""
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**env, **setting}


def measure(config: Path, model: str, domain: str, setting: dict[str, str], runs: bool, logs: Path,
            emulator: list[str] = ()) -> dict:
    """One setting under one config: the base model (and the two runs), digests and seconds."""
    env = job_env(setting)
    row = {}
    wall, cpu = edco(["base-model", "--config", str(config), "--model", model, "--no-progress"], env,
                     logs / "base.log", emulator)
    out = layout.model_dir(RUN, model, layout.SHARED_BASE)
    manifest = io.read_json(out / "manifest.json")
    row.update(base_sha256=sha256(out / "model.safetensors"), final_loss=manifest["final_loss"],
               base_wall_s=round(wall, 1), base_cpu_s=round(cpu, 1), pretrain_cpu_s=manifest["pretrain_cpu_seconds"],
               in_effect=manifest["platform"].get("in_effect"), aten=manifest["platform"].get("aten_cpu_capability"))
    for paradigm in ("sft", "rl") if runs else ():
        run_path = layout.run_dir(RUN, domain, model, paradigm, "edco", 0)
        eval_path = layout.eval_file(RUN, domain, model, paradigm, "edco", 0)
        shutil.rmtree(run_path, ignore_errors=True)
        eval_path.unlink(missing_ok=True)
        wall, cpu = edco(["train", "--config", str(config), "--domain", domain, "--model", model, "--paradigm",
                          paradigm, "--strategy", "edco", "--seed", "0", "--evaluate"], env, logs / f"{paradigm}.log",
                         emulator)
        digests = run_digests(run_path, eval_path)
        row.update({f"{paradigm}_{k}": v for k, v in digests.items()})
        row.update({f"{paradigm}_wall_s": round(wall, 1), f"{paradigm}_cpu_s": round(cpu, 1)})
    return row


def summary(rows: list[dict]) -> list[str]:
    """Per portable-math mode: how many distinct digests the settings gave, per result."""
    keys = [k for k in rows[0] if k.endswith(("sha256", "weights", "selections", "metrics", "evaluation"))]
    lines = []
    for on in (False, True):
        mine = [r for r in rows if r["portable_math"] == on]
        if not mine:
            continue
        models = sorted({r["model"] for r in mine})
        for model in models:
            rows_of = [r for r in mine if r["model"] == model]
            counts = ", ".join(f"{k} {len({r[k] for r in rows_of})}" for k in keys)
            lines.append(f"portable math {'on' if on else 'off'}, {model}: distinct digests over {len(rows_of)} "
                         f"settings: {counts}")
    return lines


def cost_lines(rows: list[dict]) -> list[str]:
    lines = []
    for column in [k for k in rows[0] if k.endswith(("_wall_s", "_cpu_s"))]:
        off = sum(r[column] for r in rows if not r["portable_math"])
        on = sum(r[column] for r in rows if r["portable_math"])
        if not (off and on):
            continue
        lines.append(f"{column}: off {off:.1f} s, on {on:.1f} s (x{on / off:.2f}), summed over the settings")
    return lines


def invariance(args) -> int:
    work = REPO / "results" / RUN
    work.mkdir(parents=True, exist_ok=True)
    configs = write_configs(args.config, work, args.steps)
    raw = yaml.safe_load(configs[False].read_text(encoding="utf-8"))
    domain = raw["grid"]["domains"][0]
    env = job_env({})
    for name in ["general", *raw["grid"]["domains"]]:
        if not layout.data_file(RUN, name, "train").is_file():
            edco(["make-data", "--config", str(configs[False]), "--domain", name], env, work / "make-data.log")
    rows = []
    for name in args.settings:
        what, setting = SETTINGS[name]
        emulator = ["qemu-x86_64", "-cpu", args.emulate] if name == "emulated" else []
        for on in args.portable:  # side by side: a pair shares the machine's load
            for model in args.model:
                logs = work / "logs" / name / ("on" if on else "off") / model
                logs.mkdir(parents=True, exist_ok=True)
                row = {"setting": name, "stands_in_for": what, "portable_math": on, "model": model,
                       **measure(configs[on], model, domain, setting, args.runs, logs, emulator)}
                rows.append(row)
                print(f"{name:15} portable {'on ' if on else 'off'} {model}: base {row['base_sha256'][:16]} loss "
                      f"{row['final_loss']:.5f} {row['base_wall_s']} s"
                      + "".join(f" {p} {row[f'{p}_weights'][:12]}/{row[f'{p}_selections'][:8]}/"
                                f"{row[f'{p}_evaluation'][:8]}" for p in ("sft", "rl") if f"{p}_weights" in row),
                      flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    frame = pd.DataFrame(rows)
    io.write_text(args.out / "invariance.csv", frame.to_csv(index=False))
    shown = frame.copy()
    for column in [c for c in shown if c.endswith(("sha256", "weights", "selections", "metrics", "evaluation"))]:
        shown[column] = shown[column].str[:12]
    notes = summary(rows) + cost_lines(rows)
    machine = f"{json.dumps(io.read_json(layout.model_dir(RUN, args.model[0], layout.SHARED_BASE) / 'manifest.json')['platform']['cpu']['model'])}"
    text = (f"# Portable math: invariance and cost\n\n`python benchmarks/portable_math.py {' '.join(sys.argv[1:])}`, "
            f"config {args.config}, CPU {machine}, {os.cpu_count()} CPUs, load average before "
            f"{os.getloadavg()[0]:.1f}.\n\n" + "\n".join(f"- {line}" for line in notes) + "\n\n"
            + markdown(shown.drop(columns=["stands_in_for"])) + "\n")
    io.write_text(args.out / "invariance.md", text)
    print("\n".join(notes))
    print(f"wrote {args.out / 'invariance.csv'} and {args.out / 'invariance.md'}")
    return 0


def digests(results: Path) -> int:
    """sha256sum lines (relative to the repository) of a run's shared base models' weights."""
    for path in sorted(results.glob("models/*/shared/model.safetensors")):
        print(f"{sha256(path)}  {path.relative_to(results)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "smoke.yaml")
    parser.add_argument("--model", action="append", help="model(s) of the config (default: its first)")
    parser.add_argument("--steps", type=int, help="base pretraining steps instead of the config's (quick looks)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of: {', '.join(SETTINGS)}")
    parser.add_argument("--runs", action="store_true", help="also one SFT and one GRPO run of edco per setting")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "portable_math")
    parser.add_argument("--portable", choices=["both", "off", "on"], default="both",
                        help="portable math off, on, or each in turn (default)")
    parser.add_argument("--name", default="portable_math_bench", help="run name of the jobs, results/<name>/; "
                                                  "two invocations at once need two")
    parser.add_argument("--digests", type=Path, metavar="RESULTS", help="only print sha256 lines of RESULTS/models/*/shared")
    parser.add_argument("--emulate", metavar="CPU", help="add the setting 'emulated': the jobs under qemu-x86_64 -cpu CPU "
                                                        "(portable math on only)")
    args = parser.parse_args(argv)
    globals()["RUN"] = args.name
    if args.digests:
        return digests(args.digests)
    args.portable = {"both": (False, True), "off": (False,), "on": (True,)}[args.portable]
    args.settings = args.settings.split(",")
    if args.emulate:
        if args.portable != (True,):
            parser.error("--emulate needs --portable on (the emulated job must start with glibc's tunable set)")
        if not shutil.which("qemu-x86_64"):
            parser.error("--emulate needs QEMU's user-mode emulator: apt-get install qemu-user")
        SETTINGS["emulated"] = (f"QEMU's {args.emulate} (another maker's approximate instructions, CPUID)",
                                {"GLIBC_TUNABLES": NO_FMA})
        args.settings.append("emulated")
    unknown = [s for s in args.settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; known: {', '.join(SETTINGS)}")
    args.model = args.model or [next(iter(yaml.safe_load(args.config.read_text(encoding="utf-8"))["models"]))]
    return invariance(args)


if __name__ == "__main__":
    raise SystemExit(main())
