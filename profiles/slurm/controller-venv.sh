#!/usr/bin/env bash
# The controller's environment (envs/snakemake.yaml) without conda: a venv with that file's pip
# pins (Snakemake, snakemake-executor-plugin-slurm, jsonschema, PyYAML). Where conda exists,
# `conda env create -f envs/snakemake.yaml` is the same thing.
#
#   profiles/slurm/controller-venv.sh [VENV]      # default .venv-controller; ~20 s from PyPI
#   VENV/bin/snakemake --profile profiles/slurm ...
#
# Idempotent: a venv whose packages already match the pins is left as it is.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${1:-$REPO/.venv-controller}"
PYTHON="${PYTHON:-python3}"

# The pins, read from the file itself (PyYAML is in the suite's environment).
mapfile -t PINS < <("$PYTHON" - "$REPO/envs/snakemake.yaml" <<'EOF'
import sys, yaml
env = yaml.safe_load(open(sys.argv[1]))
for dep in env["dependencies"]:
    if isinstance(dep, dict) and "pip" in dep:
        print("\n".join(dep["pip"]))
EOF
)
[ "${#PINS[@]}" -gt 0 ] || { echo "no pip pins in envs/snakemake.yaml" >&2; exit 1; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "${PINS[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, _, want = pin.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and have != want:
        sys.exit(1)
EOF
then
    echo "$VENV: up to date"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q "${PINS[@]}"
echo "$VENV: $("$VENV/bin/snakemake" --version) + snakemake-executor-plugin-slurm $("$VENV/bin/python" -c \
    'from importlib.metadata import version; print(version("snakemake-executor-plugin-slurm"))')"
