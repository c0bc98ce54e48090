"""compute.portable_math (edco/portable.py): the environment it sets and when, the platform
record, and by experiment: base models that are the same bits whatever the dispatch knobs say,
and the smoke base models equal to the committed reference's digests on any x86-64 CPU."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import benchmark_script

from edco import cli, layout, portable
from edco.config import load_config

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "results" / "reference" / "smoke"
x86_64 = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                            reason="portable math pins x86-64 code paths (MKL, torch's x86 kernels)")


@pytest.fixture
def clean_env(monkeypatch):
    for knob in portable.KNOBS:
        # setenv first: monkeypatch undoes only what it changed, and delenv of an unset variable
        # changes nothing, so a knob apply_env sets later would outlive the test (OMP_NUM_THREADS=3
        # once reached every later test, and `nproc` in the SLURM cluster's start).
        monkeypatch.setenv(knob, "")
        monkeypatch.delenv(knob)
    monkeypatch.setattr(portable, "_applied", False)
    return monkeypatch


def _config(on: bool, threads: int = 1) -> dict:
    return {"compute": {"portable_math": on, "threads": threads}}


def test_apply_env_sets_every_knob_only_when_asked(clean_env):
    assert not portable.apply_env(_config(False))
    assert not any(knob in os.environ for knob in portable.KNOBS)
    assert portable.apply_env(_config(True, threads=3))
    assert os.environ["ATEN_CPU_CAPABILITY"] == "default" and os.environ["MKL_CBWR"] == "COMPATIBLE"
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "3"
    assert os.environ["MKL_DYNAMIC"] == os.environ["OMP_DYNAMIC"] == "FALSE"


def test_reexec_adds_the_libm_tunable_once_and_keeps_others(clean_env):
    calls = []
    clean_env.setattr(portable.os, "execv", lambda exe, argv: calls.append((exe, list(argv))))
    clean_env.setattr(portable.platform, "libc_ver", lambda: ("glibc", "2.36"))
    clean_env.setattr(portable.sys, "platform", "linux")
    clean_env.setenv("GLIBC_TUNABLES", "glibc.malloc.check=0")
    portable.reexec()
    assert calls == [(sys.executable, list(sys.orig_argv))]
    assert os.environ["GLIBC_TUNABLES"] == f"glibc.malloc.check=0:{portable.LIBM_TUNABLE}"
    portable.reexec()  # the started-again process: already set, runs on
    assert len(calls) == 1


def test_cli_sets_the_environment_before_the_command_and_only_execs_its_own_process(clean_env, tmp_path):
    calls = []
    clean_env.setattr(portable, "reexec", lambda: calls.append(True))
    cli._portable_env(["--model", "qwen3", "--config", str(REPO / "config" / "smoke.yaml")], process=False)
    assert "ATEN_CPU_CAPABILITY" not in os.environ and not calls  # a call inside pytest changes nothing
    cli._portable_env([f"--config={REPO / 'config' / 'smoke.yaml'}"], process=True)
    assert os.environ["ATEN_CPU_CAPABILITY"] == "default" and calls == [True]
    off = tmp_path / "off.yaml"
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["compute"]["portable_math"] = False
    off.write_text(yaml.safe_dump(raw))
    clean_env.delenv("ATEN_CPU_CAPABILITY")
    cli._portable_env(["--config", str(off)], process=True)
    assert "ATEN_CPU_CAPABILITY" not in os.environ and calls == [True]


def test_committed_configs_are_portable_and_the_default_is_not(tmp_path):
    assert load_config(REPO / "config" / "smoke.yaml")["compute"]["portable_math"] is True
    assert load_config(REPO / "config" / "cpu_study.yaml")["compute"]["portable_math"] is True
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    del raw["compute"]["portable_math"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    assert load_config(tmp_path / "c.yaml")["compute"]["portable_math"] is False


def test_platform_record_names_the_setting_cpu_and_versions():
    import torch  # noqa: F401  (the record reads torch's dispatch once it is loaded)

    record = portable.platform_record(_config(True))
    assert record["portable_math"] is True
    assert record["in_effect"] is False  # torch was loaded by pytest before any setting
    assert record["aten_cpu_capability"] and record["torch_threads"] >= 1
    assert record["cpu"]["model"] and isinstance(record["cpu"]["isa_flags"], list)
    assert record["versions"]["torch"] and record["versions"]["python"] == platform.python_version()


# --------------------------------------------------------------------------- by experiment
# benchmarks/portable_math.py: its job_env (this environment without any dispatch knob, this
# checkout first, then a setting) and run_digests (a finished run as digests).
BENCH = benchmark_script("portable_math")


def _edco(workdir: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "edco", *args], cwd=workdir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _sft_run(workdir: Path, config: Path, env: dict[str, str]) -> dict[str, str]:
    """One SFT run of ``edco`` (seed 0, the first domain) on ``workdir``'s base model, evaluated:
    scoring, selection, training and answers, what the tables are made of, as digests."""
    raw = yaml.safe_load(config.read_text())
    run, domain = raw["run"], raw["grid"]["domains"][0]
    _edco(workdir, BENCH.job_env(env), "train", "--config", str(config), "--domain", domain, "--model", "qwen3",
          "--paradigm", "sft", "--strategy", "edco", "--seed", "0", "--evaluate")
    return BENCH.run_digests(workdir / layout.run_dir(run, domain, "qwen3", "sft", "edco", 0),
                             workdir / layout.eval_file(run, domain, "qwen3", "sft", "edco", 0))


def _pretrain(tmp_path: Path, config: Path, models: list[str], env: dict[str, str]) -> dict[str, str]:
    """Base-pretrain ``models`` of ``config`` in fresh processes (``python -m edco``, as
    Snakemake runs them) under ``env``, in ``tmp_path``; SHA-256 of each model's weights."""
    env = BENCH.job_env(env)
    run = yaml.safe_load(config.read_text())["run"]

    def edco(*args: str) -> None:
        _edco(tmp_path, env, *args)

    for domain in ["general", *yaml.safe_load(config.read_text())["grid"]["domains"]]:
        if not (tmp_path / "results" / run / "data" / domain / "train.jsonl").is_file():
            edco("make-data", "--config", str(config), "--domain", domain)
    jobs = {model: subprocess.Popen([sys.executable, "-m", "edco", "base-model", "--config", str(config), "--model",
                                     model, "--no-progress"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            for model in models}  # side by side, as Snakemake runs them: one thread each
    digests = {}
    for model, job in jobs.items():
        output = job.communicate()[0]
        assert job.returncode == 0, output
        weights = tmp_path / "results" / run / "models" / model / "shared" / "model.safetensors"
        digests[model] = hashlib.sha256(weights.read_bytes()).hexdigest()
    return digests


def _short_smoke(tmp_path: Path, on: bool, steps: int = 40) -> Path:
    raw = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    raw["models"]["qwen3"]["pretrain"]["steps"] = steps
    raw["compute"]["portable_math"] = on
    raw["curriculum"].update(rounds=2, n=32)  # the runs' size (pretraining does not read it)
    raw["sft"].update(num_train_epochs=1)
    path = tmp_path / f"smoke_{on}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# Stand-ins for another CPU's code paths: torch's ISA, MKL's branch, oneDNN's ceiling, libm's FMA.
AVX2_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
OLD_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41",
           "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4"}
STAND_INS = {"avx2": AVX2_CPU, "old": OLD_CPU}


@x86_64
@pytest.mark.slow
def test_dispatch_knobs_change_the_weights_only_without_portable_math(tmp_path):
    """40 steps of the smoke recipe (qwen3): torch's AVX2 and baseline kernels give other
    weights; under portable math, an AVX2 CPU's and an old CPU's settings give the same weights,
    and an SFT run on them the same selections, metrics, weights and answers."""
    avx2 = "avx2" in portable.cpu_info()["isa_flags"]
    if not avx2:
        pytest.skip("needs a CPU with AVX2 to switch torch's kernels")
    configs = {on: _short_smoke(tmp_path, on) for on in (False, True)}
    cases = [(on, cpu) for on in (False, True) for cpu in STAND_INS]

    def pretrain(case):  # each case in its own directory: two at a time, one torch thread each
        on, cpu = case
        workdir = tmp_path / f"{'on' if on else 'off'}-{cpu}"
        workdir.mkdir()
        return _pretrain(workdir, configs[on], ["qwen3"], STAND_INS[cpu])

    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = dict(zip(cases, pool.map(pretrain, cases)))
    assert digests[False, "avx2"] != digests[False, "old"]
    assert digests[True, "avx2"] == digests[True, "old"]
    # Under portable math, a run on those base models too: scores, selections, training metrics,
    # final weights and evaluation answers, the stuff of every table, are the same bits.
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda cpu: _sft_run(tmp_path / f"on-{cpu}", configs[True], STAND_INS[cpu]),
                             STAND_INS))
    assert runs[0] == runs[1]


@x86_64
@pytest.mark.slow
def test_smoke_base_models_match_the_committed_digests(tmp_path):
    """The cross-machine check: the smoke config's base models, pretrained here under portable
    math, are the bits of the committed reference (results/reference/smoke/base_models.sha256,
    written on the machine its README names). A mismatch on another CPU means portable math
    missed a code path; with other library versions (README: the pinned environment) it
    means nothing."""
    expected = {}
    for line in (REFERENCE / "base_models.sha256").read_text().splitlines():
        digest, path = line.split()
        expected[Path(path).parts[1]] = digest  # models/<model>/shared/model.safetensors
    got = _pretrain(tmp_path, REPO / "config" / "smoke.yaml", sorted(expected), {})
    record = portable.platform_record(load_config(REPO / "config" / "smoke.yaml"))
    assert got == expected, f"CPU {record['cpu']['model']}, versions {record['versions']}"
