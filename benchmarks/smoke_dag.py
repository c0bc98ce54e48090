"""Wall-clock and peak memory of the whole smoke DAG, from scratch, on this machine.

    .venv/bin/python benchmarks/smoke_dag.py                    # config/smoke.yaml, --cores 2
    .venv/bin/python benchmarks/smoke_dag.py --cores 2 --keep   # keep results/<run>/

Runs `snakemake --cores N --configfile CONFIG --config run=<CONFIG run>_dagbench` in a
fresh results directory, samples the resident memory of the whole process tree (every job
that runs side by side, summed) every 0.2 s, and reads Snakemake's per-job benchmark files.
Writes results/benchmarks/<run>_dag.json (wall and CPU seconds, every job, and where the time
went: benchmarks/dag_profile.py on the run and its Snakemake log) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and all its descendants right now."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def sample_peak(proc: psutil.Process, stop: threading.Event, out: dict) -> None:
    while not stop.is_set():
        out["peak"] = max(out.get("peak", 0), tree_rss(proc))
        time.sleep(0.2)


def read_job_benchmarks(root: Path) -> list[dict]:
    rows = []
    for tsv in sorted(root.glob("benchmarks/**/*.tsv")):
        header, values = tsv.read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t")))
        rows.append({"job": str(tsv.relative_to(root / "benchmarks").with_suffix("")),
                     "seconds": float(row["s"]), "max_rss_mb": float(row["max_rss"])})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/smoke.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's results directory")
    args = parser.parse_args()

    config = yaml.safe_load((REPO / args.config).read_text())
    run = f"{config['run']}_dagbench"
    root = REPO / "results" / run
    shutil.rmtree(root, ignore_errors=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--configfile", args.config,
           "--config", f"run={run}"]
    print("running:", " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), {}
    sampler = threading.Thread(target=sample_peak, args=(psutil.Process(proc.pid), stop, peak), daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    wall = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # every job's CPU, Snakemake's own included
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        print(stderr[-5000:], file=sys.stderr)
        return proc.returncode

    jobs = read_job_benchmarks(root)
    logs = sorted((REPO / ".snakemake" / "log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
    sys.path.insert(0, str(REPO))
    from benchmarks.dag_profile import summarise

    profile = summarise(root, logs[-1] if logs else None)  # where the time went: per rule, per phase
    result = {
        "config": args.config, "cores": args.cores, "wall_seconds": round(wall, 1),
        "cpu_seconds": round(children.ru_utime + children.ru_stime, 1),
        "peak_rss_mb_all_jobs": round(peak.get("peak", 0) / 2**20, 1),
        "max_rss_mb_one_job": max((j["max_rss_mb"] for j in jobs), default=None),
        "job_seconds_sum": round(sum(j["seconds"] for j in jobs), 1),
        "n_benchmarked_jobs": len(jobs),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python", "benchmarks/smoke_dag.py", "--config", args.config, "--cores", str(args.cores)]),
        "jobs": jobs,
        "profile": profile,
    }
    from edco.io import write_json

    out = REPO / "results" / "benchmarks" / f"{config['run']}_dag.json"
    write_json(out, result)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print(f"smoke DAG: {wall:.0f} s wall ({result['cpu_seconds']:.0f} s CPU) on {args.cores} cores, peak RSS (all jobs) "
          f"{result['peak_rss_mb_all_jobs']:.0f} MiB, largest job {result['max_rss_mb_one_job']} MiB -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
