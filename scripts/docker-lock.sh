#!/usr/bin/env bash
# Regenerate the fully pinned lock files of the container images.
#
#   docker/base/torch-cuda.lock   torch + torchvision (CUDA build from PyPI) and every dependency
#   docker/<model>/requirements.lock  everything a model image adds on top of torch
#
# Resolved with uv for CPython 3.11 on x86_64 glibc 2.35 (Ubuntu 22.04, the CUDA base; Debian
# bookworm has 2.36), so the same lock installs on the CUDA base and on the CPU stand-in.
# The model locks are resolved against the torch release of docker/constraints.txt but do not
# list torch, torchvision, triton, nvidia-* or cuda-* packages: the base image's lock has them.
#
# Usage: scripts/docker-lock.sh [model ...]     (default: base + every model)
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
    # torch and what only torch needs (triton, nvidia-*, cuda-*) come from the base image's lock.
    local skip=()
    while read -r name; do skip+=(--no-emit-package "$name"); done < <(
        sed -nE 's/^((torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+))==.*/\1/p' \
            docker/base/torch-cuda.lock)
    compile "docker/$model/requirements.in" "docker/$model/requirements.lock" \
        -c docker/constraints.txt "${skip[@]}"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(base moondream smolvlm qwen2vl)
[[ -f docker/base/torch-cuda.lock ]] || targets=(base "${targets[@]}")
for t in "${targets[@]}"; do
    echo "docker-lock: $t"
    if [[ $t == base ]]; then locks_base; else locks_model "$t"; fi
done
