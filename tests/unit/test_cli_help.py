"""A command line that explains itself (issue 11, part 9): --version, -h on every subcommand, runs made
with a preset found without --preset, and the results table `harness bench` ends with.

Every test goes through `harness.cli.main` (or the parser it builds).
"""

from __future__ import annotations

import argparse
import json

import pytest
from test_docker_invocation import config  # noqa: F401 (a fixture)
from test_explain import make_run
from test_leaderboard_fixtures import write_results

import harness
import harness.orchestrate as orchestrate
from harness.cli import build_parser, main
from harness.runners.base import FINISHED, Outcome


def _subparsers(parser: argparse.ArgumentParser, name: str = "harness"):
    """(command line, parser) for the parser and every subparser below it."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _subparsers(sub, f"{name} {sub_name}")


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """A fresh folder as the working directory, with no preset or results folder from the environment."""
    for key in ("HARNESS_PRESET", "HARNESS_RESULTS_DIR", "HARNESS_CHECKPOINTS_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ----------------------------------------------------------------------------------------- --version, -h

def test_version_prints_the_package_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"harness {harness.__version__}"


def test_every_flag_of_every_subcommand_has_help():
    walked = list(_subparsers(build_parser()))
    assert len(walked) > 10  # models, data synth/build, finetune, bench, ..., check batch-invariance
    missing = [f"{name} {action.option_strings[0]}" for name, parser in walked for action in parser._actions
               if action.option_strings and not (action.help or "").strip()]
    assert missing == []


def test_help_shows_defaults_on_every_subcommand(capsys):
    for name, parser in _subparsers(build_parser()):
        text = " ".join(parser.format_help().split())  # undo the line wrapping
        for action in parser._actions:  # a flag with a real default shows it (unless its help says it)
            shown = action.default is not None and action.default is not False and action.default != argparse.SUPPRESS
            if action.option_strings and shown:
                assert f"default: {action.default}" in text or "default" in action.help, (name, action.dest)
    bench = " ".join(dict(_subparsers(build_parser()))["harness bench"].format_help().split())
    assert "(default: 0)" in bench and "(default: chartqa)" in bench and "(default: None)" not in bench
    with pytest.raises(SystemExit) as exit_:
        main(["data", "synth", "-h"])
    assert exit_.value.code == 0 and "samples in the train split (default: 1200)" in capsys.readouterr().out


# ------------------------------------------------------------------- runs made with a preset, found without it

def test_leaderboard_finds_the_smoke_presets_runs_without_preset(no_env, capsys):
    write_results(no_env / "results" / "smoke", models=("alpha",), batch_sizes=(1,), preset="smoke")
    assert main(["leaderboard", "--resamples", "20"]) == 0
    captured = capsys.readouterr()
    page = no_env / "leaderboard" / "smoke" / "LEADERBOARD.md"  # the preset's page, not the default one
    assert captured.out.strip() == f"wrote {page.relative_to(no_env)}"
    assert captured.err.strip().splitlines() == [
        "no runs in results: using results/smoke, the results folder of preset smoke "
        "(--preset or --results to choose another)"]
    assert "| alpha |" in page.read_text() and not (no_env / "leaderboard" / "LEADERBOARD.md").exists()


def test_leaderboard_with_no_runs_anywhere_keeps_the_page_and_exits_2(no_env, capsys):
    page = no_env / "leaderboard" / "LEADERBOARD.md"
    page.parent.mkdir()
    page.write_text("my real leaderboard")
    (no_env / "results").mkdir()  # an empty default folder, and nothing in results/smoke
    assert main(["leaderboard"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"error: no finished runs in results nor in any preset's results folder; {page.relative_to(no_env)} "
        "not written"]
    assert page.read_text() == "my real leaderboard" and sorted(p.name for p in page.parent.iterdir()) == [
        "LEADERBOARD.md"]


def test_leaderboard_of_an_empty_results_folder_keeps_the_page(no_env, capsys):
    (no_env / "empty").mkdir()
    page = no_env / "page.md"
    page.write_text("mine")
    assert main(["leaderboard", "--results", "empty", "--leaderboard", str(page)]) == 2
    assert capsys.readouterr().err.strip() == f"error: no finished runs in empty; {page} not written"
    assert page.read_text() == "mine"


def test_explain_finds_run_ids_in_the_smoke_presets_folder_without_preset(no_env, capsys):
    for run_id, kwargs in (("m-base-bs1-aaaa", {}), ("m-finetuned-bs1-bbbb", {"steps": 25, "variant": "finetuned"})):
        result, rows = make_run(run_id, **kwargs)
        folder = no_env / "results" / "smoke" / run_id
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))
        (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["explain", "m-base", "m-finetuned", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["causes"][0]["name"] == "generated_tokens"
    assert captured.err.strip().splitlines() == [
        "no runs in results: using results/smoke, the results folder of preset smoke "
        "(--preset or --results to choose another)"]
    # With runs in the default folder, that folder is used and nothing is said.
    for folder in list((no_env / "results" / "smoke").iterdir()):
        folder.rename(no_env / "results" / folder.name)
    assert main(["explain", "m-base", "m-finetuned", "--json"]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------- bench's results table

def test_bench_ends_with_a_results_table_on_stdout(no_env, capsys, monkeypatch):
    write_results(no_env / "done", models=("alpha",), batch_sizes=(1,))
    folders = sorted((no_env / "done").iterdir())

    def finished_runs(p, paths, options):  # the runs "finished" (the table reads only their result.json)
        return [Outcome(f.name, "run", FINISHED, "finished", f) for f in folders]

    monkeypatch.setattr(orchestrate, "execute_plan", finished_runs)
    code = main(["bench", "--preset", "smoke", "--model", "smolvlm", "--variant", "base",
                 "--results", str(no_env / "r"), "--no-leaderboard"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "model", "variant", "batch", "n (samples)", "relaxed acc (%)", "ROUGE-L (0-1)", "p50 latency (ms)",
        "samples/s"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    base = json.loads((no_env / "done" / "alpha-base-bs1" / "result.json").read_text())
    assert rows == [
        ["alpha", "base", "1", "24", "33.3", f"{base['metrics']['rougeL']:.3f}",
         f"{base['latency']['latency_ms']['p50']:.1f}", "12.50"],
        ["alpha", "finetuned", "1", "24", "66.7", rows[1][5], rows[1][6], f"{1000 / 95:.2f}"],
    ]
    assert "runs: 2 finished" in captured.err and "| alpha" not in captured.err  # the log stays on stderr


# ------------------------------------------------------------------- the same flag means the same thing

def test_leaderboard_out_is_a_deprecated_alias_of_leaderboard(tmp_path, capsys):
    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1,))
    page = tmp_path / "board" / "LEADERBOARD.md"
    assert main(["leaderboard", "--results", str(tmp_path / "r"), "--out", str(page), "--resamples", "20"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "warning: --out is deprecated, use --leaderboard (same meaning)"
    assert page.is_file() and captured.out.strip() == f"wrote {page}"
    assert main(["leaderboard", "--results", str(tmp_path / "r"), "--leaderboard", str(page), "--resamples",
                 "20"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["bench", "finetune", "execute", "check batch-invariance"])
def test_threads_and_verbose_are_on_every_command_that_runs_work(command):
    parser = dict(_subparsers(build_parser()))[f"harness {command}"]
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {"--threads", "--verbose"} <= flags


def test_threads_is_checked_before_any_work_and_not_part_of_the_run_id(no_env, capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_THREADS", raising=False)
    assert main(["bench", "--model", "smolvlm", "--preset", "smoke", "--threads", "0", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == "error: --threads 0: a positive number of CPU threads"
    argv = ["bench", "--model", "smolvlm", "--preset", "smoke", "--dry-run"]
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert main([*argv, "--threads", "3"]) == 0
    assert capsys.readouterr().out == plain  # same fine-tune and run ids
    assert __import__("os").environ["HARNESS_THREADS"] == "3"  # what the worker and the docker runner read


def test_threads_reach_the_worker_in_process(monkeypatch):
    torch = pytest.importorskip("torch")
    from harness.runlog import apply_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("HARNESS_THREADS", "1")
        assert apply_threads(None) == 1 and torch.get_num_threads() == 1
        assert apply_threads(2) == 2 and torch.get_num_threads() == 2  # the argument wins over the env
        monkeypatch.delenv("HARNESS_THREADS")
        assert apply_threads(None) is None and torch.get_num_threads() == 2  # unset: left as it is
    finally:
        torch.set_num_threads(before)


def test_threads_reach_the_container(monkeypatch, config, capsys):  # noqa: F811 (the fixture)
    from test_docker_invocation import _container_spec, _fake_worker, _FakeClient, _planned

    from harness.runners import docker as docker_mod
    from harness.runners.docker_runner import DockerRunner

    client = _FakeClient(_fake_worker(None))
    monkeypatch.setattr(docker_mod, "_client", lambda: client)
    record = next(r for r in _planned(capsys, config) if r.get("variant") == "base")
    _, job, _, _ = _container_spec(config, record)
    monkeypatch.setenv("HARNESS_THREADS", "3")
    assert DockerRunner().run_one(job).status == FINISHED
    monkeypatch.delenv("HARNESS_THREADS")
    assert DockerRunner().run_one(job).status == FINISHED
    (_, threaded), (_, plain) = client.created
    assert {k: threaded["environment"].get(k) for k in ("HARNESS_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")} \
        == dict.fromkeys(("HARNESS_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "3")
    assert not {"HARNESS_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"} & set(plain["environment"])
    assert threaded["command"] == plain["command"]  # the same spec folder, the same worker


def test_explain_results_is_repeatable(no_env, capsys):
    for where, run_id in (("one", "m-base-bs1-aaaa"), ("two", "m-finetuned-bs1-bbbb")):
        result, rows = make_run(run_id, **({"steps": 25, "variant": "finetuned"} if where == "two" else {}))
        folder = no_env / where / run_id
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))
        (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["explain", "m-base", "m-finetuned", "--results", "one", "--results", "two", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["causes"][0]["name"] == "generated_tokens"


def test_doctor_takes_comma_separated_models_like_bench(capsys):
    spaced = main(["doctor", "smolvlm", "qwen2vl"])
    out_spaced = capsys.readouterr().out
    assert main(["doctor", "smolvlm,qwen2vl"]) == spaced
    assert capsys.readouterr().out == out_spaced and "qwen2vl" in out_spaced
