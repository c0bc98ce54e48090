"""The CPU study, third edition, as pre-registered (results/reference/cpu_study_v3/PLAN.md), in
one command: tuning, the rule that picks each arm's learning rate, random_matched's compute
ratio, then the study, then its files copied into results/reference/cpu_study_v3/.

    python benchmarks/cpu_study_v3.py                 # everything (resumes: Snakemake skips what is done)
    python benchmarks/cpu_study_v3.py --tuning-only   # tuning and the choice, no study
    python benchmarks/cpu_study_v3.py --choose-only   # the choice from finished tuning runs
    python benchmarks/cpu_study_v3.py --study-only    # the study at the committed tuning/chosen.yaml
                                                      # (tuning done earlier, e.g. in another session)

1. Tuning: for each of the three rate pairs (SFT, GRPO), one Snakemake run of the study's config
   (config/cpu_study.yaml + config/cpu_study_v3.yaml) on seeds 100 and 101 with the tuned arms
   (every arm but random_matched), both paradigms, all four cells: results/cpu_study_v3_tune<i>/.
2. The rule (PLAN.md): per arm and paradigm, the rate with the highest mean generate-mode test
   accuracy over the 4 cells x 2 seeds; an exact tie goes to the smaller rate. random_matched
   takes random's. Written: tuning/tuning.{csv,md}.
3. random_matched's ratio per paradigm: 1.1 x the largest, over arms and the tuning runs that
   ran alone (PLAN.md's addendum: tune1 and tune2), of the arm's median total compute (scoring +
   selecting + training) / random's median in the same run, rounded up to 0.1. Written with the
   rates: tuning/chosen.yaml.
4. The study: the same two configs plus tuning/chosen.yaml as a third layer, seeds 10-14.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edco import io, layout  # noqa: E402
from edco.config import load_layers  # noqa: E402
from edco.report import load  # noqa: E402
from edco.report.render import markdown  # noqa: E402

CONFIGS = [REPO / "config" / "cpu_study.yaml", REPO / "config" / "cpu_study_v3.yaml"]
REFERENCE = REPO / "results" / "reference" / "cpu_study_v3"
TUNING_SEEDS = [100, 101]
RATES = [(1e-3, 3e-4), (2e-3, 5e-4), (4e-3, 1e-3)]  # (SFT, GRPO) per tuning run (PLAN.md's grids)
UNTUNED = "random_matched"  # takes random's rate
MARGIN = 1.1  # random_matched's ratio: this x the costliest arm's median compute relative to random's
MODE = "generate"


def tuning_layer(index: int) -> dict:
    sft, rl = RATES[index]
    config = load_layers(CONFIGS)
    arms = [s for s in config["grid"]["strategies"] if s != UNTUNED]
    return {"run": f"cpu_study_v3_tune{index}", "seeds": TUNING_SEEDS, "grid": {"strategies": arms},
            "sft": {"learning_rate": sft}, "rl": {"learning_rate": rl}}


def snakemake(layers: list[Path], cores: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", "--cores", cores, "--configfile", *map(str, layers)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def write_layer(path: Path, layer: dict) -> Path:
    io.write_text(path, yaml.safe_dump(layer, sort_keys=False))
    return path


def tuning_config(index: int) -> dict:
    return load_layers([*CONFIGS, REFERENCE / "tuning" / f"layer{index}.yaml"])


def tuning_frame():
    """Mean generate-mode accuracy per arm x paradigm x rate over cells and seeds, and per cell."""
    import pandas as pd

    rows = []
    for index, (sft, rl) in enumerate(RATES):
        frame = load.accuracies(load.evaluations(tuning_config(index), base=False))
        frame = frame[frame["mode"] == MODE]
        for paradigm, rate in (("sft", sft), ("rl", rl)):
            part = frame[frame["paradigm"] == paradigm]
            for arm, group in part.groupby("strategy", sort=False):
                cells = group.groupby(["domain", "model"])["accuracy"].mean()
                rows.append({"arm": arm, "paradigm": paradigm, "rate": rate, "runs": len(group),
                             "mean_accuracy": group["accuracy"].mean(),
                             **{f"{d}/{m}": v for (d, m), v in cells.items()}})
    return pd.DataFrame(rows)


def choose(frame) -> dict[str, dict[str, float]]:
    """PLAN.md's rule: the highest mean accuracy; an exact tie goes to the smaller rate."""
    chosen: dict[str, dict[str, float]] = {}
    for (arm, paradigm), group in frame.groupby(["arm", "paradigm"], sort=False):
        best = group.sort_values(["mean_accuracy", "rate"], ascending=[False, True]).iloc[0]
        chosen.setdefault(arm, {})[paradigm] = float(best["rate"])
    chosen[UNTUNED] = dict(chosen["random"])
    return chosen


# The tuning runs whose wall-clock counts for the ratio: tune0 ran beside other CPU work (PLAN.md,
# addendum of 2026-12-07), its accuracies count, its seconds do not.
TIMED_RUNS = [1, 2]


def compute_ratios() -> dict[str, float]:
    """random_matched's ratio per paradigm (PLAN.md and its addendum): per timed tuning run, each
    arm's median total compute / random's median in the same run; 1.1 x the largest over arms and
    runs, rounded up to 0.1."""
    ratios = {}
    for paradigm in ("sft", "rl"):
        costliest = 0.0
        for index in TIMED_RUNS:
            totals = load.run_totals(load.timing(tuning_config(index)))
            medians = totals[totals["paradigm"] == paradigm].groupby("strategy")["total_seconds"].median()
            costliest = max(costliest, float((medians / medians["random"]).max()))
        ratios[paradigm] = math.ceil(round(MARGIN * costliest * 10, 6)) / 10
    return ratios


def write_choice() -> Path:
    frame = tuning_frame()
    chosen = choose(frame)
    frame["chosen"] = [chosen[a][p] == r for a, p, r in zip(frame["arm"], frame["paradigm"], frame["rate"])]
    out = REFERENCE / "tuning"
    io.write_text(out / "tuning.csv", frame.to_csv(index=False))
    io.write_text(out / "tuning.md", markdown(frame.round(4)))
    ratios = compute_ratios()
    layer = {"learning_rates": chosen,
             "strategy_options": {UNTUNED: {"compute_ratio_sft": ratios["sft"], "compute_ratio_rl": ratios["rl"]}}}
    path = write_layer(out / "chosen.yaml", layer)
    keep_tuning_answers(out)
    print(frame.to_string(index=False))
    print(f"chosen: {chosen}\nrandom_matched compute ratios: {ratios}\nwrote {out}/tuning.csv, tuning.md, chosen.yaml")
    return path


def keep_tuning_answers(out: Path) -> None:
    """Each tuning run's per-question answers and compute table beside the choice: the choice
    and the ratio can be recomputed from committed files once the tuning runs are gone."""
    for index in range(len(RATES)):
        tables = REPO / layout.run_root(tuning_config(index)["run"]) / "tables"
        for name in ("questions.parquet", "compute.csv"):
            if (tables / name).is_file():
                (out / f"tune{index}").mkdir(parents=True, exist_ok=True)
                shutil.copy2(tables / name, out / f"tune{index}" / name)


def copy_results(config: dict) -> None:
    """The study's tables, plots and per-question answers into results/reference/cpu_study_v3/."""
    for name in ("tables", "plots"):
        source = layout.run_root(config["run"]) / name
        if source.is_dir():
            shutil.copytree(REPO / source, REFERENCE / name, dirs_exist_ok=True)
    print(f"copied tables and plots of results/{config['run']} into {REFERENCE}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--tuning-only", action="store_true")
    parser.add_argument("--choose-only", action="store_true")
    parser.add_argument("--study-only", action="store_true",
                        help="run the study at the chosen rates already in tuning/chosen.yaml")
    args = parser.parse_args()
    if args.study_only:
        return study(args.cores)
    if not args.choose_only:
        for index in range(len(RATES)):
            layer = write_layer(REFERENCE / "tuning" / f"layer{index}.yaml", tuning_layer(index))
            snakemake([*CONFIGS, layer], args.cores)
    write_choice()
    if args.tuning_only or args.choose_only:
        return 0
    return study(args.cores)


def study(cores: str) -> int:
    chosen = REFERENCE / "tuning" / "chosen.yaml"
    if not chosen.is_file():
        sys.exit(f"{chosen} is missing: run the tuning first (python benchmarks/cpu_study_v3.py --tuning-only)")
    snakemake([*CONFIGS, chosen], cores)
    copy_results(load_layers([*CONFIGS, chosen]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
