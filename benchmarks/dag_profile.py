"""Where a finished grid's time went: per job kind, and inside the train jobs per phase.

    .venv/bin/python benchmarks/dag_profile.py results/smoke_dagbench
    .venv/bin/python benchmarks/dag_profile.py results/smoke_dagbench --json out.json

Reads what a run leaves behind, nothing is re-run: Snakemake's per-job benchmark files
(wall ``s`` and ``cpu_time``), every round's ``timing.json`` (scoring, selecting, training
wall-clock; training includes building the TRL trainer), every evaluation's per-mode seconds,
and the train job logs' "run i/n" timestamps (a run's wall-clock from its first log line to
the next run's). What a run's wall-clock holds beyond scoring, training and evaluation
(process start, model loading, checkpoint writing) is reported as ``other``; a job's time
before its first run (imports, config) as ``job start``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

RUN_LINE = re.compile(r"^(\S+ \S+) edco\.trainer run \d+/\d+: (\S+) (\S+) (\S+) (\S+) seed (\d+)")


def job_benchmarks(root: Path) -> list[dict]:
    """One row per Snakemake benchmark file: job name, kind, wall and CPU seconds."""
    rows = []
    for tsv in sorted(root.glob("benchmarks/**/*.tsv")):
        header, values = tsv.read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t")))
        job = str(tsv.relative_to(root / "benchmarks").with_suffix(""))
        rows.append({"job": job, "kind": job.split("/")[0], "wall": float(row["s"]),
                     "cpu": float(row.get("cpu_time") or "nan")})
    return rows


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run_walls(log: Path) -> dict[tuple, float]:
    """Run key -> wall-clock seconds, from a train job's log; the last run ends at the log's
    last timestamped line."""
    starts, last = [], None
    lines = log.read_text(errors="replace").splitlines()
    for line in lines:
        m = RUN_LINE.match(line)
        if m:
            starts.append((_stamp(m.group(1)), m.groups()[1:]))
        stamp = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) ", line)
        if stamp:
            last = _stamp(stamp.group(1))
    walls = {}
    for (t, key), nxt in zip(starts, [s[0] for s in starts[1:]] + [last]):
        walls[key] = nxt - t
    return walls


def run_phases(root: Path) -> list[dict]:
    """One row per trained run: paradigm, strategy, scoring / training / eval seconds, wall."""
    rows = []
    for run_json in sorted(root.glob("runs/*/*/*/*/seed*/run.json")):
        run = json.loads(run_json.read_text())
        rounds = [json.loads(p.read_text()) for p in sorted(run_json.parent.glob("round*/timing.json"))]
        ev = root / "eval" / run["domain"] / run["model"] / run["paradigm"] / run["strategy"] / f"seed{run['seed']}.json"
        summary = json.loads(ev.read_text())["summary"] if ev.is_file() else {}
        rows.append({
            "domain": run["domain"], "model": run["model"], "paradigm": run["paradigm"],
            "strategy": run["strategy"], "seed": run["seed"],
            "scoring": sum(r["scoring_seconds"] for r in rounds),
            "training": sum(r["training_seconds"] for r in rounds),
            "steps": sum(r.get("optimizer_steps", 0) for r in rounds),
            **{f"eval_{mode}": s["seconds"] for mode, s in summary.items()},
        })
    return rows


def attach_walls(root: Path, runs: list[dict], jobs: list[dict]) -> dict:
    """Add each run's wall-clock (from the train logs) and return per-job start-up seconds."""
    by_key = {(r["domain"], r["model"], r["paradigm"], r["strategy"], str(r["seed"])): r for r in runs}
    job_wall = {j["job"]: j["wall"] for j in jobs}
    startup = {}
    for log in sorted(root.glob("logs/train/**/*.log")):
        walls = run_walls(log)
        for key, wall in walls.items():
            if key in by_key:
                by_key[key]["wall"] = wall
        job = "train/" + str(log.relative_to(root / "logs" / "train").with_suffix(""))
        if job in job_wall and walls:
            startup[job] = job_wall[job] - sum(walls.values())
    return startup


def rule_timeline(log: Path) -> dict[str, dict]:
    """Per rule, from a Snakemake log: jobs, summed job wall-clock, and when the first job
    started and the last ended (seconds after the first job; 1 s resolution)."""
    when, pending, started, rule_of, spans = None, None, {}, {}, []
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", line)
        if m:
            when = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y").timestamp()
        elif m := re.match(r"^(?:local)?rule (\w+):", line):
            pending = m.group(1)
        elif (m := re.match(r"^\s+jobid: (\d+)", line)) and pending:
            started[m.group(1)], rule_of[m.group(1)], pending = when, pending, None
        elif (m := re.match(r"^Finished jobid: (\d+)", line)) and m.group(1) in started:
            spans.append((rule_of[m.group(1)], started[m.group(1)], when))
    t0 = min((s for _, s, _ in spans), default=0.0)
    out: dict[str, dict] = {}
    for rule, start, end in sorted(spans, key=lambda x: x[1]):
        row = out.setdefault(rule, {"jobs": 0, "wall": 0.0, "first_start": start - t0, "last_end": 0.0})
        row["jobs"] += 1
        row["wall"] += end - start
        row["last_end"] = max(row["last_end"], end - t0)
    return out


def summarise(root: Path, snakemake_log: Path | None = None) -> dict:
    jobs = job_benchmarks(root)
    runs = run_phases(root)
    startup = attach_walls(root, runs, jobs)
    kinds = defaultdict(lambda: {"jobs": 0, "wall": 0.0, "cpu": 0.0})
    for j in jobs:
        k = kinds[j["kind"]]
        k["jobs"] += 1
        k["wall"] += j["wall"]
        k["cpu"] += j["cpu"]
    phases = defaultdict(lambda: defaultdict(float))
    for r in runs:
        p = phases[(r["paradigm"], r["strategy"])]
        p["runs"] += 1
        for key in ("scoring", "training", "steps", "wall", *[k for k in r if k.startswith("eval_")]):
            p[key] += r.get(key, 0.0)
        p["other"] += r.get("wall", 0.0) - r["scoring"] - r["training"] - sum(
            v for k, v in r.items() if k.startswith("eval_"))
    timeline = rule_timeline(snakemake_log) if snakemake_log else {}
    return {"root": str(root), "rules": timeline, "jobs_by_kind": {k: {kk: round(vv, 1) for kk, vv in v.items()} for k, v in kinds.items()},
            "train_job_start_seconds": round(sum(startup.values()), 1), "train_jobs": len(startup),
            "runs_by_paradigm_strategy": {f"{p}/{s}": {k: round(v, 1) for k, v in d.items()}
                                          for (p, s), d in sorted(phases.items())}}


def print_summary(result: dict) -> None:
    if result["rules"]:
        print("rule              jobs   wall s   first start   last end   (s after the first job)")
        for rule, v in result["rules"].items():
            print(f"{rule:<16} {v['jobs']:>5} {v['wall']:>8.0f} {v['first_start']:>13.0f} {v['last_end']:>10.0f}")
        print()
    print(f"{result['root']}\n\njob kind        jobs   wall s    cpu s")
    for kind, v in sorted(result["jobs_by_kind"].items(), key=lambda kv: -kv[1]["wall"]):
        print(f"{kind:<14} {v['jobs']:>5} {v['wall']:>8.1f} {v['cpu']:>8.1f}")
    print(f"\ntrain jobs: {result['train_jobs']}, time before their first run (process start, imports): "
          f"{result['train_job_start_seconds']:.1f} s in all")
    cols = ["runs", "wall", "scoring", "training", "eval_generate", "eval_loglikelihood", "other", "steps"]
    print("\nsums over runs (s)   " + " ".join(f"{c:>12}" for c in cols))
    for key, d in result["runs_by_paradigm_strategy"].items():
        print(f"{key:<20} " + " ".join(f"{d.get(c, 0.0):>12.1f}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a run's results directory, e.g. results/smoke_dagbench")
    parser.add_argument("--json", help="also write the summary here")
    parser.add_argument("--snakemake-log", help="a .snakemake/log/*.snakemake.log of the run: adds each rule's span")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "benchmarks").is_dir():
        raise SystemExit(f"{root}: no benchmarks/ directory; run the workflow (benchmarks/smoke_dag.py --keep) first")
    result = summarise(root, Path(args.snakemake_log) if args.snakemake_log else None)
    print_summary(result)
    if args.json:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from edco.io import write_json

        write_json(Path(args.json), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
