"""The per-GPU lock wrapper (edco/gpulock.py) with a fake GPU count: concurrent jobs get
disjoint devices, a job finds none free and waits, a killed job's GPU is free again, a
CUDA_VISIBLE_DEVICES set by SLURM for exactly the job's GPUs is left alone, and one listing more
(an 8-GPU salloc) is narrowed to a locked subset of its devices."""

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


@pytest.mark.parametrize("gpus, listed", [(1, "3"), (2, "GPU-a, GPU-b")])
def test_slurm_devices_pass_through_untouched(tmp_path, gpus, listed):
    """Exactly the job's count: the scheduler's own grant, kept as it is."""
    job = wrapped(tmp_path, gpus, "slurm.json", 0.0, CUDA_VISIBLE_DEVICES=listed)
    assert result(job, tmp_path, "slurm.json")["devices"] == listed
    assert not (tmp_path / "locks").exists()  # it never looked for a GPU


def test_an_allocation_listing_more_devices_is_narrowed_to_a_locked_subset(tmp_path):
    """Inside an salloc every job inherits all its GPUs: each job gets its own of the listed ones."""
    listed = "4,5,GPU-9a1b,MIG-GPU-3c/1/0"
    first = wrapped(tmp_path, 1, "a.json", 2.0, CUDA_VISIBLE_DEVICES=listed)
    wait_for_locks(tmp_path, 1)  # the first holds its GPU before the second starts (no race on a loaded machine)
    second = wrapped(tmp_path, 2, "b.json", 2.0, CUDA_VISIBLE_DEVICES=listed)
    wait_for_locks(tmp_path, 3)
    third = wrapped(tmp_path, 1, "c.json", 0.0, CUDA_VISIBLE_DEVICES=listed)
    a, b, c = result(first, tmp_path, "a.json"), result(second, tmp_path, "b.json"), result(third, tmp_path, "c.json")
    assert a["devices"] == "4" and b["devices"] == "5,GPU-9a1b"  # listed order, lowest free first
    assert c["devices"] == "MIG-GPU-3c/1/0" and c["start"] < min(a["end"], b["end"])  # the fourth was free
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == [
        "gpu4.lock", "gpu5.lock", "gpuGPU-9a1b.lock", "gpuMIG-GPU-3c_1_0.lock"]


def test_a_narrowed_allocation_shares_locks_with_unset_jobs(tmp_path):
    """A job pinned to the node's indices and a job that counted them take different GPUs."""
    pinned = wrapped(tmp_path, 1, "pinned.json", 2.0, CUDA_VISIBLE_DEVICES="0,1")
    wait_for_locks(tmp_path, 1)
    counted = wrapped(tmp_path, 1, "counted.json", 0.0)
    assert result(pinned, tmp_path, "pinned.json")["devices"] == "0"
    assert result(counted, tmp_path, "counted.json")["devices"] == "1"


@pytest.mark.parametrize("listed", ["3", ""])
def test_fewer_listed_devices_than_the_job_needs_fail_at_once(tmp_path, listed):
    job = wrapped(tmp_path, 2, "x.json", 0.0, CUDA_VISIBLE_DEVICES=listed)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 1 and f"needs 2 GPUs and CUDA_VISIBLE_DEVICES={listed!r} lists {len(listed)}" in err
    assert not (tmp_path / "x.json").exists()


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
