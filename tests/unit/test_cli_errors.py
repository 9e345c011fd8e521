"""Tracebacks a new user hit (issue 11, part 2), each now one `error:` line with exit 2 before any work.

Every test goes through `harness.cli.main` and checks the one line, the exit code, and that nothing was
written where it should not be (no run or fine-tune folder, no page next to a folder).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_explain import make_run
from test_leaderboard_fixtures import write_results

import harness.runners.docker as docker
from harness.cli import main


def one_error(capsys) -> str:
    """The single stderr line of a refused command (stdout empty), without its 'error: ' prefix."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert captured.out == ""
    return lines[0][len("error: "):]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def no_gpu(monkeypatch):
    """This host has no NVIDIA driver, whatever machine the tests run on."""
    monkeypatch.setattr(docker, "host_has_nvidia_gpu", lambda: False)
    monkeypatch.setattr(docker, "host_gpu_ids", lambda: [])
    monkeypatch.delenv("DOCKER_HOST", raising=False)


# ------------------------------------------------------------------------------- leaderboard page path

def test_leaderboard_out_folder_gets_the_page_inside_it_and_nothing_in_its_parent(tmp_path, capsys):
    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1,))
    site = tmp_path / "site" / "board"
    site.mkdir(parents=True)
    code = main(["leaderboard", "--results", str(tmp_path / "r"), "--leaderboard", str(site), "--resamples", "50"])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == f"wrote {site / 'LEADERBOARD.md'}"
    assert "| alpha |" in (site / "LEADERBOARD.md").read_text()
    assert {"LEADERBOARD.md", "index.html", "leaderboard.json", "assets"} <= set(files_under(site))
    assert files_under(tmp_path / "site") == sorted(["board", *(f"board/{f}" for f in files_under(site))])


def test_leaderboard_under_a_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1,))
    (tmp_path / "notes.txt").write_text("mine")
    page = tmp_path / "notes.txt" / "x.md"
    code = main(["leaderboard", "--results", str(tmp_path / "r"), "--leaderboard", str(page)])
    assert code == 2
    assert one_error(capsys) == (f"leaderboard {tmp_path / 'notes.txt' / 'x.md'}: {tmp_path / 'notes.txt'} "
                                 "is a file, not a folder")
    assert files_under(tmp_path) == sorted(["notes.txt", "r", *(f"r/{f}" for f in files_under(tmp_path / "r"))])


def test_bench_leaderboard_folder_gets_the_page_inside_it(harness_env, capsys, monkeypatch):
    """bench renders through the same page path; the runs themselves are stubbed (already finished)."""
    import harness.orchestrate as orchestrate

    results = harness_env / "results"
    write_results(results, models=("alpha",), batch_sizes=(1,))
    monkeypatch.setattr(orchestrate, "execute_plan", lambda p, paths, options: [])
    board = harness_env / "board"
    board.mkdir()
    code = main(["bench", "--model", "smolvlm", "--variant", "base", "--preset", "smoke", "--results",
                 str(results), "--leaderboard", str(board)])
    assert code == 0, capsys.readouterr().err
    assert f"leaderboard written to {board / 'LEADERBOARD.md'}" in capsys.readouterr().err
    assert (board / "LEADERBOARD.md").is_file() and (board / "index.html").is_file()
    assert not (harness_env / "assets").exists() and not (harness_env / "index.html").exists()


# ------------------------------------------------------------------------------------ explain paths

def _store(folder: Path, run) -> Path:
    result, rows = run
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(result))
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_explain_takes_absolute_paths_and_names_a_missing_one(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_PRESET", raising=False)
    results = tmp_path / "results"  # exists: a missing absolute ref used to become an absolute glob
    a = _store(results / "m-base-bs1-aaaa", make_run("m-base-bs1-aaaa")).resolve()
    b = _store(tmp_path / "elsewhere" / "m-ft", make_run("m-ft", steps=25, variant="finetuned")).resolve()
    assert main(["explain", str(a), str(b / "result.json"), "--results", str(results), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["causes"][0]["name"] == "generated_tokens"
    missing = tmp_path.resolve() / "gone" / "run"
    assert main(["explain", str(missing), str(a), "--results", str(results)]) == 2
    assert one_error(capsys) == f"{missing}: no finished run there (no result.json)"
    assert main(["explain", str(a), str(missing / "result.json"), "--results", str(results)]) == 2
    assert one_error(capsys) == f"{missing / 'result.json'}: no finished run there (no result.json)"


# ------------------------------------------------------------------------------ score --per-sample

def test_score_per_sample_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    pred = tmp_path / "pred.jsonl"
    pred.write_text(json.dumps({"prediction": "4", "references": ["4"]}) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["score", str(pred), "--per-sample", str(out)]) == 2
    assert one_error(capsys) == f"--per-sample {out}: is a folder; give a file path such as {out / 'scored.jsonl'}"
    assert files_under(tmp_path) == ["out", "pred.jsonl"]
    assert main(["score", str(pred), "--per-sample", str(out / "scored.jsonl")]) == 0  # the suggested path works
    assert json.loads((out / "scored.jsonl").read_text())["relaxed_accuracy"] == 1.0


# --------------------------------------------------------------------------- --device cuda, no GPU

def test_bench_device_cuda_without_a_gpu_is_refused_before_any_folder(harness_env, capsys, no_gpu):
    code = main(["bench", "--model", "smolvlm", "--preset", "smoke", "--device", "cuda", "--no-leaderboard"])
    assert code == 2
    assert one_error(capsys) == "--device cuda: this machine has no NVIDIA GPU (no driver found); use --device cpu"
    assert files_under(harness_env / "results") == [] and files_under(harness_env / "checkpoints") == []


def test_finetune_device_cuda_without_a_gpu_is_refused_before_any_folder(harness_env, capsys, no_gpu):
    assert main(["finetune", "smolvlm", "--preset", "smoke", "--device", "cuda"]) == 2
    assert one_error(capsys) == "--device cuda: this machine has no NVIDIA GPU (no driver found); use --device cpu"
    assert files_under(harness_env / "checkpoints") == []


def test_cuda_can_still_be_planned_for_another_machine(harness_env, capsys, no_gpu):
    assert main(["bench", "--model", "smolvlm", "--preset", "smoke", "--device", "cuda", "--dry-run", "--json"]) == 0
    assert {r["device"] for r in json.loads(capsys.readouterr().out)["runs"]} == {"cuda"}


# ------------------------------------------------------------------------------- --split, --dataset

def test_unknown_split_of_the_preset_data_is_one_line_before_any_fine_tune(harness_env, capsys):
    assert main(["bench", "--model", "smolvlm", "--preset", "smoke", "--split", "foo"]) == 2
    assert one_error(capsys) == ("--split foo: the preset's synthetic data set has no split 'foo' "
                                 "(known: train, val, test)")
    assert files_under(harness_env / "results") == [] and files_under(harness_env / "checkpoints") == []


def _listing(folder: Path, splits: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": splits}))
    return folder


def test_unknown_split_of_a_local_data_set_names_the_known_ones(harness_env, capsys):
    data = _listing(harness_env / "charts", ["train", "test"])
    assert main(["bench", "--model", "smolvlm", "--variant", "base", "--preset", "smoke", "--dataset", str(data),
                 "--split", "validation"]) == 2
    assert one_error(capsys) == f"--split validation: {data} has no split 'validation' (known: train, test)"
    parquet = harness_env / "pq"
    (parquet / "data").mkdir(parents=True)
    for name in ("train-00000-of-00001.parquet", "test-00000-of-00001.parquet"):
        (parquet / "data" / name).write_bytes(b"")  # the layout alone names the splits: no file is read
    assert main(["bench", "--model", "smolvlm", "--variant", "base", "--preset", "smoke", "--dataset", str(parquet),
                 "--split", "val"]) == 2
    assert one_error(capsys) == f"--split val: {parquet} has no split 'val' (known: test, train)"
    assert files_under(harness_env / "results") == []


def test_a_data_set_without_a_train_split_cannot_be_fine_tuned(harness_env, capsys):
    from tests.bad_inputs import good_rows, save

    data = save(harness_env / "charts", good_rows(4))  # a real test split: the planner reads its rows
    capsys.readouterr()
    assert main(["bench", "--model", "smolvlm", "--preset", "smoke", "--dataset", str(data)]) == 2
    assert one_error(capsys) == f"fine-tune split 'train': {data} has no split 'train' (known: test)"
    assert main(["finetune", "smolvlm", "--preset", "smoke", "--dataset", str(data)]) == 2
    assert one_error(capsys) == f"fine-tune split 'train': {data} has no split 'train' (known: test)"
    assert files_under(harness_env / "checkpoints") == []


@pytest.mark.parametrize("form", ["absolute", "./", "../"])
def test_a_missing_dataset_path_is_one_line_for_every_model(harness_env, capsys, monkeypatch, form):
    monkeypatch.chdir(harness_env)
    dataset = {"absolute": str(harness_env / "nope"), "./": "./nope", "../": "../nope-harness-test"}[form]
    assert main(["bench", "--all", "--variant", "base", "--preset", "smoke", "--dataset", dataset]) == 2
    assert one_error(capsys) == f"--dataset {dataset}: no such directory"
    assert files_under(harness_env / "results") == []


def test_a_dataset_that_is_a_file_or_not_a_data_set_is_one_line(harness_env, capsys, monkeypatch):
    monkeypatch.chdir(harness_env)
    (harness_env / "charts.parquet").write_bytes(b"")
    (harness_env / "photos").mkdir()
    base = ["bench", "--model", "smolvlm", "--variant", "base", "--preset", "smoke", "--dataset"]
    assert main([*base, "charts.parquet"]) == 2
    assert one_error(capsys) == "--dataset charts.parquet: is a file; give the directory that holds the data set"
    assert main([*base, "photos"]) == 2  # a relative folder that exists is a local path, not a hub id
    assert one_error(capsys).startswith("--dataset photos: not a data set directory (expected dataset_dict.json")
    data = _listing(harness_env / "charts", ["test"])
    assert main([*base, str(data), "--dataset-revision", "abc123"]) == 2
    assert one_error(capsys) == (f"--dataset {data}: a revision ('abc123') only applies to hub ids, "
                                 "not local directories")
    assert files_under(harness_env / "results") == []


def test_a_hub_id_is_left_to_the_worker(harness_env, capsys):
    assert main(["bench", "--model", "smolvlm", "--variant", "base", "--preset", "smoke", "--dataset",
                 "someone/charts", "--split", "anything", "--dry-run", "--json"]) == 0
    assert {r["split"] for r in json.loads(capsys.readouterr().out)["runs"]} == {"anything"}


# ------------------------------------------------------------------------------- secrets in messages

def test_an_error_quoting_the_token_prints_it_masked(harness_env, capsys, monkeypatch):
    token = "hf_PLANTEDtoken1234567890abcdef"
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.chdir(harness_env)
    assert main(["bench", "--model", "smolvlm", "--variant", "base", "--preset", "smoke",
                 "--dataset", f"./{token}"]) == 2
    assert one_error(capsys) == "--dataset ./***: no such directory"


def test_third_party_output_goes_to_the_log_file_masked_and_harness_lines_to_both(tmp_path, capsys, monkeypatch):
    import logging
    import sys
    import warnings

    from harness.progress import log
    from harness.runlog import run_log

    token = "hf_PLANTEDtoken1234567890abcdef"
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.delenv("HARNESS_VERBOSE", raising=False)
    handler = logging.StreamHandler(sys.stderr)  # a library's handler, made before the run (at import)
    library = logging.getLogger("harness-test-library")
    library.addHandler(handler)
    try:
        with run_log(tmp_path / "run" / "log.txt"), warnings.catch_warnings():
            warnings.simplefilter("always")
            # pytest records warnings itself (catch_warnings(record=True)); print them as Python does by default
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: (
                file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))
            print("Loading weights: 100%|####| 43/43 [00:00<00:00, 9894.94it/s]", file=sys.stderr)
            warnings.warn(f"deprecated, token {token}", FutureWarning, stacklevel=1)
            library.warning("a library warning")
            log(f"bench m/base bs8: done ({token})")
    finally:
        library.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == "bench m/base bs8: done (***)\n"
    text = (tmp_path / "run" / "log.txt").read_text()
    for line in ("Loading weights", "FutureWarning: deprecated, token ***", "a library warning",
                 "bench m/base bs8: done (***)"):
        assert line in text
    assert token not in text
    assert handler.stream is sys.stderr  # restored


def test_verbose_sends_third_party_output_to_the_terminal_too(tmp_path, capsys, monkeypatch):
    import sys

    from harness.runlog import run_log

    monkeypatch.setenv("HARNESS_VERBOSE", "1")
    with run_log(tmp_path / "log.txt"):
        print("Loading weights: 100%", file=sys.stderr)
    assert capsys.readouterr().err == "Loading weights: 100%\n"
    assert (tmp_path / "log.txt").read_text() == "Loading weights: 100%\n"
