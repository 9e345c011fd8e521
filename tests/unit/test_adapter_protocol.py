"""The adapter interface: `generate` returns a Generation and reports every decoding step through `on_step`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.adapters import ADAPTERS, Generation, InferenceAdapter, LoadRequest, TrainingAdapter
from harness.adapters.protocol import StepCallback
from harness.registry import list_models
from harness.specs import Decoding
from tests.helpers import batches, models_where, synthetic_examples, twin_adapter

SUFFIX = "\nAnswer the question using a single word or phrase."


@pytest.fixture(scope="module")
def examples(harness_cache):
    return synthetic_examples(harness_cache, "protocol-unit-data", 3, seed=7)


def _counter():
    calls: list[int] = []

    def on_step():
        calls.append(len(calls))
        return len(calls)  # what generate must keep, in order, as step_times

    return calls, on_step


# One twin per adapter class (the code under test); moondream2025 has no batched generate (next test).
@pytest.mark.parametrize("model", models_where(lambda card: card.twin and batches(card), one_per="adapter"))
def test_hf_generate_calls_on_step_once_per_generated_step(model, harness_cache, examples):
    adapter = twin_adapter(model, Path(harness_cache))
    prepared = adapter.prepare(examples[:2], SUFFIX)
    decoding = Decoding(max_new_tokens=6)
    calls, on_step = _counter()
    generation = adapter.generate(prepared, decoding, on_step=on_step)
    assert isinstance(generation, Generation) and generation.tokens.shape[0] == 2
    # One step per generated column: the batch's steps (its longest answer), prefill included.
    assert 1 <= len(calls) == generation.tokens.shape[1] == generation.steps
    assert generation.step_times == tuple(range(1, len(calls) + 1))
    plain = adapter.generate(prepared, decoding)  # no callback: generate as without one, nothing reported
    assert plain.steps == 0 and torch.equal(plain.tokens, generation.tokens)
    assert adapter.decode(plain) == adapter.decode(generation)


def test_moondream2025_calls_on_step_from_each_remote_step(harness_cache, examples, monkeypatch):
    md25 = twin_adapter("moondream2025", Path(harness_cache))
    ran: list[str] = []
    inner = type(md25.model.model)
    def counting(name):
        original = getattr(inner, name)

        def step(self, *args, **kwargs):
            ran.append(name)
            return original(self, *args, **kwargs)
        return step

    for name in ("_prefill_prompt", "_decode_one_tok"):  # counted at class level, below the adapter's wrapping
        monkeypatch.setattr(inner, name, counting(name))
    calls, on_step = _counter()
    generation = md25.generate(md25.prepare(examples[:1], SUFFIX), Decoding(max_new_tokens=5), on_step=on_step)
    assert isinstance(generation, Generation) and generation.tokens is None
    assert ran[0] == "_prefill_prompt" and len(calls) == len(ran) == generation.steps
    texts, counts = md25.decode(generation)
    assert texts == list(generation.texts) and 1 <= counts[0] <= 5
    # Two samples are two queries in a row: no per-step timing, the answers all the same.
    ran.clear()
    calls.clear()
    batch = md25.generate(md25.prepare(examples[:2], SUFFIX), Decoding(max_new_tokens=5), on_step=on_step)
    assert ran and not calls and batch.steps == 0 and len(md25.decode(batch)[0]) == 2


def test_step_callback_never_stops_and_keeps_what_on_step_returns():
    callback = StepCallback(lambda: "mark")
    assert callback.criteria() == [callback] and StepCallback(None).criteria() is None
    done = callback(torch.zeros((3, 2), dtype=torch.long), None)
    assert done.shape == (3,) and done.dtype == torch.bool and not done.any()
    assert callback.times == ["mark"]
    with pytest.raises(ValueError):
        Generation(step_times=(1.0,))  # neither tokens nor texts


@pytest.mark.parametrize("name", sorted({card.adapter for card in list_models()}))
def test_registered_adapters_implement_both_protocols(name):
    cls = ADAPTERS.get(name)
    adapter = cls(None, LoadRequest(source="unused", revision=None, dtype="float32", device="cpu"))
    assert isinstance(adapter, InferenceAdapter) and isinstance(adapter, TrainingAdapter)
    # Every protocol member resolves to an implementation, never to the protocol's own `...` stub.
    for protocol in (InferenceAdapter, TrainingAdapter):
        for member, value in vars(protocol).items():
            if not member.startswith("_") and (callable(value) or isinstance(value, classmethod)):
                assert getattr(cls, member).__qualname__.split(".")[0] != protocol.__name__, member
