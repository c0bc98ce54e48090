#!/usr/bin/env bash
# Every test (README's test command; CI runs exactly that), in the active venv, in two stages:
#   1. the suite (`pytest`) without the two modules that mostly wait, while the vLLM CPU venv
#      (envs/vllm-cpu.sh .venv-vllm: downloads, one core) builds beside it;
#   2. those two modules (tests/test_slurm.py: a one-node SLURM cluster whose controller polls;
#      tests/test_envs.py: venv builds) beside the tests that start real vLLM engines
#      (`pytest -m vllm` in .venv-vllm).
# Why: run one after the other, the cores sat 25-60 % idle through the SLURM and vLLM tests;
# the suite itself keeps both cores busy, and beside it the vLLM tests only slowed it down as
# much as they gained (README, "What it costs"). Stage 2's SLURM output goes to
# .venv-vllm.slurm.log, printed after the vLLM tests' so the two never interleave. Any stage
# failing fails the command.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WAITING=(tests/test_slurm.py tests/test_envs.py)

# Own process groups: Ctrl-C, or a CI step that fails, stops them too.
setsid bash envs/vllm-cpu.sh .venv-vllm > .venv-vllm.build.log 2>&1 &
build=$!
trap 'kill -- -"$build" 2>/dev/null; [[ -n "${waiting:-}" ]] && kill -- -"$waiting" 2>/dev/null' EXIT
echo "run-all: stage 1, the suite; the vLLM CPU venv builds beside it (.venv-vllm.build.log)"
pytest "${WAITING[@]/#/--ignore=}"
suite=$?
echo "run-all: stage 1 took $SECONDS s"
wait "$build"
built=$?
[[ $built == 0 ]] || { echo "run-all: envs/vllm-cpu.sh failed:"; tail -40 .venv-vllm.build.log; }

echo "run-all: stage 2, the vLLM tests here; ${WAITING[*]} beside them (.venv-vllm.slurm.log)"
setsid pytest "${WAITING[@]}" > .venv-vllm.slurm.log 2>&1 &
waiting=$!
stage2=$SECONDS
vllm=1
[[ $built == 0 ]] && { .venv-vllm/bin/python -m pytest -m vllm; vllm=$?; }
wait "$waiting"
slow=$?
trap - EXIT
echo
echo "================ ${WAITING[*]} (stage 2, beside the vLLM tests) ================"
cat .venv-vllm.slurm.log
echo
echo "run-all: stage 2 took $(( SECONDS - stage2 )) s; in all $SECONDS s"
echo "run-all: suite exit $suite, vLLM env build $built, vLLM tests $vllm, ${WAITING[*]} $slow"
(( suite == 0 && built == 0 && vllm == 0 && slow == 0 ))
