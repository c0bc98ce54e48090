"""The per-GPU lock wrapper (edco/gpulock.py) with a fake GPU count: concurrent jobs get
disjoint devices, a job finds none free and waits, a killed job's GPU is free again, and a
CUDA_VISIBLE_DEVICES set by SLURM is left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A stand-in GPU job: records the devices it was given and when it ran, then holds them.
JOB = ("import json, os, sys, time; t0 = time.time(); time.sleep(float(sys.argv[2])); "
       "json.dump({'devices': os.environ.get('CUDA_VISIBLE_DEVICES'), 'start': t0, 'end': time.time()}, "
       "open(sys.argv[1], 'w'))")


def wrapped(tmp_path: Path, gpus: int, out: str, seconds: float, count: int = 2, **env) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    environ.update({"EDCO_GPU_COUNT": str(count), "EDCO_GPU_LOCK_DIR": str(tmp_path / "locks"),
                    "EDCO_GPU_POLL_SECONDS": "0.05", **env})
    return subprocess.Popen([sys.executable, "-m", "edco.gpulock", str(gpus), "--", sys.executable, "-c", JOB,
                             str(tmp_path / out), str(seconds)], cwd=REPO, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen, tmp_path: Path, out: str) -> dict:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return {**json.loads((tmp_path / out).read_text()), "stderr": err}


def wait_for_locks(tmp_path: Path, n: int) -> None:
    """Until ``n`` lock files name a holder (the wrapper writes them before exec)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        files = list((tmp_path / "locks").glob("gpu*.lock")) if (tmp_path / "locks").exists() else []
        if sum(1 for f in files if f.read_text().startswith("pid ")) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the wrapped jobs never took their GPUs")


def test_concurrent_jobs_get_disjoint_gpus_and_a_third_waits(tmp_path):
    first, second = wrapped(tmp_path, 1, "a.json", 2.0), wrapped(tmp_path, 1, "b.json", 2.0)
    wait_for_locks(tmp_path, 2)
    third = wrapped(tmp_path, 1, "c.json", 0.0)
    a, b, c = result(first, tmp_path, "a.json"), result(second, tmp_path, "b.json"), result(third, tmp_path, "c.json")
    assert {a["devices"], b["devices"]} == {"0", "1"}
    assert c["devices"] in {"0", "1"}
    assert c["start"] >= min(a["end"], b["end"])  # it ran only once a GPU was given back
    assert "waiting for 1 of 2 GPUs" in c["stderr"] and f"CUDA_VISIBLE_DEVICES={c['devices']}" in c["stderr"]


def test_a_job_takes_several_gpus_and_waits_for_all_of_them(tmp_path):
    one = wrapped(tmp_path, 1, "one.json", 1.5)
    wait_for_locks(tmp_path, 1)
    two = wrapped(tmp_path, 2, "two.json", 0.0)
    first, both = result(one, tmp_path, "one.json"), result(two, tmp_path, "two.json")
    assert first["devices"] == "0" and both["devices"] == "0,1"
    assert both["start"] >= first["end"]


def test_a_killed_job_gives_its_gpu_back(tmp_path):
    """SIGKILL leaves no stale lock: the kernel drops the flock with the process."""
    holder = wrapped(tmp_path, 1, "never.json", 60.0, count=1)
    wait_for_locks(tmp_path, 1)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    after = result(wrapped(tmp_path, 1, "after.json", 0.0, count=1), tmp_path, "after.json")
    assert after["devices"] == "0"


def test_slurm_devices_pass_through_untouched(tmp_path):
    job = wrapped(tmp_path, 1, "slurm.json", 0.0, CUDA_VISIBLE_DEVICES="3")
    assert result(job, tmp_path, "slurm.json")["devices"] == "3"
    assert not (tmp_path / "locks").exists()  # it never looked for a GPU


def test_more_gpus_than_the_node_has_fails_at_once(tmp_path):
    job = wrapped(tmp_path, 4, "x.json", 0.0, count=2)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 1 and "needs 4 GPUs and this node has 2" in err


def test_zero_gpus_runs_the_command_as_it_is(tmp_path):
    assert result(wrapped(tmp_path, 0, "cpu.json", 0.0), tmp_path, "cpu.json")["devices"] is None


@pytest.mark.parametrize("argv", [[], ["1", "python"], ["x", "--", "true"]])
def test_bad_usage_says_how(argv):
    out = subprocess.run([sys.executable, "-m", "edco.gpulock", *argv], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and "usage: python -m edco.gpulock <gpus> -- <command>" in out.stderr
