"""Give each GPU job its own free GPUs of the node (issue #17, item 3).

    python -m edco.gpulock 1 -- python -m edco train --config ... --model qwen3_4b ...
    python -m edco.gpulock 2 -- accelerate launch --num_processes 2 ... -m edco train ...

Snakemake 9.27 treats ``gpu`` as a plain counter: ``--resources gpu=8`` caps how many GPU jobs
run at once on the node, but nothing tells a job *which* GPUs are its own, so every job would
run on device 0 (its source never sets CUDA_VISIBLE_DEVICES). This wrapper takes N GPUs that no
other job holds (an exclusive ``flock`` per GPU, in a directory every job of the node shares),
sets ``CUDA_VISIBLE_DEVICES`` to them and replaces itself with the command (``exec``). The
command's own process then holds the locks, so the kernel releases them when it ends, however
it ends: exit, crash, or SIGKILL from Snakemake or SLURM. No lock file is ever "stale".

- ``CUDA_VISIBLE_DEVICES`` already set (SLURM sets it for the GPUs it granted; a user may pin
  a job by hand): the command runs untouched.
- Fewer free GPUs than N: it waits (polling), holding none, so two waiting jobs never deadlock.
- GPUs of the node: ``nvidia-smi``; ``EDCO_GPU_COUNT`` overrides it (tests, or to use fewer).
- Lock directory: ``EDCO_GPU_LOCK_DIR``, default ``/tmp/edco-gpu-locks`` (node-local).
- N = 0 runs the command as it is (a CPU job).

Standard library only: it runs before any model code, in whichever environment the job has.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

LOCK_DIR_ENV, COUNT_ENV, POLL_ENV = "EDCO_GPU_LOCK_DIR", "EDCO_GPU_COUNT", "EDCO_GPU_POLL_SECONDS"
DEFAULT_LOCK_DIR = "/tmp/edco-gpu-locks"
USAGE = "usage: python -m edco.gpulock <gpus> -- <command> [args...]"


class GpuLockError(Exception):
    """The wrapper cannot run the command; the message says why and what to change."""


def gpu_count() -> int:
    """GPUs of this node: ``EDCO_GPU_COUNT``, else the lines of ``nvidia-smi -L``."""
    if os.environ.get(COUNT_ENV):
        return int(os.environ[COUNT_ENV])
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise GpuLockError(f"cannot count this node's GPUs: nvidia-smi -L failed ({exc}); set {COUNT_ENV}") from exc
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def _lock(path: str) -> int | None:
    """An fd holding an exclusive lock on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def try_take(n: int, count: int, lock_dir: str) -> dict[int, int] | None:
    """Lock ``n`` free GPUs (lowest indices first): {gpu index: fd}, or None (holding nothing)."""
    taken: dict[int, int] = {}
    for index in range(count):
        fd = _lock(os.path.join(lock_dir, f"gpu{index}.lock"))
        if fd is not None:
            taken[index] = fd
            if len(taken) == n:
                return taken
    for fd in taken.values():
        os.close(fd)
    return None


def acquire(n: int, count: int, lock_dir: str, poll: float, timeout: float | None = None) -> dict[int, int]:
    """Wait until ``n`` GPUs are free and lock them."""
    if n > count:
        raise GpuLockError(f"the job needs {n} GPUs and this node has {count}; lower models.<m>.gpus or "
                           f"run it on a bigger node")
    os.makedirs(lock_dir, mode=0o777, exist_ok=True)
    start, said = time.monotonic(), None
    while (taken := try_take(n, count, lock_dir)) is None:
        waited = time.monotonic() - start
        if timeout is not None and waited > timeout:
            raise GpuLockError(f"no {n} free GPUs of {count} after {timeout:.0f} s (locks in {lock_dir})")
        if said is None or waited - said >= 60:
            print(f"edco.gpulock: waiting for {n} of {count} GPUs (all held by other jobs; locks in {lock_dir})",
                  file=sys.stderr, flush=True)
            said = waited
        time.sleep(poll)
    return taken


def _mark(taken: dict[int, int], command: list[str]) -> None:
    """Write who holds each GPU into its lock file (for a person reading the directory)."""
    for fd in taken.values():
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(command)}\n".encode(), 0)


def run(n: int, command: list[str], environ: dict | None = None) -> None:
    """Take ``n`` GPUs and exec ``command`` with CUDA_VISIBLE_DEVICES set to them (never returns)."""
    env = dict(os.environ if environ is None else environ)
    if n > 0 and env.get("CUDA_VISIBLE_DEVICES") is None:
        taken = acquire(n, gpu_count(), env.get(LOCK_DIR_ENV, DEFAULT_LOCK_DIR), float(env.get(POLL_ENV, "5")))
        for fd in taken.values():
            os.set_inheritable(fd, True)  # the command's process keeps the locks across exec
        _mark(taken, command)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, sorted(taken)))
        print(f"edco.gpulock: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", file=sys.stderr, flush=True)
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        raise GpuLockError(f"cannot run {command[0]!r}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print(USAGE, file=sys.stderr)
        return 2
    try:
        run(int(argv[0]), argv[2:])
    except GpuLockError as exc:
        print(f"edco.gpulock: error: {exc}", file=sys.stderr)
        return 1
    return 0  # not reached: run() execs


if __name__ == "__main__":
    sys.exit(main())
