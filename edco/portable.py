"""Portable math (``compute.portable_math``): CPU results that do not depend on which x86-64
CPU computes them, and the platform record every manifest carries.

A CPU job's numbers depend on the CPU through three libraries, each choosing its code path
from the CPU's instruction set at run time: torch's own vectorised kernels (AVX-512, AVX2 or
the baseline build: different reduction orders and exp/log approximations), MKL's BLAS (its
sgemm kernels per ISA and vendor) and oneDNN (JIT kernels per ISA). Portable math pins each
to a path every x86-64 CPU runs the same way:

- ``ATEN_CPU_CAPABILITY=default``: torch's baseline kernels, compiled for plain x86-64;
- ``MKL_CBWR=COMPATIBLE`` (MKL's conditional numerical reproducibility; the only branch MKL
  honours on non-Intel CPUs, where AVX2/AVX512 fall back to AUTO) with ``MKL_DYNAMIC`` and
  ``OMP_DYNAMIC`` off and a fixed thread count (``compute.threads``), as MKL requires for it;
- oneDNN off (``torch.backends.mkldnn.enabled = False``; fp32 training does not call it here,
  but its JIT has no portable mode);
- fused AdamW (``torch.optim.AdamW(fused=True)``; ``sft.optim``/``rl.optim``
  ``adamw_torch_fused``, which the config check requires under this setting): the unfused
  update's ``exp_avg_sq.sqrt()`` is MKL's vsSqrt (torch sends contiguous float sqrt/exp/log/sin/
  cos/tanh to MKL's vector math), which is not correctly rounded (17 % of a million float32
  arguments off by one ulp here) and, whatever MKL_CBWR says, other bits on other CPUs: stop
  33's CI, on an Intel Xeon, pretrained other smoke base models than this AMD EPYC, and under
  QEMU's emulated CPU the first AdamW step was the first difference (forward and gradients
  equal). The fused CPU kernel takes its square root in torch's own baseline build;
- glibc's libm without its FMA variants (``GLIBC_TUNABLES=glibc.cpu.hwcaps=-FMA,-FMA4``): glibc
  picks exp/log/pow/sin/cos per CPU, and the FMA and plain builds differ in the last bit for
  some arguments (``0.9 ** 348`` and ``(1 - 0.999 ** 482) ** 0.5``, torch AdamW's bias
  corrections, computed in Python). The dynamic loader reads the variable only when a process
  starts, so ``python -m edco`` starts itself again with it (``reexec``).

The environment variables are read when torch and MKL load, so ``apply_env`` runs in
``python -m edco`` before any command imports torch (and before ``reexec``); ``apply_torch`` runs once torch is
loaded and says whether the setting is in effect. Measured on the smoke config
(benchmarks/portable_math.py, README "Reproducing the reference numbers"): under portable
math, switching torch's ISA, MKL's branch, oneDNN's ISA ceiling or glibc's CPU features leaves
a base model's SHA-256 unchanged; without it, torch's ISA and MKL's branch change it. Those
knobs cannot stand in for another CPU maker's instructions; QEMU can (benchmarks/portable_math.py
``--emulate``): under it, forty fused-AdamW pretraining steps give this CPU's bits.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from importlib import metadata

log = logging.getLogger(__name__)


def env(threads: int) -> dict[str, str]:
    """The environment portable math sets, for jobs of ``threads`` torch threads."""
    return {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "MKL_DYNAMIC": "FALSE",
            "OMP_DYNAMIC": "FALSE", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


#: Variables that choose a CPU code path; the platform record lists those set.
KNOBS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_DYNAMIC", "MKL_ENABLE_INSTRUCTIONS", "OMP_DYNAMIC",
         "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "GLIBC_TUNABLES")
#: /proc/cpuinfo flags that name an instruction set a library may dispatch on.
ISA_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "bmi", "popcnt", "vnni", "sha_ni", "aes")


def apply_env(config: dict) -> bool:
    """Set the portable environment when the config asks for it (before torch loads: torch
    reads ATEN_CPU_CAPABILITY, MKL reads MKL_CBWR, at load). Returns whether it did."""
    global _applied
    if not config["compute"]["portable_math"]:
        return False
    os.environ.update(env(config["compute"]["threads"]))
    _applied = True
    return True


_applied = False  # apply_env ran in this process: apply_torch may change torch's global state


#: glibc tunable that hides FMA from glibc's own CPU dispatch (libm's ifuncs); torch and MKL
#: read the CPU themselves and are not affected.
LIBM_TUNABLE = "glibc.cpu.hwcaps=-FMA,-FMA4"


def reexec() -> None:
    """Start this process again (same interpreter and command line, ``sys.orig_argv``) with
    ``LIBM_TUNABLE`` added to GLIBC_TUNABLES, unless it is there already or this is not glibc
    Linux. Called by ``python -m edco`` only, after ``apply_env`` and before torch loads."""
    current = os.environ.get("GLIBC_TUNABLES", "")
    if LIBM_TUNABLE in current.split(":") or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    os.environ["GLIBC_TUNABLES"] = f"{current}:{LIBM_TUNABLE}" if current else LIBM_TUNABLE
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


def apply_torch(config: dict) -> None:
    """The in-process part, torch loaded: oneDNN off; a warning when torch was loaded before
    ``apply_env`` could take effect (a command called inside another Python process)."""
    if not config["compute"]["portable_math"]:
        return
    import torch

    if _applied:
        torch.backends.mkldnn.enabled = False
    if not in_effect(config):
        log.warning("compute.portable_math: not in effect in this process (torch dispatches to %s, MKL_CBWR=%s, "
                    "GLIBC_TUNABLES=%s): torch was loaded before the setting; run the job as `python -m edco ...`",
                    torch.backends.cpu.get_cpu_capability(), os.environ.get("MKL_CBWR"), os.environ.get("GLIBC_TUNABLES"))


def in_effect(config: dict) -> bool:
    """Whether this process computes under portable math (torch loaded)."""
    import torch

    libm = LIBM_TUNABLE in os.environ.get("GLIBC_TUNABLES", "").split(":") or platform.libc_ver()[0] != "glibc"
    return bool(config["compute"]["portable_math"]) and torch.backends.cpu.get_cpu_capability() == "DEFAULT" \
        and os.environ.get("MKL_CBWR") == "COMPATIBLE" and not torch.backends.mkldnn.enabled and libm


def cpu_info() -> dict:
    """The CPU's model name, vendor and ISA flags (Linux /proc/cpuinfo; elsewhere what
    ``platform`` knows)."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "vendor_id", "flags") and key not in fields:
                    fields[key] = value.strip()
                if len(fields) == 3:
                    break
    except OSError:
        pass
    flags = sorted(f for f in fields.get("flags", "").split() if f.startswith(ISA_PREFIXES))
    return {"model": fields.get("model name") or platform.processor() or platform.machine(),
            "vendor": fields.get("vendor_id"), "machine": platform.machine(), "isa_flags": flags}


def versions() -> dict:
    """Versions of the libraries a result's digits depend on."""
    found = {"python": platform.python_version(), "libc": " ".join(platform.libc_ver()).strip() or None}
    for package in ("torch", "transformers", "trl", "tokenizers", "numpy", "lm_eval"):
        try:
            found[package] = metadata.version(package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            found[package] = None
    if "torch" in sys.modules:
        import torch

        shown = torch.__config__.show()
        found["mkl"] = next((line.split("Version", 1)[1].strip() for line in shown.splitlines()
                             if "Math Kernel Library Version" in line), None)
        found["onednn"] = next((line.split("MKL-DNN", 1)[1].strip() for line in shown.splitlines()
                                if "MKL-DNN" in line), None)
    return found


def platform_record(config: dict) -> dict:
    """What a manifest records so a mismatch with a reference can be explained: the setting,
    whether it was in effect, torch's dispatch, the knobs set, threads, the CPU, the versions."""
    record = {"portable_math": bool(config["compute"]["portable_math"])}
    if "torch" in sys.modules:
        import torch

        record.update(in_effect=in_effect(config), aten_cpu_capability=torch.backends.cpu.get_cpu_capability(),
                      mkldnn_enabled=torch.backends.mkldnn.enabled, torch_threads=torch.get_num_threads())
    record["env"] = {k: os.environ[k] for k in KNOBS if k in os.environ}
    record["cpu"] = cpu_info()
    record["versions"] = versions()
    return record
