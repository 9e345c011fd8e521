"""A fine-tune killed mid-run and rerun ends exactly where an uninterrupted one ends (issue 10).

The kill is real: `harness finetune` runs in a subprocess and dies by SIGKILL right after writing a
checkpoint, through the fault hook (harness/faults.py, `kill@finetune.after_checkpoint:N`). LoRA dropout is on, so
the resumed run only matches if the RNG comes back at the point of the loop where it was saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import REPO
from tests.helpers import execute_spec, finetune_sets, plan_ft

MODEL = "qwen2vl"
STEPS, KILL_AT = 4, 2
FLAGS = ["--max-steps", str(STEPS), "--batch-size", "1", "--limit", "8",
         "--set", "finetune.save_every=1", "--set", "finetune.lora.dropout=0.1"]
SETS = finetune_sets(max_steps=STEPS, batch_size=1, limit=8, save_every=1) + ((("finetune", "lora", "dropout"), 0.1),)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "adapter" / "adapter_model.safetensors")


def test_killed_finetune_resumes_to_the_same_adapter_and_loss_curve(harness_env):
    import torch

    from harness import faults
    from harness.plan import resolve_paths

    spec = plan_ft(MODEL, preset="smoke", sets=SETS)
    assert spec.recipe.lora.dropout == 0.1 and spec.recipe.save_every == 1
    whole_paths = resolve_paths(None, checkpoints=harness_env / "whole")
    whole = execute_spec(spec, whole_paths)  # also builds the twin and the data into the shared cache

    killed_paths = resolve_paths(None, checkpoints=harness_env / "killed")
    env = {**os.environ, "HARNESS_CHECKPOINTS_DIR": str(killed_paths.checkpoints),
           faults.ENV: f"kill@finetune.after_checkpoint:{KILL_AT}"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "finetune", MODEL, "--preset", "smoke", *FLAGS],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]  # save_every=1: the N-th checkpoint is step N's
    folder = killed_paths.finetune_dir(spec.adapter_id)  # the CLI planned the same spec as plan_ft
    state = torch.load(folder / "checkpoint" / "state.pt", weights_only=False)
    assert state["step"] == KILL_AT and not (folder / "training.json").exists()

    resumed = execute_spec(spec, killed_paths)
    assert resumed["resumed_at_step"] == KILL_AT and whole["resumed_at_step"] is None
    assert resumed["steps"] == whole["steps"] == STEPS
    assert resumed["loss_per_step"] == whole["loss_per_step"]
    assert resumed["labelled_share_mean"] == whole["labelled_share_mean"]
    assert json.loads((folder / "training.json").read_text())["resumed_at_step"] == KILL_AT
    assert not (folder / "checkpoint").exists()
    expected, got = _weights(whole_paths.finetune_dir(spec.adapter_id)), _weights(folder)
    assert expected.keys() == got.keys() and expected
    assert all(torch.equal(expected[name], got[name]) for name in expected), "adapter weights differ"


class _Killed(Exception):
    pass


class NoisyAdapter:
    """The adapter contract on a tiny MLP that draws from every RNG a real adapter may use: numpy noise
    in its batches (augmentation), torch dropout in its loss, and a per-example labelled share."""

    def __init__(self):
        import torch

        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
        self.request = SimpleNamespace(device="cpu")
        self.drawn: list = []  # the examples of every batch, in order

    def trainable_module(self):
        return self.model

    def enable_gradient_checkpointing(self):
        pass

    def training_batch(self, examples, prompt_suffix, max_length):
        import numpy as np
        import torch

        self.drawn.append(examples)
        x = torch.tensor([ex[0] for ex in examples]) + torch.from_numpy(np.random.normal(0, 0.1, (len(examples), 4)))
        labels = torch.tensor([[1] * (1 + int(ex[1])) + [-100] * (3 - int(ex[1])) for ex in examples])
        return {"x": x.float(), "y": torch.tensor([[ex[1]] for ex in examples]), "labels": labels,
                "attention_mask": torch.ones_like(labels)}

    def training_loss(self, batch):
        import torch

        return torch.nn.functional.mse_loss(self.model(batch["x"]), batch["y"])

    def save_finetuned(self, out_dir):
        pass

    def environment(self):
        return {}


def _tiny_spec():
    from harness.specs import FinetuneRecipe, FinetuneSpec

    recipe = FinetuneRecipe(method="full", epochs=2, batch_size=2, lr=1e-2, schedule="cosine", warmup_steps=2,
                            save_every=1)
    return FinetuneSpec(model="tiny", model_id="tiny", model_revision=None, dataset="mem", dataset_revision=None,
                        split="train", prompt_suffix="", recipe=recipe, dtype="float32", device="cpu", seed=0,
                        preset=None)


def test_resume_restores_numpy_torch_and_python_rng_and_the_record(tmp_path, monkeypatch):
    """The loop's own state, without a model: the hook's kill raises here instead of ending pytest."""
    import torch

    from harness import faults
    from harness.train.recipe import run_finetune

    def killed():
        raise _Killed()

    data = [([float(i % 5), 1.0, -1.0, 0.5], float(i % 3)) for i in range(10)]
    whole_adapter = NoisyAdapter()
    whole = run_finetune(_tiny_spec(), tmp_path / "whole", data, whole_adapter)

    monkeypatch.setenv(faults.ENV, "kill@finetune.after_checkpoint:3")
    monkeypatch.setattr(faults, "_kill", killed)
    with pytest.raises(_Killed):
        run_finetune(_tiny_spec(), tmp_path / "killed", data, NoisyAdapter())
    monkeypatch.delenv(faults.ENV)
    adapter = NoisyAdapter()  # a fresh "process": the rerun starts from the checkpoint of step 3
    resumed = run_finetune(_tiny_spec(), tmp_path / "killed", data, adapter)

    assert resumed["resumed_at_step"] == 3 and whole["resumed_at_step"] is None
    assert resumed["steps"] == whole["steps"] == 10
    assert resumed["loss_per_step"] == whole["loss_per_step"]
    assert resumed["labelled_share_mean"] == whole["labelled_share_mean"]  # the whole run's, not the session's
    assert adapter.drawn == whole_adapter.drawn[3:]  # the same examples, in the same order, from step 4 on
    expected, got = whole_adapter.model.state_dict(), adapter.model.state_dict()
    assert all(torch.equal(expected[name], got[name]) for name in expected), "weights differ"
