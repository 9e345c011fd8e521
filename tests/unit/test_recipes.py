"""Named fine-tune recipes (official / study), and the training-loop settings they need.

The study's values are read from its notebooks (github:szymonszczurowski/PJN_Multimodal_Models) and
cited in each card's `recipes.study.source`; these tests pin that the planner turns them into the spec.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import HarnessError
from harness.registry import load_model
from harness.runners.base import FAILED, Outcome, Runner
from harness.specs import FinetuneRecipe, FinetuneSpec
from tests.helpers import models_where, plan_ft, plan_runs


# --- the cards' recipes -------------------------------------------------------------------------------
def test_study_recipe_has_the_study_notebooks_values(harness_env):
    qwen = plan_ft("qwen2vl", recipe="study")
    # qwen_2b.ipynb: SFTConfig(warmup_steps=50, weight_decay=0.01, optim="adamw_torch_fused"), default scheduler.
    qwen_recipe = qwen.recipe.to_dict()
    assert {k: qwen_recipe[k] for k in ("method", "batch_size", "grad_accum", "lr", "warmup_steps", "schedule",
                                        "weight_decay", "optimizer", "epochs")} == {
        "method": "qlora", "batch_size": 2, "grad_accum": 4, "lr": 1e-4, "warmup_steps": 50, "schedule": "linear",
        "weight_decay": 0.01, "optimizer": "adamw_torch_fused", "epochs": 1}
    assert qwen_recipe["lora"] == {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
                                   "init": True}
    assert qwen.recipe.to_dict().get("max_grad_norm", 1.0) == 1.0  # the Trainer's default clipping

    smol = plan_ft("smolvlm", recipe="study")
    # SmolVLM_BASE_finetuningg.ipynb: 2 x 4, adamw_torch_fused, warmup_steps=50, lr 1e-4, weight decay 0.01.
    assert {k: smol.recipe.to_dict()[k] for k in ("batch_size", "grad_accum", "optimizer", "warmup_steps", "lr",
                                        "weight_decay", "schedule")} == {
        "batch_size": 2, "grad_accum": 4, "optimizer": "adamw_torch_fused", "warmup_steps": 50, "lr": 1e-4,
        "weight_decay": 0.01, "schedule": "linear"}

    moon = plan_ft("moondream", recipe="study", allow_unpinned_code=True)  # its card pins a tag
    # moondream_2.ipynb: LR = 1e-5, 8 x 2, Adam8bit, loss.backward(); optimizer.step() (no clipping).
    assert {k: moon.recipe.to_dict()[k] for k in ("lr", "batch_size", "grad_accum", "epochs", "optimizer")} == {
        "lr": 1e-5, "batch_size": 8, "grad_accum": 2, "epochs": 1, "optimizer": "adam8bit"}
    assert moon.recipe.to_dict()["max_grad_norm"] is None


def test_official_recipe_stays_the_default(harness_env):
    for model in models_where(lambda card: "study" in card.recipes):
        ok = {"allow_unpinned_code": True}  # moondream's card pins a tag
        default, official = plan_ft(model, **ok), plan_ft(model, recipe="official", **ok)
        assert default == official and default.recipe_name == "official"
        # official = the card's finetune: section
        assert default.recipe == FinetuneRecipe.from_dict(load_model(model).finetune)
        assert plan_ft(model, recipe="study", **ok).adapter_id != default.adapter_id
    assert plan_ft("smolvlm").recipe.to_dict()["optimizer"] == "paged_adamw_8bit"  # the official notebook's 4 x 4
    assert plan_ft("moondream", allow_unpinned_code=True).recipe.to_dict()["lr"] == 3e-5


def test_every_named_recipe_cites_a_source(harness_env):
    with_recipes = models_where(lambda card: card.recipes)
    assert {"qwen2vl", "smolvlm", "moondream"} <= set(with_recipes)  # the study's three models
    for model in with_recipes:
        recipes = load_model(model).recipes
        assert "official" in recipes, model
        assert all(len(entry["source"]) > 40 for entry in recipes.values()), model


def test_twin_overrides_still_apply_on_top_of_the_study_recipe(harness_env):
    spec = plan_ft("qwen2vl", preset="smoke", recipe="study")
    assert spec.recipe.to_dict()["lora"]["target_modules"] == "all-linear"  # twin.finetune
    assert spec.recipe.to_dict()["method"] == "lora" and spec.recipe.to_dict()["optimizer"] == "adamw"  # the preset's
    assert spec.recipe.to_dict()["warmup_steps"] == 50  # the study's, where neither preset nor twin says otherwise
    assert spec.adapter_id != plan_ft("qwen2vl", preset="smoke").adapter_id


def test_unknown_recipe_is_a_one_line_error(harness_env):
    with pytest.raises(HarnessError) as exc:
        plan_ft("qwen2vl", recipe="nope")
    message = str(exc.value)
    assert "\n" not in message and "'nope'" in message and "known: official, study" in message
    assert "qwen2vl.yaml" in message
    with pytest.raises(HarnessError, match=r"known: official\)"):
        plan_ft("moondream2025", recipe="study")  # a card without named recipes has the official only


# --- command line and orchestration ------------------------------------------------------------------
def test_cli_finetune_recipe_study_changes_the_adapter_id(harness_env, monkeypatch, capsys):
    import harness.execute as execute_module
    from harness.cli import main

    seen = []

    def fake_execute(spec, folder, **kwargs):
        seen.append(spec)
        return {"adapter_id": spec.adapter_id, "recipe_name": spec.recipe_name}

    monkeypatch.setattr(execute_module, "execute", fake_execute)
    assert main(["finetune", "smolvlm"]) == 0
    assert main(["finetune", "smolvlm", "--recipe", "study"]) == 0
    official, study = seen
    assert official.recipe_name == "official" and study.recipe_name == "study"
    assert study.recipe.batch_size == 2 and study.adapter_id != official.adapter_id
    assert main(["finetune", "smolvlm", "--recipe", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "known: official, study" in err and "\n" not in err


class RecordingRunner(Runner):
    """Finishes nothing, records what it was handed."""

    name = "recording"
    jobs: list = []

    def __init__(self, **_):
        pass

    def run_one(self, job):
        RecordingRunner.jobs.append(job)
        return Outcome(job.id, job.kind, FAILED, "recording only", job.folder)


def test_bench_hands_the_runner_the_study_fine_tune_spec(harness_env, monkeypatch):
    from harness.cli import main
    from harness.runners.base import RUNNERS
    from harness.runners.docker_runner import container_invocation
    from harness.specs import spec_from_record
    from harness.store import read_json

    monkeypatch.setitem(RUNNERS._entries, "recording", RecordingRunner)
    RecordingRunner.jobs = []
    assert main(["bench", "--model", "moondream", "--preset", "smoke", "--recipe", "study", "--runner",
                 "recording", "--no-leaderboard"]) == 1  # the recording runner fails every job
    # The fine-tune, then the base run; the fine-tuned run is skipped because its fine-tune did not finish.
    assert [j.kind for j in RecordingRunner.jobs] == ["finetune", "run"]
    job = RecordingRunner.jobs[0]
    assert job.spec.recipe_name == "study" and job.spec.recipe.max_grad_norm is None
    # A container never plans: it reads the spec.json the host wrote into the job's folder.
    image, argv, volumes = container_invocation(job)
    assert argv == ["execute", "/data/job"] and volumes[str(job.folder.resolve())] == "/data/job"
    assert spec_from_record(read_json(job.folder / "spec.json")) == job.spec


def test_another_recipes_fine_tune_never_stands_in(harness_env):
    official = plan_ft("moondream", preset="smoke")
    study = plan_ft("moondream", preset="smoke", recipe="study")
    # Fine-tunes are keyed by id: the official one on disk is not where the study's is looked for.
    assert official.adapter_id != study.adapter_id
    (run,) = plan_runs(["moondream"], ["finetuned"], preset="smoke", recipe="study")
    assert run.needs == study.adapter_id

# --- card validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("recipes, message", [
    ("recipes:\n  official: {source: x}\n  study: {lr: 1.0e-5}\n", "recipes.study needs a 'source'"),
    ("recipes:\n  official: {source: x}\n  study: {source: y, lr_rate: 1.0e-5}\n",
     "recipes.study: unknown key 'lr_rate'"),
    ("recipes:\n  study: {source: y, lr: 1.0e-5}\n", "needs an 'official' entry"),
    ("recipes:\n  official: {source: x, lr: 1.0}\n", "recipes.official only cites its source"),
])
def test_bad_recipes_section_is_a_one_line_error(config_copy, recipes, message):
    path = config_copy / "models" / "qwen2vl.yaml"
    text = path.read_text()
    start, end = text.index("\nrecipes:"), text.index("\ntwin:")
    path.write_text(text[:start] + "\n" + recipes.rstrip("\n") + text[end:])
    with pytest.raises(HarnessError) as exc:
        load_model("qwen2vl")
    assert message in str(exc.value) and "qwen2vl.yaml" in str(exc.value) and "\n" not in str(exc.value)


# --- the training loop ---------------------------------------------------------------------------------
class TinyAdapter:
    """The adapter contract at its smallest: a linear model trained fully on (x, y) pairs, on the CPU."""

    def __init__(self):
        import torch

        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 1)
        self.request = SimpleNamespace(device="cpu")
        self.autocast_seen: list = []

    def trainable_module(self):
        return self.model

    def enable_gradient_checkpointing(self):
        pass

    def training_batch(self, examples, prompt_suffix, max_length):
        import torch

        x = torch.tensor([ex[0] for ex in examples])
        return {"x": x, "y": torch.tensor([[ex[1]] for ex in examples]),
                "labels": torch.ones(len(examples), 2, dtype=torch.long),
                "attention_mask": torch.ones(len(examples), 2, dtype=torch.long)}

    def training_loss(self, batch):
        import torch

        self.autocast_seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return torch.nn.functional.mse_loss(self.model(batch["x"]).float(), batch["y"])

    def save_finetuned(self, out_dir):
        Path(out_dir).mkdir(parents=True, exist_ok=True)

    def environment(self):
        return {}


def _train(tmp_path, **recipe):
    from harness.train.recipe import run_finetune

    data = [([float(i), 1.0, -1.0, 0.5], float(i % 3)) for i in range(12)]
    full = {"method": "full", "epochs": 1, "batch_size": 4, "grad_accum": 1, "lr": 1e-2, "optimizer": "adamw",
            "schedule": "constant", **recipe}
    spec = FinetuneSpec(model="tiny", model_id="tiny", model_revision=None, dataset="mem", dataset_revision=None,
                        split="train", prompt_suffix="", recipe=FinetuneRecipe.from_dict(full), dtype="float32",
                        device="cpu", seed=0, preset=None)
    adapter = TinyAdapter()
    return run_finetune(spec, tmp_path / "ft", data, adapter), adapter


def test_max_grad_norm_null_skips_clipping(tmp_path, monkeypatch):
    import torch

    calls = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, norm: calls.append(norm) or real(params, norm))
    record, _ = _train(tmp_path / "a", max_grad_norm=None)
    assert calls == [] and record["max_grad_norm"] is None and record["steps"] == 3
    record, _ = _train(tmp_path / "b")  # the default clips every optimizer step at 1.0
    assert calls == [1.0, 1.0, 1.0] and record["max_grad_norm"] == 1.0


def test_adamw_torch_fused_runs_plain_on_cpu_and_fused_on_cuda(tmp_path):
    import torch

    from harness.train.recipe import _optimizer

    record, _ = _train(tmp_path, optimizer="adamw_torch_fused")
    assert record["optimizer"] == {"name": "adamw_torch_fused", "class": "AdamW", "fused": False}
    params = [torch.nn.Parameter(torch.zeros(3))]
    fused = FinetuneRecipe(optimizer="adamw_torch_fused", lr=1e-3)
    assert _optimizer(params, fused, "cuda:1").defaults["fused"] is True
    assert not _optimizer(params, FinetuneRecipe(optimizer="adamw", lr=1e-3), "cuda:1").defaults.get("fused")


def test_autocast_decision_follows_device_method_and_dtype():
    from harness.train.recipe import autocast_dtype

    assert autocast_dtype(FinetuneRecipe(method="qlora"), "cuda:1", "bfloat16") == "bfloat16"
    assert autocast_dtype(FinetuneRecipe(method="lora"), "cuda", "float16") == "float16"
    assert autocast_dtype(FinetuneRecipe(method="qlora"), "cpu", "bfloat16") is None  # CPU: nothing changes
    assert autocast_dtype(FinetuneRecipe(method="qlora"), "cuda", "float32") is None
    assert autocast_dtype(FinetuneRecipe(method="full"), "cuda", "float16") is None  # Moondream's loop: no autocast
    assert autocast_dtype(FinetuneRecipe(method="qlora", autocast=False), "cuda", "bfloat16") is None


def test_training_forward_runs_under_the_chosen_autocast_and_the_record_says_so(tmp_path, monkeypatch):
    import torch

    import harness.train.recipe as recipe_module

    record, adapter = _train(tmp_path / "cpu")
    assert record["autocast"] is None and set(adapter.autocast_seen) == {None}  # CPU runs: no autocast

    # Where the decision says autocast (CUDA in real runs), the loss forward runs inside it.
    monkeypatch.setattr(recipe_module, "autocast_dtype", lambda recipe, device, dtype: "bfloat16")
    record, adapter = _train(tmp_path / "bf16")
    assert record["autocast"] == "bfloat16" and set(adapter.autocast_seen) == {torch.bfloat16}


# --- QLoRA placement -----------------------------------------------------------------------------------
def test_qlora_load_places_the_model_on_the_requested_cuda_device(harness_env, monkeypatch):
    import transformers

    from harness.adapters.base import LoadRequest, ProcessorAdapter, model_load_kwargs

    seen = {}

    class FakeModel:
        def eval(self):
            return self

        def to(self, device):
            raise AssertionError("a 4-bit model is placed while loading, never moved afterwards")

    def fake_model_load(source, **kwargs):
        seen.update(kwargs)
        return FakeModel()

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained",
                        lambda *a, **k: SimpleNamespace(tokenizer=object()))
    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", fake_model_load)
    request = LoadRequest(source="x", revision=None, dtype="bfloat16", device="cuda:1", quantization="nf4")
    ProcessorAdapter(load_model("qwen2vl"), request).load()
    assert seen["device_map"] == {"": "cuda:1"}  # model and inputs on the same device
    assert seen["quantization_config"].bnb_4bit_quant_type == "nf4"
    plain = LoadRequest(source="x", revision=None, dtype="bfloat16", device="cuda:1")
    assert "device_map" not in model_load_kwargs(plain)  # 16-bit weights load, then move with .to()
