"""Numbers must not move with batch size: `harness check batch-invariance` on every twin, base and fine-tuned.

Measured on fp32 CPU (README, Measurement): batch 1 and batch 8 give the same generated tokens on every
twin, left padding included (every batch of the synthetic test split mixes prompt lengths), so the
tolerance is 0.
"""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.registry import list_models
from tests.helpers import can_finetune

pytestmark = pytest.mark.integration

LIMIT = 16  # two batches of 8
FT_STEPS = 12  # a short fine-tune: the adapter weights are trained (non-zero LoRA B), at a few seconds' cost
# Every twin, by the issue 11 spec: each new card adds one case (its twin, a short fine-tune, 4 bench runs).
CASES = [(card.name, ("base", "finetuned") if can_finetune(card) else ("base",))
         for card in list_models() if card.twin]


def test_every_twin_with_a_fine_tune_is_covered():
    assert [m for m, variants in CASES if "finetuned" in variants]  # the registry still has tunable twins
    assert {m for m, _ in CASES} == {card.name for card in list_models() if card.twin}


@pytest.mark.parametrize(("model", "variants"), CASES, ids=[m for m, _ in CASES])
def test_predictions_identical_at_batch_1_and_8(model, variants, harness_env, capsys):
    code = main(["check", "batch-invariance", model, "--variant", ",".join(variants), "--preset", "smoke",
                 "--limit", str(LIMIT), "--batch-size", "8", "--set", f"finetune.max_steps={FT_STEPS}"])
    out = capsys.readouterr().out
    assert code == 0, out
    blocks = out.split(f"\n{model}/")
    assert len(blocks) == len(variants), out
    for variant in variants:
        block = next(b for b in blocks if b.removeprefix(f"{model}/").startswith(f"{variant}: batch size 1 "))
        assert f"identical predictions: {LIMIT}/{LIMIT} samples (share 1.0000)" in block, out
        assert f"(raw output and generated-token count): {LIMIT}/{LIMIT} samples" in block, out
    if "finetuned" in variants:  # the fine-tuned runs read a real, finished fine-tune
        trained = list((harness_env / "checkpoints").glob(f"{model}-ft-*/training.json"))
        assert len(trained) == 1 and json.loads(trained[0].read_text())["steps"] == FT_STEPS
