"""Named fine-tune recipes (official / study), and the training-loop settings they need.

The study's values are read from its notebooks (github:szymonszczurowski/PJN_Multimodal_Models) and
cited in each card's `recipes.study.source`; these tests pin that the planner turns them into the spec.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import HarnessError
from harness.plan import finetune_spec
from harness.registry import load_model
from harness.specs import FinetuneSpec

REPO = Path(__file__).resolve().parents[2]


# --- the cards' recipes -------------------------------------------------------------------------------
def test_study_recipe_has_the_study_notebooks_values(harness_env):
    qwen = finetune_spec("qwen2vl", recipe="study")
    # qwen_2b.ipynb: SFTConfig(warmup_steps=50, weight_decay=0.01, optim="adamw_torch_fused"), default scheduler.
    assert {k: qwen.recipe[k] for k in ("method", "batch_size", "grad_accum", "lr", "warmup_steps", "schedule",
                                        "weight_decay", "optimizer", "epochs")} == {
        "method": "qlora", "batch_size": 2, "grad_accum": 4, "lr": 1e-4, "warmup_steps": 50, "schedule": "linear",
        "weight_decay": 0.01, "optimizer": "adamw_torch_fused", "epochs": 1}
    assert qwen.recipe["lora"] == {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    assert qwen.recipe.get("max_grad_norm", 1.0) == 1.0  # the Trainer's default clipping

    smol = finetune_spec("smolvlm", recipe="study")
    # SmolVLM_BASE_finetuningg.ipynb: 2 x 4, adamw_torch_fused, warmup_steps=50, lr 1e-4, weight decay 0.01.
    assert {k: smol.recipe[k] for k in ("batch_size", "grad_accum", "optimizer", "warmup_steps", "lr",
                                        "weight_decay", "schedule")} == {
        "batch_size": 2, "grad_accum": 4, "optimizer": "adamw_torch_fused", "warmup_steps": 50, "lr": 1e-4,
        "weight_decay": 0.01, "schedule": "linear"}

    moon = finetune_spec("moondream", recipe="study")
    # moondream_2.ipynb: LR = 1e-5, 8 x 2, Adam8bit, loss.backward(); optimizer.step() (no clipping).
    assert {k: moon.recipe[k] for k in ("lr", "batch_size", "grad_accum", "epochs", "optimizer")} == {
        "lr": 1e-5, "batch_size": 8, "grad_accum": 2, "epochs": 1, "optimizer": "adam8bit"}
    assert "max_grad_norm" in moon.recipe and moon.recipe["max_grad_norm"] is None


def test_official_recipe_stays_the_default(harness_env):
    for model in ("qwen2vl", "smolvlm", "moondream"):
        default, official = finetune_spec(model), finetune_spec(model, recipe="official")
        assert default == official and default.recipe_name == "official"
        assert default.recipe == load_model(model).finetune  # official = the card's finetune: section
        assert finetune_spec(model, recipe="study").adapter_id != default.adapter_id
    assert finetune_spec("smolvlm").recipe["optimizer"] == "paged_adamw_8bit"  # the official notebook's 4 x 4
    assert finetune_spec("moondream").recipe["lr"] == 3e-5


def test_every_named_recipe_cites_a_source(harness_env):
    for model in ("qwen2vl", "smolvlm", "moondream"):
        recipes = load_model(model).recipes
        assert set(recipes) == {"official", "study"}
        assert all(len(entry["source"]) > 40 for entry in recipes.values())


def test_twin_overrides_still_apply_on_top_of_the_study_recipe(harness_env):
    spec = finetune_spec("qwen2vl", preset_name="smoke", recipe="study")
    assert spec.recipe["lora"]["target_modules"] == "all-linear"  # twin.finetune
    assert spec.recipe["method"] == "lora" and spec.recipe["optimizer"] == "adamw"  # the preset's
    assert spec.recipe["warmup_steps"] == 50  # the study's, where neither preset nor twin says otherwise
    assert spec.adapter_id != finetune_spec("qwen2vl", preset_name="smoke").adapter_id


def test_unknown_recipe_is_a_one_line_error(harness_env):
    with pytest.raises(HarnessError) as exc:
        finetune_spec("qwen2vl", recipe="nope")
    message = str(exc.value)
    assert "\n" not in message and "'nope'" in message and "known: official, study" in message
    assert "qwen2vl.yaml" in message
    with pytest.raises(HarnessError, match=r"known: official\)"):
        finetune_spec("moondream2025", recipe="study")  # a card without named recipes has the official only


# --- command line and orchestration ------------------------------------------------------------------
def test_cli_finetune_recipe_study_changes_the_adapter_id(harness_env, monkeypatch, capsys):
    import harness.runners.local as local
    from harness.cli import main

    seen = []

    def fake_execute(spec, paths, force=False):
        seen.append(spec)
        return {"adapter_id": spec.adapter_id, "recipe_name": spec.recipe_name}

    monkeypatch.setattr(local, "execute_finetune", fake_execute)
    assert main(["finetune", "smolvlm"]) == 0
    assert main(["finetune", "smolvlm", "--recipe", "study"]) == 0
    official, study = seen
    assert official.recipe_name == "official" and study.recipe_name == "study"
    assert study.recipe["batch_size"] == 2 and study.adapter_id != official.adapter_id
    assert main(["finetune", "smolvlm", "--recipe", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "known: official, study" in err and "\n" not in err


def test_bench_passes_the_recipe_to_the_fine_tune_and_the_container(harness_env, monkeypatch):
    import harness.orchestrate as orchestrate
    from harness.cli import build_parser

    fspecs = []

    class FakeRunner:
        def finetune(self, fspec, paths):
            fspecs.append(fspec)

        def run(self, spec, paths):
            return None

    monkeypatch.setattr(orchestrate, "_runner", lambda name, recipe="official": FakeRunner())
    args = build_parser().parse_args(["bench", "--model", "moondream", "--preset", "smoke", "--recipe", "study",
                                      "--no-leaderboard"])
    assert args.func(args) == 0
    assert [f.recipe_name for f in fspecs] == ["study"] and fspecs[0].recipe["max_grad_norm"] is None

    # With --runner docker the container plans the same spec, so it gets the recipe name too.
    argvs = []
    runner = orchestrate._DockerRunner("study")
    monkeypatch.setattr(runner, "_run", lambda model, argv, paths, extra=None: argvs.append(argv))
    runner.finetune(fspecs[0], SimpleNamespace())
    assert argvs[0][:4] == ["finetune", "moondream", "--recipe", "study"]


def test_bench_does_not_pass_off_another_recipes_fine_tune(harness_env, monkeypatch):
    import harness.orchestrate as orchestrate
    from harness.cli import build_parser
    from harness.store import write_json_atomic

    official = finetune_spec("moondream", preset_name="smoke")
    done = harness_env / "checkpoints" / "moondream"  # harness_env's HARNESS_CHECKPOINTS_DIR
    write_json_atomic(done / "finetune_config.json",
                      {**official.to_dict(), "config_hash": official.config_hash, "adapter_id": official.adapter_id})
    write_json_atomic(done / "training.json", {"adapter_id": official.adapter_id})
    fspecs = []
    runner = SimpleNamespace(finetune=lambda fspec, paths: fspecs.append(fspec), run=lambda spec, paths: None)
    monkeypatch.setattr(orchestrate, "_runner", lambda name, recipe="official": runner)
    for recipe in ("official", "study"):
        args = build_parser().parse_args(["bench", "--model", "moondream", "--variant", "finetuned", "--preset",
                                          "smoke", "--recipe", recipe, "--no-leaderboard"])
        args.func(args)
    # The official fine-tune on disk is benched for --recipe official and never stands in for the study's.
    assert [f.recipe_name for f in fspecs] == ["study"]


# --- card validation ---------------------------------------------------------------------------------
@pytest.fixture
def config_copy(tmp_path, monkeypatch):
    """A copy of models/, benchmarks/ and presets/ to edit; the registry's caches are reset around it."""
    for kind in ("models", "benchmarks", "presets"):
        shutil.copytree(REPO / kind, tmp_path / kind)
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path))
    load_model.cache_clear()
    yield tmp_path
    load_model.cache_clear()


@pytest.mark.parametrize("recipes, message", [
    ("recipes:\n  official: {source: x}\n  study: {lr: 1.0e-5}\n", "recipes.study needs a 'source'"),
    ("recipes:\n  official: {source: x}\n  study: {source: y, lr_rate: 1.0e-5}\n",
     "unknown fine-tune key(s) ['lr_rate']"),
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
                        split="train", prompt_suffix="", recipe=full, dtype="float32", device="cpu", seed=0,
                        preset=None)
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
    assert _optimizer(params, {"optimizer": "adamw_torch_fused", "lr": 1e-3}, "cuda:1").defaults["fused"] is True
    assert not _optimizer(params, {"optimizer": "adamw", "lr": 1e-3}, "cuda:1").defaults.get("fused")


def test_autocast_decision_follows_device_method_and_dtype():
    from harness.train.recipe import autocast_dtype

    assert autocast_dtype({"method": "qlora"}, "cuda:1", "bfloat16") == "bfloat16"
    assert autocast_dtype({"method": "lora"}, "cuda", "float16") == "float16"
    assert autocast_dtype({"method": "qlora"}, "cpu", "bfloat16") is None  # CPU: nothing changes
    assert autocast_dtype({"method": "qlora"}, "cuda", "float32") is None
    assert autocast_dtype({"method": "full"}, "cuda", "float16") is None  # Moondream's loop: no autocast
    assert autocast_dtype({"method": "qlora", "autocast": False}, "cuda", "bfloat16") is None


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
