"""profiles/slurm on a real one-node SLURM cluster (profiles/slurm/local-cluster.sh) with the real
snakemake-executor-plugin-slurm in the controller's environment (envs/snakemake.yaml, built as a
venv by profiles/slurm/controller-venv.sh): a small grid (one domain and model, SFT and GRPO,
random and edco, one seed, one train job per run) runs to its tables, every non-local job a SLURM
job; one train job is cancelled after its first round and the rerun resumes it; a job over its
memory request is killed by SLURM and the log says what to raise. The tables must equal the same
grid's under --cores.

It installs packages (apt-get) and starts daemons, so it runs only under CI=true as root; the
parsing of Snakemake's log (edco/slurm.py) is tested everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from edco.slurm import memory_kills

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "profiles" / "slurm" / "local-cluster.sh"
PROFILES = ["--profile", str(REPO / "profiles" / "slurm"), "--profile", str(REPO / "profiles" / "slurm-local")]
ENABLE = "sudo env CI=true python -m pytest tests/test_slurm.py  (as root: apt-get installs Slurm, munge, MariaDB)"
RUN = "slurm_ci"
VICTIM = ("medicine", "qwen3", "sft", "edco", 0)  # the run whose train job is cancelled after round 1
SNAKEMAKE_TIMEOUT = 600  # s, each invocation; timeout -k: the plugin can hang and ignore SIGTERM


def cluster_enabled() -> bool:
    return os.environ.get("CI") == "true" and os.geteuid() == 0


# The cluster's tests are also marked slow: ~4 min (a grid under --cores and under SLURM, a cancel and
# resume, a memory kill), outside the quick suite (`pytest -m "not slow and not vllm"`) as root under CI=true.
needs_cluster = pytest.mark.skipif(not cluster_enabled(), reason=f"starts a SLURM cluster; to run: {ENABLE}")


def grid_config() -> dict:
    """The smoke world cut to 4 runs (SFT and GRPO x random and edco, one seed), each its own train
    job (compute.job: run), 2 rounds each; final weights kept to compare them."""
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["run"] = RUN
    raw["seeds"] = [0]
    raw["grid"].update(domains=["medicine"], models=["qwen3"], paradigms=["sft", "rl"], strategies=["random", "edco"])
    raw["models"] = {"qwen3": raw["models"]["qwen3"]}
    raw["models"]["qwen3"]["pretrain"]["steps"] = 20
    raw["data"]["synthetic"].update(entities=12, levels=[1, 2], train_per_level=20, test_per_level=5, general_size=200)
    raw["curriculum"] = {"rounds": 2, "n": 16}
    raw["sft"].update(num_train_epochs=1)
    raw["rl"].update(max_steps=2)
    raw["evaluate"]["max_gen_toks"] = 32
    raw["estimator_bench"]["enabled"] = False
    raw["compute"].update(job="run", keep_final=True, threads=1)
    return raw


# --------------------------------------------------------------------------- helpers
def job_env(slurm_conf: str | None = None) -> dict:
    """Jobs are submitted with --export=ALL: the suite's python first on PATH (the jobs'
    `python -m edco`), this checkout first on the import path."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    return env


def snakemake_cmd(snakemake: list[str], workdir: Path, config: Path, *extra: str) -> list[str]:
    return ["timeout", "-k", "20", str(SNAKEMAKE_TIMEOUT), *snakemake, "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(config), *extra]


def run_dir(workdir: Path, domain, model, paradigm, strategy, seed) -> Path:
    return workdir / "results" / RUN / "runs" / domain / model / paradigm / strategy / f"seed{seed}"


def announced_jobs(log: str) -> Counter:
    """(kind, rule, wildcard values joined by '_') of every job Snakemake announced; kind is
    'rule' (a cluster job) or 'localrule'."""
    jobs = Counter()
    for kind, rule, block in re.findall(r"^(localrule|rule) (\w+):\n((?:    .*\n)*)", log, re.M):
        wildcards = re.search(r"^    wildcards: (.*)$", block, re.M)
        values = "_".join(item.split("=", 1)[1] for item in wildcards.group(1).split(", ")) if wildcards else ""
        jobs[(kind, rule, values)] += 1
    return jobs


def sacct_jobs(run_uuid: str, env: dict) -> list[dict]:
    out = subprocess.run(["sacct", "-X", "-P", "-n", "--starttime", "now-86400", "--name", run_uuid,
                          "-o", "JobID,JobName,Comment,State"], env=env, capture_output=True, text=True, check=True)
    return [dict(zip(("id", "name", "comment", "state"), line.split("|"))) for line in out.stdout.splitlines()]


def comment(rule: str, values: str) -> str:
    """The comment the plugin gives a job (sacct's Comment: AccountingStoreFlags=job_comment)."""
    return f"rule_{rule}_wildcards_{values}" if values else f"rule_{rule}"


class Timed:
    def __init__(self):
        self.seconds = {}

    def __call__(self, name, fn, *args, **kwargs):
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] = round(time.monotonic() - start, 1)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def timings():
    timed = Timed()
    yield timed
    print("\ntest_slurm timings (s):", timed.seconds)


@pytest.fixture(scope="module")
def cores_started(tmp_path_factory, grid):
    """The same grid under --cores 2 (one torch thread per job, as under SLURM), the reference:
    started first, so that it runs while the cluster is installed and started (mostly apt's
    downloads and daemons' start), not after the SLURM runs."""
    workdir = tmp_path_factory.mktemp("cores")
    cmd = snakemake_cmd([sys.executable, "-m", "snakemake"], workdir, grid, "--cores", "2")
    logs = tmp_path_factory.mktemp("cores-output")
    started = time.monotonic()
    with open(logs / "stdout", "w") as stdout, open(logs / "stderr", "w") as stderr:
        process = subprocess.Popen(cmd, cwd=workdir, env=job_env(), stdout=stdout, stderr=stderr, text=True)
    yield workdir, process, started, logs
    if process.poll() is None:
        process.kill()


@pytest.fixture(scope="module")
def cluster(cores_started, timings):
    """The one-node cluster, started (and installed) by the script; stopped after the module if
    this module started it."""
    state_dir = os.environ.get("EDCO_SLURM_DIR", "/var/lib/edco-slurm")
    was_up = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True).returncode == 0
    result = timings("cluster start", subprocess.run, ["bash", str(CLUSTER), "start"], capture_output=True,
                     text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    env = job_env(f"{state_dir}/etc/slurm.conf")
    yield env
    if not was_up:
        subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def controller(cores_started, controller_venv) -> list[str]:
    """The controller's `snakemake`, by its full path (the jobs run this venv's Snakemake too);
    the venv is the session's (tests/conftest.py), shared with tests/test_envs.py."""
    return [str(controller_venv / "bin" / "snakemake")]


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    config = tmp_path_factory.mktemp("config") / "grid.yaml"
    config.write_text(yaml.safe_dump(grid_config()))
    return config


@pytest.fixture(scope="module")
def cores_run(cores_started, timings):
    workdir, process, started, logs = cores_started
    process.wait()
    timings.seconds["grid --cores (overlapping the setup)"] = round(time.monotonic() - started, 1)
    result = subprocess.CompletedProcess(process.args, process.returncode, (logs / "stdout").read_text(),
                                         (logs / "stderr").read_text())
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return workdir, result


def cancel_after_first_round(workdir: Path, env: dict, found: dict, stop: threading.Event) -> None:
    """scancel the victim's train job once its round 1 is done (round1/done.json)."""
    done = run_dir(workdir, *VICTIM) / "round1" / "done.json"
    wanted = comment("train", "_".join(map(str, VICTIM)))
    while not stop.is_set():
        if done.exists():
            queue = subprocess.run(["squeue", "-h", "-o", "%i|%k"], env=env, capture_output=True, text=True).stdout
            ids = [line.split("|")[0] for line in queue.splitlines() if line.split("|", 1)[-1] == wanted]
            if ids:
                subprocess.run(["scancel", ids[0]], env=env, check=True)
                found.update(slurm_job=ids[0], round2_started=(done.parent.parent / "round2").exists(),
                             finished=(done.parent.parent / "run.json").exists())
                return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def slurm_runs(cluster, controller, grid, cores_run, tmp_path_factory, timings):
    """The grid through profiles/slurm + profiles/slurm-local: a first invocation whose victim
    train job is scancel'ed after its round 1, then the rerun that finishes the grid."""
    workdir = tmp_path_factory.mktemp("slurm")
    cmd = snakemake_cmd(controller, workdir, grid, *PROFILES)
    found, stop = {}, threading.Event()
    watcher = threading.Thread(target=cancel_after_first_round, args=(workdir, cluster, found, stop), daemon=True)
    watcher.start()
    try:
        first = timings("grid slurm, cancelled", subprocess.run, cmd, cwd=workdir, env=cluster, capture_output=True,
                        text=True)
    finally:
        stop.set()
        watcher.join()
    rerun = timings("grid slurm, rerun", subprocess.run, cmd, cwd=workdir, env=cluster, capture_output=True,
                    text=True)
    return workdir, first, rerun, found


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def run_uuid(log: str) -> str:
    return re.search(r"^SLURM run ID: (\S+)$", log, re.M).group(1)


# --------------------------------------------------------------------------- tests
@needs_cluster
@pytest.mark.slow
def test_cancelled_train_job_stops_the_controller_and_the_rerun_resumes_it(slurm_runs, cores_run):
    workdir, first, rerun, found = slurm_runs
    log = output(first)
    assert found.get("slurm_job"), "the victim's train job was never seen after its round 1:\n" + log[-5000:]
    assert not found["finished"], "the victim finished before it was cancelled: nothing to resume"
    # The controller reports the cancelled job and stops by itself (not by timeout's 124/137).
    assert first.returncode == 1, log[-5000:]
    assert re.search(rf"Error in rule train:\n    message: SLURM-job '{found['slurm_job']}' failed, SLURM status is:"
                     r" 'CANCELLED", log), log[-5000:]
    assert "Exiting because a job execution failed" in log
    # The rerun trains the victim from its finished round 1 only, and finishes the grid.
    assert rerun.returncode == 0, output(rerun)[-5000:]
    victim_log = workdir / "results" / RUN / "logs" / "train" / "/".join(map(str, VICTIM[:4])) / f"seed{VICTIM[4]}.log"
    assert re.search(r"resuming \S+ after round 1", victim_log.read_text()), victim_log.read_text()[-3000:]
    # ... and ends where the uninterrupted run (--cores) ends: same selections, same final weights.
    cores = run_dir(cores_run[0], *VICTIM)
    resumed = run_dir(workdir, *VICTIM)
    for round_ in ("round1", "round2"):
        assert (resumed / round_ / "selection.jsonl").read_text() == (cores / round_ / "selection.jsonl").read_text()
    assert (resumed / "final" / "model.safetensors").read_bytes() == (cores / "final" / "model.safetensors").read_bytes()


@needs_cluster
@pytest.mark.slow
def test_every_cluster_job_ran_as_a_slurm_job(slurm_runs, cores_run, cluster):
    """Every job the grid needs that is not a localrule ran as a SLURM job that sacct lists
    COMPLETED under the run ID Snakemake named it with (its job name) and the plugin's
    rule_<rule>_wildcards_<values> comment; the local rules never reached sacct."""
    _, first, rerun, found = slurm_runs
    needed = {(rule, values) for (_, rule, values) in announced_jobs(output(cores_run[1]))}
    # (Up to the first error: the failed job's logs follow it, where the job's own Snakemake
    # announces the job it runs as a localrule.)
    announced = announced_jobs(output(first).split("\nError in rule")[0]) + announced_jobs(output(rerun))
    local = {rule for (kind, rule, _) in announced if kind == "localrule"}
    assert {"train", "data", "base_model", "evaluate_base"}.isdisjoint(local), local
    cluster_jobs = {(rule, values) for rule, values in needed if rule not in local}
    completed, states = set(), Counter()
    for result in (first, rerun):
        for job in sacct_jobs(run_uuid(output(result)), cluster):
            states[job["state"].split()[0]] += 1
            assert job["comment"].startswith("rule_"), job
            if job["state"] == "COMPLETED":
                completed.add(job["comment"])
    assert {comment(rule, values) for rule, values in cluster_jobs} <= completed, (cluster_jobs, completed)
    assert not any(c.startswith(tuple(f"rule_{rule}" for rule in local)) for c in completed)
    assert {"train", "data", "general_data", "base_model", "evaluate_base"} <= {rule for rule, _ in cluster_jobs}
    assert states["CANCELLED"] == 1 and found["slurm_job"]  # the victim, and nothing else failed
    assert set(states) <= {"COMPLETED", "CANCELLED"}, states


# Columns measured in seconds, and what is derived from them (ratios to random, the Pareto front,
# the budget test, the verdict): the same work timed twice on a shared machine.
TIMED = re.compile(r"seconds|overhead|compute|robust|pareto|within_budget|winner|verdict|scoring_saved")
TIME_RATIO_BOUND = 5.0


@needs_cluster
@pytest.mark.slow
def test_tables_equal_those_of_the_same_grid_under_cores(slurm_runs, cores_run):
    """Accuracy, levels, per-question answers, token counts and steps are equal (one torch thread
    per job both ways, same seeds). Wall-clock columns cannot be: each is a time measured in the
    job, under the machine's load of the moment; bounded to within 5x of --cores's."""
    import pandas as pd

    tables = lambda workdir: workdir / "results" / RUN / "tables"  # noqa: E731
    slurm, cores = tables(slurm_runs[0]), tables(cores_run[0])
    names = sorted(p.name for p in cores.glob("*.csv"))
    assert {"main.csv", "levels.csv", "cost.csv", "compute.csv"} <= set(names)
    assert names == sorted(p.name for p in slurm.glob("*.csv"))
    for name in names:
        a, b = pd.read_csv(slurm / name), pd.read_csv(cores / name)
        assert list(a.columns) == list(b.columns), name
        # Rows in key order: compute.csv orders a cell's strategies by their measured compute.
        keys = [c for c in ("domain", "model", "paradigm", "strategy", "mode", "level") if c in a.columns]
        a, b = (t.sort_values(keys, kind="stable").reset_index(drop=True) for t in (a, b))
        exact = [c for c in a.columns if not TIMED.search(c)]
        pd.testing.assert_frame_equal(a[exact], b[exact], check_exact=True, obj=name)
        for column in (c for c in a.columns if c.endswith("_seconds")):
            ratio = (a[column] + 1) / (b[column] + 1)  # +1 s: a round's scoring of ~0 s stays ~0
            assert ratio.between(1 / TIME_RATIO_BOUND, TIME_RATIO_BOUND).all(), (name, column, ratio.tolist())
    questions = pd.read_parquet(slurm / "questions.parquet")
    pd.testing.assert_frame_equal(questions, pd.read_parquet(cores / "questions.parquet"), check_exact=True)


@needs_cluster
@pytest.mark.slow
def test_a_job_over_its_memory_request_is_killed_and_the_log_names_the_request(slurm_runs, controller, cluster,
                                                                               tmp_path, timings):
    """base_model asked 200 MB (its torch alone needs more): SLURM kills it, and Snakemake's
    output names the rule and the mem_mb request to raise (edco/slurm.py, via onerror)."""
    workdir = tmp_path / "oom"
    shutil.copytree(slurm_runs[0], workdir, symlinks=True)
    small = tmp_path / "small-memory"
    small.mkdir()
    profile = yaml.safe_load((REPO / "profiles" / "slurm-local" / "config.yaml").read_text())
    profile["set-resources"]["base_model"] = {**profile["set-resources"]["base_model"], "mem_mb": 200}
    (small / "config.yaml").write_text(yaml.safe_dump(profile))
    config = workdir / "grid.yaml"
    config.write_text(yaml.safe_dump(grid_config()))
    cmd = snakemake_cmd(controller, workdir, config, *PROFILES, "--profile", str(small), "--forcerun", "base_model",
                        "--until", "base_model")
    result = timings("memory kill", subprocess.run, cmd, cwd=workdir, env=cluster, capture_output=True, text=True)
    log = output(result)
    assert result.returncode == 1, log[-5000:]
    slurm_job = re.search(r"Job \d+ has been submitted with SLURM jobid (\d+)", log).group(1)
    line = next((l for l in log.splitlines() if l.startswith("Out of memory: SLURM killed rule base_model")), None)
    assert line, log[-5000:]
    assert f"(SLURM job {slurm_job})" in line and "mem_mb=200" in line and "Raise base_model's mem_mb" in line


# The plugin's own sbatch line for a job with these resources (its submit_string and gres code,
# run in the controller's environment), as it would submit it.
SBATCH_LINE = r"""
import json, sys
from types import SimpleNamespace
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string

class Resources(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

for rule, res in json.loads(sys.argv[1]).items():
    job = SimpleNamespace(resources=Resources(res), threads=1, name=rule, wildcards=[], is_group=lambda: False)
    params = dict(run_uuid="edco-gpu-check", slurm_logfile="/dev/null", comment_str=f"rule_{rule}",
                  account=f" -A {res['slurm_account']}" if res.get("slurm_account") else "",
                  partition=f" -p {res['slurm_partition']}", workdir="/tmp")
    print(rule + "\t" + get_submit_command(job, params) + set_gres_string(job))
"""


def gpu_job_resources(controller: list[str], env: dict, *profiles: str) -> dict:
    """rule -> resources of the paper config's GPU jobs (config/config.yaml) under these profiles,
    from a dry run (the dryrun executor: nothing is submitted)."""
    result = subprocess.run([*controller, "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO),
                             *profiles, "--executor", "dryrun", "--sdm", "env-modules"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, output(result)[-3000:]
    found = {}
    for rule, line in re.findall(r"^rule (train|evaluate_base|estimator_bench):\n(?:    .*\n)*?    resources: (.*)$",
                                 result.stdout, re.M):
        items = dict(item.split("=", 1) for item in line.split(", "))
        found[rule] = {k: int(v) if v.isdigit() else v for k, v in items.items()
                       if k in ("gpu", "mem_mb", "runtime", "cpus_per_task", "slurm_partition", "slurm_account")}
    assert set(found) == {"train", "evaluate_base", "estimator_bench"}, found
    return found


@needs_cluster
@pytest.mark.slow
def test_the_paper_configs_gpu_jobs_reach_sbatch_as_gpus_and_are_accepted(controller, cluster):
    """The paper config's train / evaluate_base / estimator_bench jobs ask `gpu: 1`; the plugin
    turns it into `--gpus=1` on the gpu partition, with profiles/slurm's paper-sized requests. With
    profiles/slurm-local's sizes the local cluster (8 stand-in GPUs) accepts each at submission
    (`sbatch --test-only`): scheduled, not run."""
    python = str(Path(controller[0]).parent / "python")
    profiles = ["--profile", str(REPO / "profiles" / "slurm")]
    for layered, accepted in ((profiles, False), (PROFILES, True)):
        resources = gpu_job_resources(controller, cluster, *layered)
        lines = subprocess.run([python, "-c", SBATCH_LINE, json.dumps(resources)], env=cluster, capture_output=True,
                               text=True, check=True).stdout.splitlines()
        assert len(lines) == 3
        for rule, line in (entry.split("\t") for entry in lines):
            assert " --gpus=1" in line and " -p gpu" in line and "--gres" not in line, line
            assert f"--mem {resources[rule]['mem_mb']}" in line and f"--cpus-per-task={resources[rule]['cpus_per_task']}" in line
            if accepted:
                test = subprocess.run([*shlex.split(line.replace("sbatch ", "sbatch --test-only ", 1)), "--wrap", "true"],
                                      env=cluster, capture_output=True, text=True)
                assert test.returncode == 0 and "to start at" in test.stderr, (rule, line, test.stderr)


# --------------------------------------------------------------------------- everywhere
SNAKEMAKE_LOG = """\
[Mon Dec  7 15:34:53 2026]
rule base_model:
    input: results/x/config.yaml
    output: results/x/models/qwen3/shared/manifest.json
    log: results/x/logs/models/qwen3/shared.log
    jobid: 5
    wildcards: model=qwen3, base=shared
    resources: tmpdir=<TBD>, mem_mb=200, mem=200 MB, slurm_account=edco, runtime=10, cpus_per_task=1
Job 5 has been submitted with SLURM jobid 11 (log: {slurm_log}).
[Mon Dec  7 15:34:54 2026]
rule data:
    jobid: 6
    resources: tmpdir=<TBD>, mem_mb=1500
Error in rule base_model:
    message: SLURM-job '11' failed, SLURM status is: 'FAILED'. Reason: Unknown.For further error details see the cluster/cloud log and the log files of the involved rule(s).
    jobid: 5
    log: results/x/logs/models/qwen3/shared.log, {slurm_log} (check log file(s) for error details)
    shell:
        python -m edco base-model --config results/x/config.yaml > results/x/logs/models/qwen3/shared.log 2>&1
        (command exited with non-zero exit code)
    external_jobid: 11
Error in rule data:
    message: SLURM-job '12' failed, SLURM status is: '{data_status}'. Reason: Unknown.
    jobid: 6
    log: results/x/logs/data/law.log (check log file(s) for error details)
    external_jobid: 12
"""


def test_memory_kills_names_the_rule_and_its_request(tmp_path):
    """The line slurmstepd writes into the job's SLURM log when it kills a step over its memory
    (this cluster's polling), and the OUT_OF_MEMORY state (cgroups), each name rule and request;
    a job that failed otherwise gets no such line."""
    slurm_log = tmp_path / "11.log"
    slurm_log.write_text("slurmstepd-vm: error: StepId=11.0 exceeded memory limit (250908672 > 209715200), being killed\n")
    lines = memory_kills(SNAKEMAKE_LOG.format(slurm_log=slurm_log, data_status="FAILED"))
    assert len(lines) == 1
    assert lines[0].startswith("Out of memory: SLURM killed rule base_model (SLURM job 11)")
    assert "mem_mb=200 (it reached 239 MB)" in lines[0] and "Raise base_model's mem_mb to 478 or more" in lines[0]
    lines = memory_kills(SNAKEMAKE_LOG.format(slurm_log=tmp_path / "gone.log", data_status="OUT_OF_MEMORY"))
    assert [line.split(" for ")[0] for line in lines] == ["Out of memory: SLURM killed rule data (SLURM job 12)"]
    assert "mem_mb=1500" in lines[0]


def test_the_profiles_fit_together():
    """slurm-local restates every cluster rule's resources (a later profile replaces set-resources
    whole) within the local node, and names the account local-cluster.sh registers."""
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    local = yaml.safe_load((REPO / "profiles" / "slurm-local" / "config.yaml").read_text())
    assert set(local["set-resources"]) == set(slurm["set-resources"])
    for rule, res in local["set-resources"].items():
        assert res["slurm_partition"] == slurm["set-resources"][rule]["slurm_partition"], rule
        assert res["cpus_per_task"] == 1 and res["mem_mb"] <= 8000 and res["slurm_account"] == "edco", rule
    assert 'ACCOUNT="${EDCO_SLURM_ACCOUNT:-edco}"' in CLUSTER.read_text()
    assert local["software-deployment-method"] == "env-modules"
