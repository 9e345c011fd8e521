"""A run's identity: every card or benchmark field that changes a number changes the run id, a command-line
override changes it exactly as the same edit in the card does, and a misspelled key is one line naming it.

Each test edits one field of a copy of models/, benchmarks/ and presets/ (HARNESS_CONFIG_DIR), as a user would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.plan import BenchRequest, plan
from tests.helpers import can_finetune, models_where


@pytest.fixture
def config(harness_env, config_copy):
    return config_copy


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _run_id(**request) -> str:
    request.setdefault("models", ("qwen2vl",))
    request.setdefault("variants", ("base",))
    (run,) = plan(BenchRequest(**request)).runs
    return run.run_id


def _changes(config: Path, file: str, change, **request) -> tuple[str, str]:
    before = _run_id(**request)
    _edit(config / file, change)
    return before, _run_id(**request)


@pytest.mark.parametrize("file, change", [
    ("models/qwen2vl.yaml", lambda d: d["processor"].update(max_pixels=401408)),  # processor bounds
    ("models/qwen2vl.yaml", lambda d: d.update(revision="0" * 40)),  # model revision
    ("models/qwen2vl.yaml", lambda d: d.update(dtype="float16")),  # weights dtype
    ("models/qwen2vl.yaml", lambda d: d.update(attn_implementation="eager")),  # attention kernel
    ("models/qwen2vl.yaml", lambda d: d.update(trust_remote_code=True)),  # which code runs
    ("models/qwen2vl.yaml", lambda d: d.update(adapter="harness.adapters.smolvlm:SmolVLMAdapter")),  # adapter class
    ("benchmarks/chartqa.yaml", lambda d: d["prompts"].update(vlmevalkit="\nAnswer with a single word.")),  # prompt
    ("benchmarks/chartqa.yaml", lambda d: d["decoding"].update(max_new_tokens=32)),  # decoding
    ("benchmarks/chartqa.yaml", lambda d: d.update(metrics=["relaxed_accuracy"])),  # metrics
    ("benchmarks/chartqa.yaml", lambda d: d.update(dataset_revision="a" * 40)),  # data revision
], ids=["processor", "revision", "dtype", "attention", "remote-code", "adapter", "prompt", "decoding", "metrics",
        "dataset-revision"])
def test_a_field_that_changes_numbers_changes_the_run_id(config, file, change):
    before, after = _changes(config, file, change)
    assert before != after


def test_twin_fields_change_the_smoke_run_id(config):
    before, after = _changes(config, "models/qwen2vl.yaml",
                             lambda d: d["twin"]["processor"].update(max_pixels=12544), preset="smoke")
    assert before != after
    before, after = _changes(config, "presets/smoke.yaml", lambda d: d["synthetic"].update(seed=1), preset="smoke")
    assert before != after  # another synthetic data set


def test_a_metric_definition_version_changes_the_run_id(config, monkeypatch):
    from dataclasses import replace

    from harness.metrics import METRICS, get_metric

    before = _run_id()
    monkeypatch.setitem(METRICS._entries, "rougeL", replace(get_metric("rougeL"), version="999"))
    assert _run_id() != before


def test_a_display_only_field_does_not_change_the_run_id(config):
    before, after = _changes(config, "models/qwen2vl.yaml", lambda d: d.update(display_name="Qwen two"))
    assert before == after


@pytest.mark.parametrize("key, value, card_change", [
    ("processor.max_pixels", 401408, lambda d: d["processor"].update(max_pixels=401408)),
    ("attn_implementation", "sdpa", lambda d: d.update(attn_implementation="sdpa")),
    ("dtype", "float16", lambda d: d.update(dtype="float16")),
])
def test_an_override_is_the_same_edit_as_in_the_card(config, key, value, card_change):
    plain = _run_id()
    overridden = _run_id(sets=((tuple(key.split(".")), value),))
    assert overridden != plain
    _edit(config / "models/qwen2vl.yaml", card_change)
    assert _run_id() == overridden


def test_a_finetune_override_is_the_same_edit_as_in_the_card(config):
    def adapter_id(**request):
        (ft,) = plan(BenchRequest(models=("qwen2vl",), variants=("finetuned",), **request)).finetunes
        return ft.adapter_id

    overridden = adapter_id(sets=((("finetune", "lora", "r"), 16),))
    assert overridden != adapter_id()
    _edit(config / "models/qwen2vl.yaml", lambda d: d["finetune"]["lora"].update(r=16))
    assert adapter_id() == overridden


def test_decoding_override_reaches_every_variant(config):
    p = plan(BenchRequest(models=("qwen2vl",), variants=("base", "finetuned"), preset="smoke",
                          decoding=((("num_beams",), 4),)))
    assert [r.decoding["num_beams"] for r in p.runs] == [4, 4]


@pytest.mark.parametrize("file, change, key", [
    ("models/qwen2vl.yaml", lambda d: d["finetune"]["lora"].update(rank=16), "rank"),
    ("models/qwen2vl.yaml", lambda d: d["finetune"].update(warmup_step=5), "warmup_step"),
    ("models/qwen2vl.yaml", lambda d: d["twin"]["finetune"].update(epoch=2), "epoch"),
    ("presets/smoke.yaml", lambda d: d["finetune"].update(learning_rate=1.0), "learning_rate"),
])
def test_a_misspelled_recipe_key_is_one_line_naming_key_and_file(config, capsys, file, change, key):
    _edit(config / file, change)
    assert main(["bench", "--model", "qwen2vl", "--preset", "smoke", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"'{key}'" in err and file in err, err


def test_a_misspelled_override_is_one_line_naming_it(config, capsys):
    assert main(["bench", "--model", "qwen2vl", "--preset", "smoke", "--dry-run",
                 "--set", "finetune.lora.rank=16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'rank'" in err and "--set" in err, err
    assert main(["bench", "--model", "qwen2vl", "--dry-run", "--set", "colour=red"]) == 2
    assert "--set colour" in capsys.readouterr().err
    assert main(["bench", "--model", "qwen2vl", "--dry-run", "--decoding", "beams=4"]) == 2
    assert "'beams'" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_runs_nothing(config, capsys, harness_env):
    import json

    assert main(["bench", "--all", "--preset", "smoke", "--dry-run", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(f["model"] for f in data["finetunes"]) == models_where(can_finetune)  # one per tunable card
    needs = {r["adapter_id"] for r in data["runs"] if r["variant"] == "finetuned"}
    assert needs == {f["adapter_id"] for f in data["finetunes"]}  # the graph: every fine-tuned run names its fine-tune
    assert all(r["model_facts"]["adapter"] for r in data["runs"])
    assert not (harness_env / "results").exists() and not (harness_env / "checkpoints").exists()


def test_workers_read_no_yaml(config, harness_env, harness_cache, monkeypatch):
    """A spec carries what its worker needs: with every YAML reader broken, the worker still runs the spec."""
    import harness.registry as registry
    from harness.execute import execute
    from harness.specs import spec_from_record

    (run,) = plan(BenchRequest(models=("qwen2vl",), variants=("base",), preset="smoke", limit=2,
                               batch_sizes=(2,))).runs
    again = spec_from_record(run.record())
    assert again == run and again.config_hash == run.config_hash

    def refuse(*args, **kwargs):
        raise AssertionError("a worker read a config file")

    for name in ("_load_model", "_load_benchmark", "_load_preset", "_read_yaml"):
        monkeypatch.setattr(registry, name, refuse)
    result = execute(again, harness_env / "run", checkpoints=harness_env / "ck", cache=harness_cache)
    assert result["spec"]["config_hash"] == run.config_hash and result["num_samples"] == 2


def test_local_runner_skips_a_model_whose_pins_this_environment_cannot_meet(config, harness_env, capsys):
    """`bench --all` benches the models this interpreter can run and skips the others with one line each."""
    for path in (config / "models").glob("*.yaml"):
        if path.stem not in ("qwen2vl", "smolvlm"):
            path.unlink()
    _edit(config / "models/qwen2vl.yaml",
          lambda d: d["twin"].update(environment={"transformers": "<1"}))  # as if the twin ran on old code only
    code = main(["bench", "--all", "--preset", "smoke", "--variant", "base", "--limit", "2", "--batch-size", "2",
                 "--no-leaderboard"])
    err = capsys.readouterr().err
    assert code == 0, err  # a skip is not a failure
    skips = [line for line in err.splitlines() if ": skipped:" in line]
    assert len(skips) == 1 and "qwen2vl" in skips[0] and "transformers" in skips[0] and "--runner docker" in skips[0]
    finished = sorted(p.parent.name.split("-")[0] for p in (harness_env / "results").glob("*/result.json"))
    assert finished == ["smolvlm"]


def test_a_run_finished_on_other_hardware_is_not_reused(harness_env, capsys):
    """A result copied from another machine is not "already finished" here: reuse needs the same hardware."""
    from harness.fileio import write_json_atomic
    from harness.orchestrate import prepare_job
    from harness.plan import resolve_paths
    from harness.registry import load_preset

    argv = ["bench", "--model", "qwen2vl", "--variant", "base", "--preset", "smoke", "--limit", "2",
            "--batch-size", "2", "--no-leaderboard"]
    (run,) = plan(BenchRequest(models=("qwen2vl",), variants=("base",), preset="smoke", limit=2,
                               batch_sizes=(2,))).runs
    job = prepare_job(run, resolve_paths(load_preset("smoke")))
    write_json_atomic(job.folder / "result.json", {"spec": {**run.to_dict(), "config_hash": run.config_hash},
                                                   "manifest": {"hardware": "NVIDIA H200", "packages": {}}})
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "measured elsewhere" in err and "NVIDIA H200" in err and "--force" in err
    assert main([*argv, "--force"]) == 0  # measured here now, replacing the copy
    assert "NVIDIA H200" not in (job.folder / "result.json").read_text()
