"""A gated hub model (`gated: true`, Gemma 3): without HF_TOKEN the planner refuses real weights in one line
before any download; with it the token reaches the hub calls; twins need none; the hub's own refusal
(a token without an accepted licence) is one line too. No network: hub calls are mocked."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.registry import load_model
from tests.helpers import plan_ft, plan_runs

LINE = ("google/gemma-3-4b-it is gated: set HF_TOKEN "
        "(accept the licence at https://huggingface.co/google/gemma-3-4b-it)")


@pytest.fixture
def no_token(harness_env, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return harness_env


def test_the_gemma3_card_is_gated():
    assert load_model("gemma3").gated is True  # else the tests below test nothing


def test_no_token_is_one_line_before_any_work(no_token, capsys):
    assert main(["bench", "--model", "gemma3", "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert LINE in line
    assert main(["finetune", "gemma3"]) == 2
    assert LINE in capsys.readouterr().err
    assert not (no_token / "checkpoints").exists()
    with pytest.raises(HarnessError, match="is gated: set HF_TOKEN"):
        plan_ft("gemma3")


def test_all_models_skips_the_gated_one_and_plans_the_rest(no_token):
    from harness.plan import BenchRequest, plan

    p = plan(BenchRequest(models=(), variants=("base",)))
    assert any(LINE in reason and reason.startswith("gemma3:") for reason in p.skipped)
    planned = {run.model for run in p.runs}
    assert "gemma3" not in planned and "qwen25vl" in planned


def test_with_a_token_it_plans_and_the_spec_holds_no_token(harness_env, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    (run,) = plan_runs(["gemma3"], ["base"])
    assert run.model_id == "google/gemma-3-4b-it"
    assert "hf_secret_value" not in str(run.record())


def test_twins_need_no_token(no_token):
    (run,) = plan_runs(["gemma3"], ["base"], preset="smoke")
    assert run.model_id.startswith("twin:gemma3")


def _adapter(monkeypatch, error):
    """A ChatAdapter for gemma3 whose hub download raises `error` (what transformers raises for a gated repo)."""
    import transformers

    from harness.adapters.base import LoadRequest
    from harness.adapters.chat import ChatAdapter
    from harness.plan import facts_for

    seen = {}

    def refuse(source, **kwargs):
        seen.update(kwargs)
        raise error

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", refuse)
    req = LoadRequest(source="google/gemma-3-4b-it", revision="0" * 40, dtype="float32", device="cpu")
    return ChatAdapter(facts_for("gemma3"), req), seen


def test_the_token_reaches_the_hub_and_a_refusal_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    gated = OSError("You are trying to access a gated repo.\nMake sure to have access to it at "
                    "https://huggingface.co/google/gemma-3-4b-it.\n401 Client Error.")
    adapter, seen = _adapter(monkeypatch, gated)
    with pytest.raises(HarnessError) as err:
        adapter.load()
    assert seen["token"] == "hf_secret_value"  # LoadRequest.token -> from_pretrained(token=...)
    assert str(err.value) == ("google/gemma-3-4b-it is gated: HF_TOKEN is set but its account has no access "
                              "(accept the licence at https://huggingface.co/google/gemma-3-4b-it)")
    assert "\n" not in str(err.value)


def test_other_load_errors_pass_through(monkeypatch):
    adapter, _ = _adapter(monkeypatch, OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        adapter.load()
