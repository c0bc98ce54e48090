"""What to raise when SLURM kills a job for its memory: read from Snakemake's own log.

snakemake-executor-plugin-slurm reports such a job as ``SLURM status is: 'FAILED'. Reason:
Unknown`` (memory enforced by polling) or ``'OUT_OF_MEMORY'`` (cgroups), and lists its SLURM
log, whose ``exceeded memory limit`` line says why, without printing it. The workflow's
``onerror`` handler (rules/common.smk) prints one line per such job instead: the rule, its
``mem_mb`` request and where to raise it. Standard library only: the controller's environment
(envs/snakemake.yaml) runs it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Snakemake's error block: "Error in rule R:" and its indented lines.
ERROR_BLOCK = re.compile(r"^Error in rule (\w+):\n((?:[ \t]+.*\n?)*)", re.M)
# A job's announcement ("rule R:" / "localrule R:" and its indented lines, with "jobid: N").
JOB_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n?)*)", re.M)
# slurmstepd's line when jobacct_gather's OverMemoryKill ends a step (bytes used > bytes allowed).
STEP_OVER_LIMIT = re.compile(r"exceeded memory limit \((\d+) > (\d+)\)")
# The other ways SLURM says so: the job's own limit, or the kernel's OOM killer under cgroups.
OTHER_SIGNS = re.compile(r"Exceeded job memory limit|oom[-_]kill|OUT_OF_MEMORY")


def _field(block: str, name: str) -> str | None:
    match = re.search(rf"^[ \t]+{name}: (.*)$", block, re.M)
    return match.group(1).strip() if match else None


def _mem_request(log_text: str, jobid: str | None) -> int | None:
    """The mem_mb that Snakemake announced for the job with this jobid."""
    for match in JOB_BLOCK.finditer(log_text):
        if _field(match.group(2), "jobid") == jobid:
            resources = _field(match.group(2), "resources") or ""
            mem = re.search(r"\bmem_mb=(\d+)", resources)
            return int(mem.group(1)) if mem else None
    return None


def _log_paths(block: str) -> list[Path]:
    logs = _field(block, "log") or ""
    logs = logs.split(" (check log", 1)[0]
    return [Path(p.strip()) for p in logs.split(",") if p.strip()]


def memory_kills(log_text: str) -> list[str]:
    """One line per job of this Snakemake log that SLURM killed for exceeding its memory
    request: which rule, which request, where to raise it."""
    lines = []
    for match in ERROR_BLOCK.finditer(log_text):
        rule, block = match.group(1), match.group(2)
        evidence = block if OTHER_SIGNS.search(_field(block, "message") or "") else ""
        for path in _log_paths(block):
            try:
                evidence += path.read_text(errors="replace")
            except OSError:
                continue
        over = STEP_OVER_LIMIT.search(evidence)
        if not over and not OTHER_SIGNS.search(evidence):
            continue
        request = _mem_request(log_text, _field(block, "jobid"))
        slurm_job = _field(block, "external_jobid")
        asked = f"mem_mb={request}" if request else "mem_mb"
        used = f" (it reached {int(over.group(1)) // 2**20} MB)" if over else ""
        suggestion = max(2 * request, int(over.group(1)) // 2**20 * 2) if request and over else None
        example = f" to {suggestion} or more" if suggestion else ""
        lines.append(
            f"Out of memory: SLURM killed rule {rule}"
            + (f" (SLURM job {slurm_job})" if slurm_job else "")
            + f" for exceeding its request {asked}{used}. Raise {rule}'s mem_mb{example} under"
            f" set-resources in your profile (profiles/slurm/config.yaml, or the profile layered on it),"
            f" then rerun: finished jobs are kept."
        )
    return lines


def report_memory_kills(logfiles: list[str] | str) -> list[str]:
    """memory_kills over Snakemake's log file(s) (onerror's ``log``), printed to stderr."""
    paths = [logfiles] if isinstance(logfiles, str) else list(logfiles or [])
    lines = []
    for path in paths:
        try:
            lines += memory_kills(Path(path).read_text(errors="replace"))
        except OSError:
            continue
    for line in lines:
        print(line, file=sys.stderr)
    return lines
