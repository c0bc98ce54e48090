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
  a job by hand): when it lists exactly N devices the command runs untouched (a SLURM job step
  granted its own GPUs); when it lists more (a job run inside an 8-GPU ``salloc``, where every
  job would see all 8 and TRL refuses ``nn.DataParallel``), the wrapper locks N of the listed
  devices as above and narrows ``CUDA_VISIBLE_DEVICES`` to them, lock files named by the listed
  value, so jobs of one allocation, and jobs pinned by hand to the node's indices, share them;
  when it lists fewer (or is empty), the job stops, naming both counts.
- Fewer free GPUs than N: it waits (polling), holding none, so two waiting jobs never deadlock.
- GPUs of the node (``CUDA_VISIBLE_DEVICES`` unset): ``nvidia-smi``; ``EDCO_GPU_COUNT``
  overrides it (tests, or to use fewer).
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


def visible_devices(environ: dict) -> list[str] | None:
    """The devices a preset ``CUDA_VISIBLE_DEVICES`` lists (indices or UUIDs, as given), or None
    when it is unset."""
    preset = environ.get("CUDA_VISIBLE_DEVICES")
    if preset is None:
        return None
    return [device.strip() for device in preset.split(",") if device.strip()]


def _lock_name(device: str) -> str:
    """``gpu<device>.lock``; a MIG id's slashes (``MIG-GPU-<uuid>/1/0``) become underscores."""
    return f"gpu{device.replace('/', '_')}.lock"


def try_take(n: int, devices: list[str], lock_dir: str) -> dict[str, int] | None:
    """Lock ``n`` free ``devices`` (in their order): {device: fd}, or None (holding nothing)."""
    taken: dict[str, int] = {}
    for device in devices:
        fd = _lock(os.path.join(lock_dir, _lock_name(device)))
        if fd is not None:
            taken[device] = fd
            if len(taken) == n:
                return taken
    for fd in taken.values():
        os.close(fd)
    return None


def acquire(n: int, devices: list[str], lock_dir: str, poll: float, timeout: float | None = None) -> dict[str, int]:
    """Wait until ``n`` of ``devices`` are free and lock them."""
    count = len(devices)
    if n > count:
        raise GpuLockError(f"the job needs {n} GPUs and this node has {count}; lower models.<m>.gpus or "
                           f"run it on a bigger node")
    os.makedirs(lock_dir, mode=0o777, exist_ok=True)
    start, said = time.monotonic(), None
    while (taken := try_take(n, devices, lock_dir)) is None:
        waited = time.monotonic() - start
        if timeout is not None and waited > timeout:
            raise GpuLockError(f"no {n} free GPUs of {count} after {timeout:.0f} s (locks in {lock_dir})")
        if said is None or waited - said >= 60:
            print(f"edco.gpulock: waiting for {n} of {count} GPUs (all held by other jobs; locks in {lock_dir})",
                  file=sys.stderr, flush=True)
            said = waited
        time.sleep(poll)
    return taken


def _mark(taken: dict[str, int], command: list[str]) -> None:
    """Write who holds each GPU into its lock file (for a person reading the directory)."""
    for fd in taken.values():
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(command)}\n".encode(), 0)


def run(n: int, command: list[str], environ: dict | None = None) -> None:
    """Take ``n`` GPUs and exec ``command`` with CUDA_VISIBLE_DEVICES set to them (never returns)."""
    env = dict(os.environ if environ is None else environ)
    listed = visible_devices(env)
    if listed is not None and n > len(listed):
        raise GpuLockError(f"the job needs {n} GPUs and CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']!r} lists "
                           f"{len(listed)}; ask the scheduler for {n} GPUs per job (or lower models.<m>.gpus)")
    if n > 0 and (listed is None or len(listed) > n):
        devices = [str(index) for index in range(gpu_count())] if listed is None else listed
        taken = acquire(n, devices, env.get(LOCK_DIR_ENV, DEFAULT_LOCK_DIR), float(env.get(POLL_ENV, "5")))
        for fd in taken.values():
            os.set_inheritable(fd, True)  # the command's process keeps the locks across exec
        _mark(taken, command)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(device for device in devices if device in taken)
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
