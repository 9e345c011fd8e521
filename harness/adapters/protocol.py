"""What the bench loop and the fine-tune recipe need from an adapter, as two separate protocols.

`InferenceAdapter` is all the engine (harness/engine/bench.py) calls; `TrainingAdapter` is all
harness/train/ calls. `ModelAdapter` (base.py) implements both; a benchmark-only family refuses the
training half with a reason (`finetune_refusal`). `generate` returns a `Generation` and reports each
decoding step through a plain `on_step` callable, so timing never depends on how a model generates:
HF `generate` gets it wrapped as a stopping criterion (`StepCallback`), other loops call it themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from harness.adapters.base import LoadRequest, Prepared
    from harness.specs import Decoding

__all__ = ["Generation", "InferenceAdapter", "OnStep", "StepCallback", "TrainingAdapter"]

# Called once per decoding step, right after the step's token is chosen (the first call ends the
# prefill); what it returns is kept, in order, in `Generation.step_times`.
OnStep = Callable[[], Any]


@dataclass(frozen=True)
class Generation:
    """What one `generate` call produced for a batch.

    tokens: the new token ids only (prompt removed), [batch, new_tokens], or None when the adapter's
      model produces text directly; then `texts` and `counts` (tokens generated per sample) are set.
    step_times: what `on_step` returned at each step (e.g. StepTimer marks); empty without `on_step`.
    """

    tokens: Any = None
    texts: tuple[str, ...] | None = None
    counts: tuple[int, ...] | None = None
    step_times: tuple = ()
    # Per-sample figures an engine measured itself (vLLM's request metrics: engine_ttft_ms, ...), or None.
    request_metrics: tuple | None = None

    def __post_init__(self):
        if self.tokens is None and (self.texts is None or self.counts is None):
            raise ValueError("Generation needs tokens, or texts and counts")

    @property
    def steps(self) -> int:
        """Decoding steps reported through `on_step` (0 when none was given or the model cannot report)."""
        return len(self.step_times)


class StepCallback:
    """An HF `generate` stopping criterion that never stops: calls `on_step` once per step.

    `generate` calls its criteria once per step after the step's token is chosen, beam search included
    (with batch x beams rows), which streamers do not. Without `on_step`, `criteria()` is None and
    `generate` runs exactly as it would without it.
    """

    def __init__(self, on_step: OnStep | None):
        self.on_step = on_step
        self.times: list = []
        self._never_stop = None

    def criteria(self) -> list | None:
        return None if self.on_step is None else [self]

    def __call__(self, input_ids, scores, **kwargs):
        self.times.append(self.on_step())  # first, so the stamp is not delayed by the allocation below
        rows = input_ids.shape[0]
        if self._never_stop is None or self._never_stop.shape[0] != rows or self._never_stop.device != input_ids.device:
            import torch

            self._never_stop = torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
        return self._never_stop


@runtime_checkable
class InferenceAdapter(Protocol):
    """Load a model and answer batches: what `harness bench` runs."""

    request: LoadRequest  # the engine reads `request.device` for its clocks

    def load(self) -> None: ...

    def prepare(self, examples: list, prompt_suffix: str) -> Prepared: ...

    def generate(self, prepared: Prepared, decoding: Decoding, on_step: OnStep | None = None) -> Generation: ...

    def decode(self, generation: Generation) -> tuple[list[str], list[int]]: ...

    def clean(self, text: str) -> str: ...

    def stop_token_ids(self) -> list[int]: ...

    def environment(self) -> dict: ...

    def merge_adapter(self) -> bool: ...


@runtime_checkable
class TrainingAdapter(Protocol):
    """Turn examples into labelled batches and losses, and save the result: what `harness finetune` runs."""

    request: LoadRequest
    model: Any  # the recipe moves it between train() and eval() and counts its parameters

    @classmethod
    def finetune_refusal(cls, card) -> str | None: ...  # card: the ModelCard the caller already holds

    def training_batch(self, examples: list, prompt_suffix: str, max_length: int) -> dict: ...

    def training_loss(self, batch: dict) -> Any: ...

    def trainable_module(self) -> Any: ...

    def enable_gradient_checkpointing(self) -> None: ...

    def default_lora_targets(self) -> list[str] | str: ...

    def save_finetuned(self, out_dir) -> None: ...

    def environment(self) -> dict: ...  # recorded in training.json
