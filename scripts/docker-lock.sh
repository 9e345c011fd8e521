#!/usr/bin/env bash
# Regenerate the fully pinned lock files of the container images.
#
#   docker/base/torch-cuda.lock   torch + torchvision (CUDA build from PyPI) and every dependency
#   docker/<image>/requirements.lock  everything a model image adds on top of torch (one folder per
#                                     card `image: harness-<image>`; cards with the same pins share one)
#
# Resolved with uv for CPython 3.11 on x86_64 glibc 2.35 (Ubuntu 22.04, the CUDA base; Debian
# bookworm has 2.36), so the same lock installs on the CUDA base and on the CPU stand-in.
# The model locks are resolved against the torch release of docker/constraints.txt but do not
# list torch, torchvision, triton, nvidia-* or cuda-* packages: the base image's lock has them.
#
# Usage: scripts/docker-lock.sh [image ...]     (default: base + every image a card names, from
#        `harness models --json`; PYTHON: the interpreter with the harness, default python3)
# Needs: uv (pip install uv) and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v uv >/dev/null || { echo "docker-lock: uv not found (pip install uv)" >&2; exit 2; }
# uv does not read pip's configuration: trust the system bundle (TLS-intercepting proxies).
export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"

PY=(--python-version 3.11 --python-platform x86_64-manylinux_2_35 --index-url https://pypi.org/simple)
HEADER="scripts/docker-lock.sh"

compile() {  # compile IN OUT [extra uv args...]
    local in=$1 out=$2; shift 2
    uv pip compile --quiet "${PY[@]}" --custom-compile-command "$HEADER" "$@" "$in" -o "$out"
}

locks_base() {
    compile docker/base/torch-cuda.in docker/base/torch-cuda.lock
}

locks_model() {
    local model=$1
    [[ -f docker/$model/requirements.in ]] || { echo "docker-lock: docker/$model/requirements.in missing" >&2; exit 2; }
    # torch and what only torch needs (triton, nvidia-*, cuda-*) come from the base image's lock.
    local skip=()
    while read -r name; do skip+=(--no-emit-package "$name"); done < <(
        sed -nE 's/^((torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+))==.*/\1/p' \
            docker/base/torch-cuda.lock)
    compile "docker/$model/requirements.in" "docker/$model/requirements.lock" \
        -c docker/constraints.txt "${skip[@]}"
}

locks_vllm() {  # harness-vllm: its own torch (vLLM pins 2.13.0), so neither the base lock nor its constraints
    compile docker/vllm/requirements.in docker/vllm/requirements.lock
    compile docker/vllm/requirements-cpu.in docker/vllm/requirements-cpu.lock --override docker/vllm/overrides-cpu.txt
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <("${PYTHON:-python3}" -m harness.cli models --json | "${PYTHON:-python3}" -c '
import json, sys
print("base", *dict.fromkeys(c["image"].removeprefix("harness-") for c in json.load(sys.stdin)), sep="\n")')
    [[ ${#targets[@]} -gt 1 ]] || { echo "docker-lock: no image in harness models --json" >&2; exit 2; }
fi
[[ -f docker/base/torch-cuda.lock ]] || targets=(base "${targets[@]}")
for t in "${targets[@]}"; do
    echo "docker-lock: $t"
    if [[ $t == base ]]; then locks_base; elif [[ $t == vllm ]]; then locks_vllm; else locks_model "$t"; fi
done
