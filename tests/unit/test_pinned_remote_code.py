"""Remote code runs only at commits: a tag or branch with trust_remote_code is refused in one line unless
--allow-unpinned-code, which the spec then records; `harness pin` resolves the card's revisions (hub API
mocked here: no network)."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.registry import load_model
from harness.specs import spec_from_record
from tests.helpers import plan_ft, plan_runs

SHA = "0123456789abcdef0123456789abcdef01234567"
STUDY_SHA = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def config(harness_env, config_copy):
    return config_copy


def _error_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_the_real_moondream_card_is_refused_in_one_line(harness_env, capsys):
    assert load_model("moondream").revision == "2024-07-23"  # a tag: else this tests nothing
    assert main(["bench", "--model", "moondream", "--dry-run"]) == 2
    (line,) = _error_lines(capsys)
    assert "moondream.yaml: revision '2024-07-23' is not a commit hash" in line
    assert "harness pin moondream" in line and "--allow-unpinned-code" in line


def test_finetune_is_refused_before_any_work(harness_env, capsys):
    assert main(["finetune", "moondream"]) == 2
    (line,) = _error_lines(capsys)
    assert "revision '2024-07-23'" in line and "--allow-unpinned-code" in line
    assert not (harness_env / "checkpoints").exists()


def test_allowed_unpinned_code_is_planned_and_recorded(harness_env, capsys):
    assert main(["bench", "--model", "moondream", "--dry-run", "--json", "--allow-unpinned-code"]) == 0
    assert "unpinned_remote_code" in capsys.readouterr().out
    runs = plan_runs(["moondream"], ["base", "finetuned"], allow_unpinned_code=True)
    ft = plan_ft("moondream", allow_unpinned_code=True)
    for spec in (*runs, ft):
        assert spec.model_facts.unpinned_remote_code is True
        assert spec.to_dict()["model_facts"]["unpinned_remote_code"] is True  # result.json's spec
        assert spec_from_record(spec.record()) == spec  # and it survives spec.json


@pytest.mark.parametrize("variants", [["base"], ["base", "study"]])
def test_a_pinned_model_without_remote_code_is_unaffected(harness_env, variants):
    plain = plan_runs(["qwen2vl"], variants)
    assert [s.run_id for s in plain] == [s.run_id for s in plan_runs(["qwen2vl"], variants, allow_unpinned_code=True)]
    assert all("unpinned_remote_code" not in s.to_dict()["model_facts"] for s in plain)  # ids as before


def test_twins_run_no_remote_code(harness_env):
    runs = plan_runs(["moondream"], ["base", "finetuned"], preset="smoke")
    assert runs and not any(s.model_facts.unpinned_remote_code for s in runs)


def test_the_study_checkpoint_at_a_branch_is_refused_too(harness_env, config, capsys):
    assert main(["bench", "--model", "moondream", "--variant", "study", "--dry-run"]) == 2
    assert len(_error_lines(capsys)) == 1
    card = config / "models" / "moondream.yaml"
    card.write_text(card.read_text().replace('revision: "2024-07-23"', f"revision: {SHA}"))
    assert plan_runs(["moondream"], ["base"])[0].model_facts.unpinned_remote_code is False  # base: pinned now
    assert main(["bench", "--model", "moondream", "--variant", "study", "--dry-run"]) == 2
    (line,) = _error_lines(capsys)
    assert "study.revision 'main' is not a commit hash" in line  # complete remote-code weights at a branch
    (study,) = plan_runs(["moondream"], ["study"], allow_unpinned_code=True)
    assert study.model_facts.unpinned_remote_code is True and study.adapter_kind == "full"


@pytest.fixture
def hub(monkeypatch):
    """HfApi.model_info answering from a table; records the token each call was made with."""
    from types import SimpleNamespace

    from huggingface_hub import HfApi

    answers = {("vikhyatk/moondream2", "2024-07-23"): SHA, ("krowiemlekommm/PJN_moondream", "main"): STUDY_SHA}
    calls = []

    def model_info(self, repo_id, revision=None, **kwargs):
        calls.append((repo_id, revision, self.token))
        return SimpleNamespace(sha=answers[(repo_id, revision)])

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_plantedSecretToken123")
    monkeypatch.setattr(HfApi, "model_info", model_info)
    return calls


def test_pin_prints_the_commits_and_changes_nothing_without_write(config, hub, capsys):
    before = (config / "models" / "moondream.yaml").read_text()
    assert main(["pin", "moondream"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"moondream: revision 2024-07-23 -> {SHA}",
                                f"moondream: study.revision main -> {STUDY_SHA}"]
    assert (config / "models" / "moondream.yaml").read_text() == before
    assert {token for *_, token in hub} == {"hf_plantedSecretToken123"}  # the token reaches the API ...
    assert "hf_planted" not in out + err  # ... and is never printed


def test_pin_write_edits_the_revision_lines_only(config, hub, capsys):
    path = config / "models" / "moondream.yaml"
    before = path.read_text().splitlines()
    assert main(["pin", "moondream", "--write"]) == 0
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert [b for _, b in changed] == [f"revision: {SHA}  # 2024-07-23 as resolved by `harness pin`",
                                       f"  revision: {STUDY_SHA}  # main as resolved by `harness pin`"]
    assert any("NOT A COMMIT HASH" in line for line in after)  # comments kept (a YAML dump drops them)
    card = load_model("moondream")
    assert (card.revision, card.study["revision"]) == (SHA, STUDY_SHA)
    runs = plan_runs(["moondream"], ["base", "study"])  # pinned: planned without the flag
    assert not any(s.model_facts.unpinned_remote_code for s in runs)
    capsys.readouterr()
    assert main(["pin", "moondream"]) == 0  # nothing left to resolve
    assert "already a commit" in capsys.readouterr().out and len(hub) == 2


def test_pin_offline_is_one_line(config, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["pin", "moondream"]) == 2
    (line,) = _error_lines(capsys)
    assert "needs hub access" in line


def test_pin_without_a_connection_is_one_line(config, hub, monkeypatch, capsys):
    import requests
    from huggingface_hub import HfApi

    def unreachable(self, *args, **kwargs):
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    assert main(["pin", "moondream"]) == 2
    (line,) = _error_lines(capsys)
    assert "needs hub access" in line and "ConnectionError" in line



def test_bench_all_skips_unpinned_remote_code_with_one_line_and_plans_the_rest(harness_env, capsys):
    from harness.cli import main

    assert main(["bench", "--all", "--dry-run"]) == 0
    captured = capsys.readouterr()
    skips = [line for line in captured.err.splitlines() if line.startswith("moondream:") and "skipped" in line]
    assert len(skips) == 2 and all("harness pin moondream" in line for line in skips)  # base and finetuned
    assert "qwen2vl-base" in captured.out and "moondream-base" not in captured.out
