"""`--runner docker` without a Docker engine: the container would execute exactly the spec the host planned.

The host plans (here through `harness bench ... --dry-run --json`), writes spec.json into each job's folder
and builds the container invocation; the container only runs `harness execute /data/job` on the folder
mounted there. So what the container executes is `load_spec(<the folder mounted at /data/job>)`, and that
must be the host's spec, hash and all, for a non-default benchmark, decoding, dataset revision and
processor override alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.execute import load_spec
from harness.orchestrate import prepare_job
from harness.plan import resolve_paths
from harness.registry import load_model
from harness.runners import docker as docker_mod
from harness.runners.base import FAILED, FINISHED
from harness.runners.docker_runner import HF_CACHE_VOLUME, JOB_DIR, DockerRunner, container_invocation
from harness.specs import spec_from_record

REPO = Path(__file__).resolve().parents[2]
HUB_DATASET, HUB_REVISION = "krowiemlekommm/PJN_CHARTS", "0123456789abcdef0123456789abcdef01234567"
SHORT_SUFFIX = "\nReply with one number."


@pytest.fixture
def config(tmp_path, monkeypatch, config_copy):
    """A copy of the configs with a second benchmark (other max_new_tokens and prompt); isolated paths."""
    root = config_copy
    bench = yaml.safe_load((REPO / "benchmarks" / "chartqa.yaml").read_text())
    bench.update(name="chartqa_short", prompts={"short": SHORT_SUFFIX}, default_prompt="short")
    bench["decoding"]["max_new_tokens"] = 4
    (root / "benchmarks" / "chartqa_short.yaml").write_text(yaml.safe_dump(bench))
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_PRESET", raising=False)
    monkeypatch.delenv("HARNESS_HF_CACHE", raising=False)
    return tmp_path


def _planned(capsys, tmp_path, *flags: str) -> list[dict]:
    """The records `harness bench --runner docker --dry-run --json` prints (fine-tunes first)."""
    capsys.readouterr()
    assert main(["bench", "--model", "qwen2vl", "--variant", "base,finetuned", "--preset", "smoke",
                 "--runner", "docker", "--results", str(tmp_path / "results"),
                 "--checkpoints", str(tmp_path / "checkpoints"), *flags, "--dry-run", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    return planned["finetunes"] + planned["runs"]


def _container_spec(tmp_path, record: dict):
    """Host spec, job, invocation, and the spec the container would read from its /data/job mount."""
    spec = spec_from_record(record)
    paths = resolve_paths(None, tmp_path / "results", tmp_path / "checkpoints")
    job = prepare_job(spec, paths)
    image, argv, volumes = container_invocation(job)
    mounted = [host for host, target in volumes.items() if target == JOB_DIR]
    assert len(mounted) == 1, volumes
    return spec, job, (image, argv, volumes), load_spec(Path(mounted[0]))


def test_container_executes_the_planned_non_default_spec(config, capsys):
    records = _planned(capsys, config, "--benchmark", "chartqa_short", "--decoding", "num_beams=2",
                       "--dataset", HUB_DATASET, "--dataset-revision", HUB_REVISION,
                       "--set", "processor.max_pixels=40000")
    assert [r["kind"] for r in records] == ["finetune", "run", "run"]
    for record in records:
        spec, job, (image, argv, volumes), inside = _container_spec(config, record)
        assert inside == spec and inside.config_hash == spec.config_hash == record["config_hash"]
        assert inside.record() == record  # nothing dropped on the way: not the benchmark, not the revision
        assert argv == ["execute", "/data/job"] and image == load_model("qwen2vl").image + ":" + image.rsplit(":", 1)[1]
        assert inside.dataset == HUB_DATASET and inside.dataset_revision == HUB_REVISION
        assert inside.model_facts.processor["max_pixels"] == 40000
        if job.kind == "run":
            assert inside.benchmark == "chartqa_short" and inside.prompt_suffix == SHORT_SUFFIX
            assert inside.decoding["max_new_tokens"] == 4 and inside.decoding["num_beams"] == 2
        # The job folder read-write; the fine-tunes read-only (a fine-tune's own folder is its job folder);
        # a cache per image; the HF cache every container and compose service shares.
        assert volumes[str(job.folder.resolve())] == "/data/job"
        assert volumes[str((config / "checkpoints").resolve())] == "/data/checkpoints:ro"
        assert volumes[str((config / "cache" / f"container-{load_model('qwen2vl').image}").resolve())] == "/data/cache"
        assert volumes[HF_CACHE_VOLUME] == "/data/hf-cache"
        assert not [t for t in volumes.values() if t.startswith(HUB_DATASET)]  # a hub id is no mount


def test_each_override_reaches_the_container_and_changes_the_run(config, capsys):
    """Every override alone: a new run id, carried into the container's spec."""
    default = {r["variant"]: r for r in _planned(capsys, config) if r["kind"] == "run"}["base"]
    overrides = [("--benchmark", "chartqa_short"), ("--decoding", "max_new_tokens=32"),
                 ("--dataset", HUB_DATASET, "--dataset-revision", HUB_REVISION),
                 ("--set", "processor.max_pixels=40000")]
    seen = {default["run_id"]}
    for flags in overrides:
        base = {r["variant"]: r for r in _planned(capsys, config, *flags) if r["kind"] == "run"}["base"]
        spec, _, _, inside = _container_spec(config, base)
        assert inside.record() == base and base["run_id"] not in seen, flags
        seen.add(base["run_id"])


def test_local_dataset_and_host_hf_cache_are_mounted(config, capsys, monkeypatch):
    data = config / "charts"
    assert main(["data", "synth", "--out", str(data), "--train", "2", "--val", "0", "--test", "2"]) == 0
    hf = config / "hf"
    monkeypatch.setenv("HARNESS_HF_CACHE", str(hf))
    for record in _planned(capsys, config, "--dataset", str(data)):
        spec, _, (_, _, volumes), inside = _container_spec(config, record)
        assert inside == spec and inside.dataset == str(data.resolve())
        # The spec's path means the same files inside: mounted at the same absolute path, read-only.
        assert volumes[str(data.resolve())] == str(data.resolve()) + ":ro"
        assert volumes[str(hf)] == "/data/hf-cache" and HF_CACHE_VOLUME not in volumes


def test_compose_services_mount_the_runners_hf_cache_volume():
    for file in ("compose.yaml", "compose.cpu.yaml"):
        compose = yaml.safe_load((REPO / file).read_text())
        # A fixed name: compose would otherwise prefix the project name and the runner would miss it.
        assert compose["volumes"]["hf-cache"]["name"] == HF_CACHE_VOLUME, file
        for name, service in compose["services"].items():
            if name != "base":
                assert "${HARNESS_HF_CACHE:-hf-cache}:" + docker_mod.CONTAINER_HF_CACHE in service["volumes"]


class _FakeContainer:
    def __init__(self, kwargs, act):
        self.kwargs, self.act, self.id, self.attrs = kwargs, act, "c0ffee", {"State": {}}

    def start(self):
        self.act(self.kwargs)

    def logs(self, **_):
        return iter([b"HF_HUB_OFFLINE=" + self.kwargs["environment"].get("HF_HUB_OFFLINE", "").encode() + b"\n"])

    def wait(self):
        return {"StatusCode": 0}

    def reload(self):
        pass

    def remove(self, **_):
        pass


class _FakeClient:
    """Stands in for the engine: 'runs' a container by calling `act` with what it was created with."""

    def __init__(self, act):
        self.created = []
        client = self

        class Images:
            @staticmethod
            def get(image):
                return type("Image", (), {"id": "sha256:1", "attrs": {"RepoDigests": []}})()

        class Containers:
            @staticmethod
            def create(image, **kwargs):
                client.created.append((image, kwargs))
                return _FakeContainer(kwargs, act)

        self.images, self.containers = Images, Containers


def _fake_worker(write_hash):
    """What the image does: `harness execute /data/job` reads spec.json there and writes result.json."""
    def act(kwargs):
        binds = {v["bind"]: host for host, v in kwargs["volumes"].items()}
        folder = Path(binds[JOB_DIR])
        spec = load_spec(folder)
        record = {"spec": {**spec.record(), "config_hash": write_hash or spec.config_hash}}
        (folder / "result.json").write_text(json.dumps(record))
    return act


@pytest.mark.parametrize("write_hash", [None, "000000000000"])
def test_docker_runner_checks_the_containers_record_against_the_plan(config, capsys, monkeypatch, write_hash):
    client = _FakeClient(_fake_worker(write_hash))
    monkeypatch.setattr(docker_mod, "_client", lambda: client)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    record = next(r for r in _planned(capsys, config, "--decoding", "max_new_tokens=8") if r.get("variant") == "base")
    _, job, _, _ = _container_spec(config, record)
    outcome = DockerRunner().run_one(job)
    ((image, kwargs),) = client.created
    assert kwargs["command"] == ["execute", "/data/job"]
    # HF_HUB_OFFLINE reaches the container (the shared cache is then the only source of weights), unmasked.
    assert kwargs["environment"]["HF_HUB_OFFLINE"] == "1"
    if write_hash is None:
        assert outcome.status == FINISHED, outcome.line()
    else:
        assert outcome.status == FAILED and "not the planned " + job.spec.config_hash in outcome.reason
