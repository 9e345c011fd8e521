"""Moondream2 adapters on their remote-code twins: the 2024 API (bench + full fine-tune) and the 2025 one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError
from harness.specs import Decoding, FinetuneRecipe
from harness.train.masking import IGNORE_INDEX, labelled_share
from tests.helpers import plan_runs, synthetic_examples, twin_adapter

SUFFIX = "\nAnswer the question using a single word or phrase."


@pytest.fixture(scope="module")
def examples(harness_cache):
    return synthetic_examples(harness_cache, "moondream-unit-data", 6, seed=6)


@pytest.fixture(scope="module")
def md(harness_cache):

    return twin_adapter("moondream", Path(harness_cache))


@pytest.fixture(scope="module")
def md25(harness_cache):
    return twin_adapter("moondream2025", Path(harness_cache))


# --- 2024 family --------------------------------------------------------------------------------
def test_twin_loads_through_remote_code_with_the_2024_api(md):
    model = md.model
    assert type(model).__module__.startswith("transformers_modules.")  # trust_remote_code path, not harness code
    assert type(model).__name__ == "Moondream"
    assert type(model.text_model).__name__ == "PhiForCausalLM"
    for name in ("encode_image", "input_embeds", "answer_question", "batch_answer"):
        assert callable(getattr(model, name)), name
    assert callable(model.vision_encoder.preprocess)
    tok = md.tokenizer
    assert tok.bos_token == tok.eos_token == "<|endoftext|>"


def test_prompt_embeddings_are_the_official_ones(md, examples):
    """[BOS, image, question] exactly as the remote code's own `input_embeds` builds them."""
    from harness.adapters.moondream import PROMPT

    ex = examples[0]
    prepared = md.prepare([ex], SUFFIX)
    with torch.no_grad():
        image = md.model.encode_image(prepared.inputs["pixels"])
        ours, mask = md._embed_prompts(image, prepared.inputs["question_ids"])
        official = md.model.input_embeds(PROMPT.format(question=ex.query + SUFFIX), image, md.tokenizer)
    assert torch.equal(ours, official) and mask.all()
    assert prepared.prompt_tokens[0] == official.shape[1]
    assert prepared.image_tokens[0] == image.shape[1]


def test_batched_generation_matches_batch_answer_and_single_runs(md, examples):
    decoding = Decoding(max_new_tokens=6)
    batch = examples[:4]
    prepared = md.prepare(batch, SUFFIX)
    assert len(set(prepared.prompt_tokens)) > 1  # rows of different length: left padding is exercised
    texts, counts = md.decode(md.generate(prepared, decoding))
    ours = [md.clean(t) for t in texts]
    official = md.model.batch_answer([ex.image for ex in batch], [ex.query + SUFFIX for ex in batch], md.tokenizer,
                                     max_new_tokens=6, do_sample=False, num_beams=1)
    assert ours == official
    for ex, text in zip(batch, texts):
        single, _ = md.decode(md.generate(md.prepare([ex], SUFFIX), decoding))
        assert single[0] == text
    assert all(1 <= c <= 6 for c in counts)


def test_only_answer_and_eos_are_labelled(md, examples):
    batch = md.training_batch(examples, SUFFIX, max_length=2048)
    n_image = md.image_token_count(batch["pixels"])
    labels, ids, mask = batch["labels"], batch["input_ids"], batch["attention_mask"]
    # labels and mask cover [BOS, image, text]; input_ids hold the text only (the image is spliced in).
    assert labels.shape == mask.shape == (len(examples), n_image + ids.shape[1])
    answer_tokens = 0
    for row, ex in enumerate(examples):
        question = md.question_ids(ex, SUFFIX)
        start = 1 + n_image + len(question)
        assert labels[row, :start].eq(IGNORE_INDEX).all()  # BOS, image and question positions
        labelled = labels[row][labels[row] != IGNORE_INDEX].tolist()
        assert md.tokenizer.decode(labelled) == f" {ex.answer}<|endoftext|>"
        assert labels[row, start:start + len(labelled)].tolist() == labelled  # contiguous, right after the prompt
        # Each label sits where its token is fed: position p of [BOS, image, text] is text token p - n_image.
        assert ids[row, start - n_image:start - n_image + len(labelled)].tolist() == labelled
        assert mask[row].sum() == start + len(labelled)
        answer_tokens += len(labelled)
    share = labelled_share(labels)
    assert share == pytest.approx(answer_tokens / labels.numel())
    assert 0 < share < 0.2


def test_training_trains_the_text_model_only(md, examples):
    from harness.train.lora import make_trainable

    trained = make_trainable(md, FinetuneRecipe(method="full"))
    assert trained is md.model.text_model
    batch = md.training_batch(examples[:2], SUFFIX, max_length=2048)
    md.model.zero_grad(set_to_none=True)
    loss = md.training_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in md.model.vision_encoder.parameters())  # frozen, under no_grad
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in md.model.text_model.parameters())
    md.model.zero_grad(set_to_none=True)
    for p in md.model.parameters():
        p.requires_grad_(False)


def test_too_long_fails_instead_of_truncating(md, examples):
    with pytest.raises(HarnessError, match="exceed max_length 20"):
        md.training_batch(examples[:1], SUFFIX, max_length=20)


def test_saved_finetune_reloads_through_remote_code(md, examples, harness_cache, tmp_path):

    out = tmp_path / "adapter"
    md.save_finetuned(out)
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    for name in ("moondream.py", "vision_encoder.py", "configuration_moondream.py"):
        assert (out / name).exists(), name
    (planned,) = plan_runs(["moondream"], ["finetuned"], preset="smoke")
    assert planned.adapter_kind == "full"  # the planner knows a full fine-tune leaves complete weights
    again = twin_adapter("moondream", Path(harness_cache), adapter_path=str(out), adapter_kind=planned.adapter_kind)
    decoding = Decoding(max_new_tokens=4)
    ours = md.decode(md.generate(md.prepare(examples[:2], SUFFIX), decoding))
    assert ours == again.decode(again.generate(again.prepare(examples[:2], SUFFIX), decoding))


def test_real_remote_code_needs_its_pinned_environment(monkeypatch):
    """On transformers 5 the 2024 remote code cannot generate: refuse before downloading anything."""
    from harness import doctor
    from harness.adapters.base import LoadRequest
    from harness.adapters.moondream import Moondream2Adapter
    from harness.registry import load_model

    monkeypatch.setattr(doctor, "_installed", lambda package: {"transformers": "5.24.0"}.get(package, "99"))
    card = load_model("moondream")
    adapter = Moondream2Adapter(card, LoadRequest(source=card.hub_id, revision=card.revision, dtype="float16",
                                                  device="cpu"))
    with pytest.raises(HarnessError, match=r"transformers 5\.24\.0 installed, needs >=4\.44,<4\.49"):
        adapter.load()


def _remote_phi(md):
    import sys

    return sys.modules[type(md.model.text_model).__module__]


def _caches():
    """A DynamicCache as transformers 4.49 hands it to the model (seen_tokens, no get_max_length) and as
    4.48 does (get_max_length too, None for a dynamic cache), each holding `seen` positions."""
    from transformers.cache_utils import DynamicCache

    class Cache448(DynamicCache):
        @property
        def seen_tokens(self):
            return self.get_seq_length()

        def get_max_length(self):
            return None

    class Cache449(Cache448):
        def __getattribute__(self, name):  # 4.49 removed it (5.x's Cache has one again)
            if name == "get_max_length":
                raise AttributeError(f"'DynamicCache' object has no attribute '{name}'")
            return super().__getattribute__(name)

    def filled(cls, seen):
        cache = cls()
        if seen:
            cache.update(torch.zeros(2, 1, seen, 4), torch.zeros(2, 1, seen, 4), 0)
        return cache

    return (lambda seen: filled(Cache449, seen)), (lambda seen: filled(Cache448, seen))


def test_2024_step_inputs_need_the_cache_methods_the_release_calls(md):
    """The twin's 2024 generation interface fails on a 4.49 cache, as the release does, and works on 4.48's."""
    step = _remote_phi(md).prepare_inputs_2024
    cache_449, cache_448 = _caches()
    ids = torch.tensor([[7], [9]])  # generated so far (generate with inputs_embeds keeps new tokens only)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])  # 5 prompt positions + 1 new, row 0 left-padded
    with pytest.raises(AttributeError, match="get_max_length"):
        step(md.model.text_model, ids, past_key_values=cache_449(5), attention_mask=mask)
    out = step(md.model.text_model, ids, past_key_values=cache_448(5), attention_mask=mask)
    assert out["input_ids"].tolist() == [[7], [9]] and "inputs_embeds" not in out
    assert out["position_ids"].tolist() == [[3], [5]]  # padding does not count
    embeds = torch.zeros(2, 5, 4)
    first = step(md.model.text_model, ids[:, :0], past_key_values=cache_448(0), attention_mask=mask[:, :5],
                 inputs_embeds=embeds)
    assert first["inputs_embeds"] is embeds and "input_ids" not in first
    assert first["position_ids"].tolist() == [[1, 1, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_2024_interface_is_used_where_the_release_runs_and_recorded(md):
    import transformers
    from packaging.version import Version

    phi = _remote_phi(md)
    own = type(md.model.text_model).prepare_inputs_for_generation is phi.prepare_inputs_2024
    assert own == (Version(transformers.__version__) < Version("4.50"))  # the release generates below 4.50 only
    recorded = md.environment()["generation_interface"]
    assert recorded.startswith("remote:" if own else "transformers:"), recorded


def test_answer_question_refuses_max_new_tokens_like_the_release(md, examples):
    """The release fixes max_new_tokens=512 and forwards **kwargs: passing it again is a TypeError."""
    model, tok = md.model, md.tokenizer
    image_embeds = model.encode_image(examples[0].image)
    assert isinstance(model.answer_question(image_embeds, examples[0].query, tok), str)
    with pytest.raises(TypeError, match="max_new_tokens"):
        model.answer_question(image_embeds, examples[0].query, tok, max_new_tokens=3)


def test_saved_finetune_drops_the_hub_prefix_from_auto_map(md, tmp_path, monkeypatch):
    """Loaded by hub id, transformers 4.x prefixes auto_map with the repo and save_pretrained keeps it (5.x
    rewrites it from the class, so the 4.x save is emulated): kept, a reload would take the code from that
    repo's main (2025) and ignore the .py files beside the weights."""
    import json

    from harness.adapters.twins.moondream import prefix_auto_map

    real_save = md.model.save_pretrained

    def save_as_4x(out_dir, **kwargs):
        real_save(out_dir, **kwargs)
        prefix_auto_map(out_dir, "vikhyatk/moondream2")

    monkeypatch.setattr(md.model, "save_pretrained", save_as_4x)
    md.save_finetuned(tmp_path / "ft")
    saved = json.loads((tmp_path / "ft" / "config.json").read_text())["auto_map"]
    assert saved == {"AutoConfig": "configuration_moondream.MoondreamConfig",
                     "AutoModelForCausalLM": "moondream.Moondream"}


# --- 2025 family --------------------------------------------------------------------------------
def test_2025_twin_queries_greedily_with_explicit_settings(md25, examples):
    from harness.adapters.moondream2025 import Moondream2025Adapter

    assert type(md25.model).__name__ == "HfMoondream" and hasattr(md25.model.model, "query")
    decoding = Decoding(max_new_tokens=5)
    assert Moondream2025Adapter.settings(decoding) == {"max_tokens": 5, "temperature": 0, "variant": None}
    first = md25.decode(md25.generate(md25.prepare(examples[:2], SUFFIX), decoding))
    torch.manual_seed(123)  # greedy: no randomness left to change the answer
    again = md25.decode(md25.generate(md25.prepare(examples[:2], SUFFIX), decoding))
    assert first == again
    # The default settings of the remote `query` sample (temperature 0.5): the adapter never relies on them.
    ex = examples[0]
    torch.manual_seed(0)
    settings = {"max_tokens": 5, "variant": None}
    default = {md25.model.model.query(ex.image, ex.query + SUFFIX, settings=settings)["answer"] for _ in range(6)}
    assert len(default) > 1


def test_2025_counts_and_step_timer_follow_the_remote_steps(md25, examples):
    from harness.trackers import StepTimer

    timer = StepTimer("cpu")
    timer.begin()
    out = md25.generate(md25.prepare(examples[:1], SUFFIX), Decoding(max_new_tokens=5), on_step=timer.stamp)
    timer.finish()
    texts, counts = md25.decode(out)
    assert 1 <= counts[0] <= 5 and timer.steps in (counts[0], counts[0] + 1)
    assert timer.prefill_ms is not None


def test_2025_refuses_what_query_cannot_do(md25):
    from harness.adapters.moondream2025 import Moondream2025Adapter

    with pytest.raises(HarnessError, match="num_beams=4"):
        Moondream2025Adapter.settings(Decoding(num_beams=4))


def test_2025_finetune_is_refused_with_the_reason(harness_env, capsys):
    from harness.cli import main

    assert main(["finetune", "moondream2025", "--preset", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "prefix-LM attention" in err and "730" in err and "Traceback" not in err


def test_base_and_finetuned_decode_alike():
    specs = plan_runs(["moondream"], ["base", "finetuned"], preset="smoke")
    assert specs[0].decoding == specs[1].decoding and specs[0].decoding["num_beams"] == 1
    # real run (its tag and branch are unpinned remote code): the study variant decodes alike too
    study = plan_runs(["moondream"], ["base", "study"], allow_unpinned_code=True)
    assert study[0].decoding == study[1].decoding
    assert study[1].adapter_id == "krowiemlekommm/PJN_moondream"


@pytest.mark.parametrize("model", ["moondream", "moondream2025"])
def test_an_attention_override_is_refused_not_silently_ignored(harness_cache, model):
    from harness.adapters import open_adapter
    from harness.errors import HarnessError

    (spec,) = plan_runs([model], preset="smoke", sets=[(("attn_implementation",), "sdpa")])
    with pytest.raises(HarnessError, match="attn_implementation=sdpa is not supported"):
        open_adapter(spec.model_facts, spec.model_id, None, dtype="float32", device="cpu", cache=Path(harness_cache))
