"""Moondream2 2025 (`HfMoondream.query`) on its remote-code twin: the settings the 2025-06 code requires and the
prompt it really builds (github:vikhyat/moondream moondream/torch/moondream.py at 44146f1 / 78e9101).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.specs import Decoding
from tests.helpers import synthetic_examples, twin_adapter

SUFFIX = "\nAnswer the question using a single word or phrase."


@pytest.fixture(scope="module")
def examples(harness_cache):
    return synthetic_examples(harness_cache, "moondream2025-unit-data", 3, seed=7)


@pytest.fixture(scope="module")
def md25(harness_cache):
    return twin_adapter("moondream2025", Path(harness_cache))


@pytest.fixture
def prefills(md25, monkeypatch):
    """(pos, prompt token ids) of every `_prefill_prompt` call: what the model really reads after the image."""
    cls = type(md25.model.model)
    original, seen = cls._prefill_prompt, []

    def spy(self, prompt_tokens, pos, *args, **kwargs):
        seen.append((pos, prompt_tokens[0].tolist()))
        return original(self, prompt_tokens, pos, *args, **kwargs)

    monkeypatch.setattr(cls, "_prefill_prompt", spy)
    return seen


def test_settings_without_variant_fail_as_in_the_release(md25, examples):
    ex = examples[0]
    with pytest.raises(KeyError, match="variant"):  # encode_image(image, settings) reads settings["variant"]
        md25.model.query(ex.image, ex.query, settings={"max_tokens": 2, "temperature": 0})
    assert md25.model.query(ex.image, ex.query, settings={"max_tokens": 2, "temperature": 0, "variant": None})


def test_the_adapter_queries_with_the_settings_the_release_reads(md25, examples):
    from harness.adapters.moondream2025 import Moondream2025Adapter

    for decoding in (Decoding(max_new_tokens=3), Decoding(max_new_tokens=3, do_sample=True, temperature=0.7)):
        settings = Moondream2025Adapter.settings(decoding)
        assert "variant" in settings and settings["variant"] is None
    texts, counts = md25.decode(md25.generate(md25.prepare(examples[:2], SUFFIX), Decoding(max_new_tokens=3)))
    assert len(texts) == 2 and all(1 <= c <= 3 for c in counts)


def test_prompt_is_built_and_counted_as_query_builds_it(md25, examples, prefills):
    prepared = md25.prepare(examples, SUFFIX)
    md25.generate(prepared, Decoding(max_new_tokens=2))
    assert len(prefills) == len(examples)
    template = md25.model.model.config.tokenizer.templates["query"]
    for ex, (pos, tokens), counted in zip(examples, prefills, prepared.prompt_tokens):
        question = md25.tokenizer.encode(ex.query + SUFFIX).ids
        # The release appends the suffix a second time when not reasoning.
        assert tokens == template["prefix"] + question + template["suffix"] + template["suffix"]
        assert pos == 1 + md25._image_positions()  # BOS + image positions, encoded first
        assert counted == pos + len(tokens)
