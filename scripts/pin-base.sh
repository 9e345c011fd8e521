#!/usr/bin/env bash
# Pin (or check) the CUDA base image digest of docker/base/Dockerfile.
#
#   scripts/pin-base.sh            resolve the tag's current index digest and write it into the ARG
#   scripts/pin-base.sh --check    exit 1 when the recorded digest differs from the registry's
#   scripts/pin-base.sh --tag nvidia/cuda:13.0.3-base-ubuntu22.04   pin another tag
#
# Needs a Docker client that reaches the registry: `docker buildx imagetools inspect` (reads the
# multi-platform index digest without pulling), else `docker pull` + RepoDigests. The project's
# build machine reaches no image registry, so this runs on a developer's or the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERFILE=docker/base/Dockerfile

check=0 tag=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --check) check=1 ;;
        --tag) tag=$2; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "pin-base: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

current=$(sed -nE 's/^ARG BASE_IMAGE=(.*)$/\1/p' "$DOCKERFILE")
[[ -n $current ]] || { echo "pin-base: no 'ARG BASE_IMAGE=' line in $DOCKERFILE" >&2; exit 2; }
tag=${tag:-${current%@*}}
recorded=${current#*@}
[[ $recorded == "$current" ]] && recorded=""

digest=""
if docker buildx version >/dev/null 2>&1; then
    digest=$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest}}' \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])') \
        || { echo "pin-base: cannot inspect $tag (no registry access?)" >&2; exit 2; }
else
    docker pull --quiet "$tag" >/dev/null \
        || { echo "pin-base: cannot pull $tag (no registry access?)" >&2; exit 2; }
    digest=$(docker image inspect "$tag" --format '{{range .RepoDigests}}{{println .}}{{end}}' \
        | sed -n 's/.*@//p' | head -1)
fi
[[ $digest == sha256:* ]] || { echo "pin-base: could not resolve a digest for $tag" >&2; exit 2; }

if [[ $check == 1 ]]; then
    if [[ $digest == "$recorded" ]]; then echo "pin-base: $tag@$digest (unchanged)"; exit 0; fi
    echo "pin-base: $tag is now $digest, Dockerfile records ${recorded:-no digest}" >&2
    exit 1
fi
sed -i -E "s|^ARG BASE_IMAGE=.*$|ARG BASE_IMAGE=$tag@$digest|" "$DOCKERFILE"
echo "pin-base: $DOCKERFILE now builds FROM $tag@$digest"
echo "pin-base: update the comment above the ARG (where the digest came from) if it changed"
