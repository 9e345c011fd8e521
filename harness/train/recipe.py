"""The fine-tune recipe, top to bottom: data, model, trainable params, loop, checkpoints, record.

Shared by every model: label masking, seeding, checkpointing and throughput accounting live here
once, so per-model recipes cannot drift apart. Only the adapter knows the model's format.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness import faults
from harness.errors import HarnessError
from harness.fileio import atomic_dir, atomic_file
from harness.progress import Progress, log
from harness.records import TrainingRecord, utc_now
from harness.specs import FinetuneRecipe, FinetuneSpec
from harness.store import output_mismatch, read_json, write_json_atomic
from harness.train.lora import count_parameters, make_trainable
from harness.train.masking import labelled_share
from harness.train.schedule import lr_factor

if TYPE_CHECKING:
    from harness.adapters.protocol import TrainingAdapter

__all__ = ["autocast_dtype", "finetune_status", "run_finetune"]

# Methods trained with autocast on CUDA: the PEFT fine-tunes, which the study ran through the HF
# Trainer with bf16=True. Full fine-tuning keeps Moondream's official loop (16-bit weights, no autocast).
AUTOCAST_METHODS = ("lora", "qlora")

OOM_ADVICE = ("lower finetune.batch_size (raise finetune.grad_accum to keep the effective batch), lower "
              "finetune.max_length, set finetune.gradient_checkpointing=true, or use method qlora")


def finetune_status(out_dir: Path, spec: FinetuneSpec) -> str:
    """'done', 'partial' (resumable), 'missing', or 'other' (a different fine-tune is there)."""
    config_path = out_dir / "spec.json"
    if not config_path.exists():
        return "missing"
    if read_json(config_path).get("config_hash") != spec.config_hash:
        return "other"
    return "done" if output_mismatch(out_dir, spec) is None else "partial"


def _clear(out_dir: Path) -> None:
    """Empty the fine-tune folder for a fresh start, keeping the lock its writer holds (harness/lock.py)."""
    from harness.lock import LOCK_NAME

    for path in Path(out_dir).glob("*") if Path(out_dir).is_dir() else []:
        if path.name == LOCK_NAME:
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast_dtype(recipe: FinetuneRecipe, device: str, dtype: str) -> str | None:
    """The dtype the training forward runs under autocast in, or None (no autocast).

    On CUDA, LoRA/QLoRA forwards autocast to the compute dtype, as the study's Trainer (bf16=True) did:
    prepare_model_for_kbit_training upcasts every weight that is not 4-bit (norms, embeddings, head)
    to fp32, so without autocast most of a QLoRA forward runs in fp32. `autocast: false` turns it off.
    """
    if not recipe.autocast or not str(device).startswith("cuda"):
        return None
    if recipe.method not in AUTOCAST_METHODS or dtype not in ("float16", "bfloat16"):
        return None
    return dtype


def _autocast(device: str, dtype: str | None):
    if dtype is None:
        return contextlib.nullcontext()
    import torch

    from harness.adapters.base import torch_dtype

    return torch.autocast(device_type=str(device).split(":")[0], dtype=torch_dtype(dtype))


def _optimizer(params, recipe: FinetuneRecipe, device: str):
    import torch

    name = recipe.optimizer
    lr, wd = float(recipe.lr), float(recipe.weight_decay)
    extra = {}  # optional Adam hyper-parameters, e.g. Moondream's betas (0.9, 0.95) and eps 1e-6
    if recipe.betas is not None:
        extra["betas"] = tuple(float(b) for b in recipe.betas)
    if recipe.eps is not None:
        extra["eps"] = float(recipe.eps)
    if name in ("adamw", "adamw_torch_fused"):
        # The HF Trainer's adamw_torch_fused is torch's AdamW with fused=True (same update, one kernel).
        # Fused on CUDA only: CPU runs keep torch's reference loop (the record says which ran).
        if name == "adamw_torch_fused" and device.startswith("cuda"):
            extra["fused"] = True
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, **extra)
    if name in ("adam8bit", "paged_adamw_8bit"):
        if not device.startswith("cuda"):
            raise HarnessError(f"optimizer {name} needs a CUDA GPU (bitsandbytes); use 'adamw' on {device}")
        import bitsandbytes as bnb

        cls = bnb.optim.Adam8bit if name == "adam8bit" else bnb.optim.PagedAdamW8bit
        return cls(params, lr=lr, weight_decay=wd, **extra)
    raise HarnessError(f"unknown optimizer '{name}' (use adamw, adamw_torch_fused, adam8bit or paged_adamw_8bit)")


def _order(n: int, seed: int, epoch: int) -> list[int]:
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(n))
    rng.shuffle(order)
    return order


def run_finetune(spec: FinetuneSpec, out_dir: Path, train_data, adapter: TrainingAdapter, *,
                 force: bool = False) -> dict:
    """Train `adapter` on `train_data` per `spec.recipe`; resumable; returns the training record."""
    import torch

    from harness.trackers import MemoryTracker, summarize, synchronize

    out_dir = Path(out_dir)
    status = finetune_status(out_dir, spec)
    if status == "other" and not force:
        raise HarnessError(
            f"{out_dir}: holds a fine-tune with another configuration; pass --force to replace it "
            "or --checkpoints DIR to keep both"
        )
    if status == "other" or force:
        _clear(out_dir)
    if status == "done" and not force:
        return read_json(out_dir / "training.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "spec.json", spec.record())
    faults.point("finetune.after_spec")

    recipe = spec.recipe
    device = adapter.request.device
    _seed_everything(spec.seed)
    limit = recipe.limit
    n = min(len(train_data), int(limit)) if limit else len(train_data)
    if n == 0:
        raise HarnessError(f"{spec.dataset}: the train split is empty")
    batch_size, accum = int(recipe.batch_size), int(recipe.grad_accum)
    epochs = int(recipe.epochs)
    micro_per_epoch = (n + batch_size - 1) // batch_size
    total_steps = int(recipe.max_steps or (micro_per_epoch * epochs + accum - 1) // accum)
    if recipe.warmup_steps is not None:  # an absolute count wins over a ratio
        warmup = min(int(recipe.warmup_steps), total_steps)
    else:
        warmup = int(round(float(recipe.warmup_ratio or 0.0) * total_steps))

    trained = make_trainable(adapter, recipe)
    if recipe.gradient_checkpointing:
        adapter.enable_gradient_checkpointing()
    params = [p for p in trained.parameters() if p.requires_grad]
    trainable, total = count_parameters(adapter.model)
    optimizer = _optimizer(params, recipe, device)
    autocast = autocast_dtype(recipe, device, spec.dtype)
    # fp16 autocast needs loss scaling or small gradients underflow (the Trainer's fp16=True does the same).
    scaler = torch.amp.GradScaler(str(device).split(":")[0], enabled=autocast == "float16")

    def set_lr(step: int) -> float:
        factor = lr_factor(step, total_steps, warmup, recipe.schedule, float(recipe.lr_floor),
                           float(recipe.warmup_start))
        for group in optimizer.param_groups:
            group["lr"] = float(recipe.lr) * factor
        return float(recipe.lr) * factor

    ckpt = out_dir / "checkpoint" / "state.pt"
    history: list[dict] = []
    step, elapsed_before, resumed_at, shares = 0, 0.0, None, []
    if ckpt.exists():
        # On the CPU: the RNG states must stay CPU tensors; params and optimizer state move on loading.
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        names = [name for name, p in trained.named_parameters() if p.requires_grad]
        with torch.no_grad():
            for name, p in trained.named_parameters():
                if name in state["params"]:
                    p.copy_(state["params"][name])
        if set(names) != set(state["params"]):
            raise HarnessError(f"{ckpt}: checkpoint parameters do not match the model; use --force")
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, history, elapsed_before = state["step"], state["history"], state["elapsed_s"]
        resumed_at, shares = step, list(state["labelled_shares"])
        log(f"resuming fine-tune of {spec.model} at optimizer step {step}/{total_steps} from {ckpt}")

    save_every = int(recipe.save_every or max(1, total_steps // 4))
    max_length = int(recipe.max_length)
    max_norm = recipe.max_grad_norm  # null: no clipping (Moondream's notebooks clip nothing)
    max_norm = None if max_norm is None else float(max_norm)
    schedule = [i for epoch in range(epochs + 1) for i in _order(n, spec.seed, epoch)]
    progress = Progress(total_steps, f"fine-tune {spec.model}", unit="steps", done=step)
    adapter.model.train()
    samples_seen, tokens_seen = 0, 0
    start, started_at = time.perf_counter(), utc_now()
    step_ms: list[float] = []  # optimizer-step wall times, device synchronised (the first is warm-up)
    with MemoryTracker(device) as memory, _oom_is_one_line(spec, recipe, lambda: step):
        if resumed_at is not None:  # last, so the draws continue exactly where _save_checkpoint took them
            _set_rng_state(state["rng"], device)
        while step < total_steps:
            synchronize(device)
            step_start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            lr = set_lr(step)
            step_loss = 0.0
            for micro in range(accum):
                first = ((step * accum) + micro) * batch_size
                indices = [schedule[i % len(schedule)] for i in range(first, first + batch_size)]
                examples = [train_data[i] for i in indices]
                batch = adapter.training_batch(examples, spec.prompt_suffix, max_length)
                shares.append(labelled_share(batch["labels"]))
                batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
                faults.point("finetune.forward")
                with _autocast(device, autocast):
                    loss = adapter.training_loss(batch)
                if faults.point("finetune.loss") == "nan":
                    loss = loss * float("nan")
                if not torch.isfinite(loss):
                    raise _non_finite(spec, loss.item(), step, ckpt)
                scaler.scale(loss / accum).backward()
                faults.point("finetune.after_backward")
                step_loss += loss.item() / accum
                samples_seen += len(examples)
                tokens_seen += int(batch["attention_mask"].sum())
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            if max_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_norm)
            scaler.step(optimizer)
            scaler.update()
            faults.point("finetune.after_optimizer_step")
            synchronize(device)
            step_ms.append((time.perf_counter() - step_start) * 1000.0)
            step += 1
            history.append({"step": step, "loss": round(step_loss, 6), "lr": lr})
            progress.update(1, extra=f"loss {step_loss:.4f}")
            if step % save_every == 0 and step < total_steps:
                faults.point("finetune.before_checkpoint")
                _save_checkpoint(ckpt, trained, optimizer, step, history,
                                 elapsed_before + time.perf_counter() - start, scaler, shares, device)
                faults.point("finetune.after_checkpoint")
    wall = elapsed_before + time.perf_counter() - start
    adapter.model.eval()
    faults.point("finetune.before_adapter")
    # Into a temp folder swapped in whole: a kill mid-save never leaves a half adapter under adapter/.
    with atomic_dir(out_dir / "adapter", fault="finetune.adapter") as tmp:
        adapter.save_finetuned(tmp)
    faults.point("finetune.after_adapter")
    record = {
        "model": spec.model,
        "adapter_id": spec.adapter_id,
        "recipe_name": spec.recipe_name,
        "method": recipe.method,
        "trainable_params": trainable,
        "total_params": total,
        "steps": step,
        "epochs": epochs,
        "train_samples": n,
        "batch_size": batch_size,
        "grad_accum": accum,
        "loss_per_step": history,
        "first_loss": history[0]["loss"] if history else None,
        "final_loss": history[-1]["loss"] if history else None,
        "wall_time_s": round(wall, 3),
        "wall_time_note": "training loop only (model loading excluded); resumed runs add earlier time",
        "samples_per_s_this_session": round(samples_seen / (time.perf_counter() - start), 3) if samples_seen else None,
        "samples_per_s": round(step * accum * batch_size / wall, 3) if wall else None,
        "tokens_per_s_this_session": round(tokens_seen / (time.perf_counter() - start), 1) if tokens_seen else None,
        "labelled_share_mean": round(sum(shares) / len(shares), 4) if shares else None,
        "memory": memory.result,
        "step_time_ms": summarize(step_ms[1:] or step_ms),
        "environment": adapter.environment(),
        "device": device,
        "dtype": spec.dtype,
        "autocast": autocast,  # dtype of the autocast forward, None when the forward ran in the weights' dtypes
        "optimizer": {"name": recipe.optimizer, "class": type(optimizer).__name__,
                      "fused": bool(getattr(optimizer, "defaults", {}).get("fused"))},
        "max_grad_norm": max_norm,
        "recipe": recipe.to_dict(),
        "resumed_at_step": resumed_at,
        "skipped_samples": [row.record() for row in getattr(train_data, "skipped", ())],  # data/schema.py
    }
    record = TrainingRecord.from_dict({**record, "started_at": started_at, "finished_at": utc_now()},
                                      out_dir / "training.json").to_dict()
    faults.point("finetune.before_record")
    write_json_atomic(out_dir / "training.json", record, fault="finetune.record")
    faults.point("finetune.after_record")
    shutil.rmtree(out_dir / "checkpoint", ignore_errors=True)
    return record


def _non_finite(spec: FinetuneSpec, value: float, step: int, ckpt: Path) -> HarnessError:
    """Stop at the first NaN/inf loss: the step (1-based, as in loss_per_step) and the checkpoint kept."""
    kept = f"last good checkpoint kept: {ckpt}" if ckpt.exists() else "no checkpoint saved yet"
    return HarnessError(f"fine-tune of {spec.model}: loss became {value} at step {step + 1}, before its optimizer "
                        f"update; {kept}")


@contextlib.contextmanager
def _oom_is_one_line(spec: FinetuneSpec, recipe: FinetuneRecipe, current_step):
    """A CUDA OOM in the loop becomes one line naming the settings that shrink a step's memory."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise HarnessError(
            f"fine-tune of {spec.model}: CUDA out of memory at step {current_step() + 1} (batch_size "
            f"{recipe.batch_size}, grad_accum {recipe.grad_accum}, max_length {recipe.max_length}, "
            f"gradient_checkpointing {bool(recipe.gradient_checkpointing)}, method {recipe.method}): {OOM_ADVICE}"
        ) from None


def _rng_state(device: str) -> dict:
    """Every generator the loop draws from (dropout, augmentations), taken between two optimizer steps."""
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if str(device).startswith("cuda"):  # dropout on the GPU draws from the device's own generator
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: str) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and str(device).startswith("cuda"):
        torch.cuda.set_rng_state(state["cuda"], device)


def _save_checkpoint(path: Path, trained, optimizer, step: int, history: list, elapsed: float, scaler=None,
                     shares: list | None = None, device: str = "cpu") -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "params": {n: p.detach().cpu() for n, p in trained.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "step": step,
        "history": history,
        "elapsed_s": elapsed,
        "rng": _rng_state(device),
        "labelled_shares": list(shares or []),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
    }
    with atomic_file(path, fault="finetune.checkpoint") as fh:  # state.pt is the old step's or the new one's
        torch.save(state, fh)
