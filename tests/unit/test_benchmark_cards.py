"""Benchmark cards: column mapping, label shape, subsets, prompt variants, local layouts, `harness data check`.

No model: data sets are written by the tests (image folders with metadata, rows files, the synthetic
stand-in) and read through the loader exactly as a run reads them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from harness.cli import main
from harness.data.cards import apply_format
from harness.data.load import load_split
from harness.errors import HarnessError
from harness.metrics.scoring import subset_metrics
from tests.helpers import plan_ft, plan_runs

CARD = """\
name: mycharts
version: "1"
dataset: ./mycharts
split: test
columns: {image: picture, query: question, label: answer}
label_shape: string
subsets: {column: source, names: {h: human, m: machine}}
prompts:
  short: "\\nOne word."
  long: "\\nAnswer the question using a single word or phrase."
default_prompt: short
metrics: [relaxed_accuracy, exact_match]
"""


def _image(path: Path, size=(60, 40), colour=(200, 30, 30)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path.name


def write_image_folder(root: Path, splits=("train", "test"), n: int = 4, fmt: str = "csv",
                       image_key: str = "file_name") -> Path:
    """`root/<split>/metadata.<fmt>` rows naming their images by a relative path, columns named differently."""
    for split in splits:
        rows = []
        for i in range(n):
            name = _image(root / split / "img" / f"c{i}.png", size=(60 + 10 * i, 40), colour=(20 * i, 90, 40))
            rows.append({image_key: f"img/{name}", "question": f"What is bar {i}?", "answer": str(i),
                         "source": "h" if i % 2 == 0 else "m"})
        _write_rows(root / split / f"metadata.{fmt}", rows)
    return root


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def card(config_copy) -> Path:
    (config_copy / "benchmarks" / "mycharts.yaml").write_text(CARD)
    return config_copy


def _fmt():
    from harness.data.cards import data_format
    from harness.registry import load_benchmark

    return data_format(load_benchmark("mycharts"))


# ------------------------------------------------------------------------------------ column mapping


def test_image_folder_is_read_through_the_cards_column_mapping(card, tmp_path):
    data = write_image_folder(tmp_path / "mycharts")
    split = load_split(str(data), "test", data_format=_fmt())
    assert [ex.query for ex in split] == [f"What is bar {i}?" for i in range(4)]
    assert [ex.labels for ex in split] == [(str(i),) for i in range(4)]  # a string label became a list
    assert [ex.meta["source"] for ex in split] == ["h", "m", "h", "m"]
    assert split[2].image.size == (80, 40)  # the image file the row names, read on use


def test_missing_mapped_column_names_the_cards_column(card, tmp_path):
    data = tmp_path / "mycharts"
    _image(data / "test" / "a.png")
    _write_rows(data / "test" / "metadata.csv", [{"file_name": "a.png", "prompt": "q?", "answer": "1",
                                                 "source": "h"}])
    with pytest.raises(HarnessError) as err:
        load_split(str(data), "test", data_format=_fmt())
    assert "column 'question' (card mycharts: query)" in str(err.value)
    assert "\n" not in str(err.value)


def test_list_card_given_string_labels_is_an_error_naming_the_column(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"img": [b"x"], "question": ["q"], "answer": ["1"]})
    fmt = {"card": "lists", "columns": {"image": "img", "query": "question", "label": "answer"},
           "label_shape": "list", "subsets": {}}
    with pytest.raises(HarnessError, match=r"column 'answer' \(card lists: label\) holds strings.*label_shape"):
        apply_format(ds, fmt, "here")
    with pytest.raises(HarnessError, match=r"column 'answer' \(card lists: label\) must be a string"):
        listed = datasets.Dataset.from_dict({"img": [b"x"], "question": ["q"], "answer": [["1"]]})
        apply_format(listed, {**fmt, "label_shape": "string"}, "here")


def test_unknown_column_role_and_label_shape_are_one_line_card_errors(config_copy):
    from harness.registry import load_benchmark

    path = config_copy / "benchmarks" / "bad.yaml"
    path.write_text(CARD.replace("name: mycharts", "name: bad").replace("label: answer}", "answer: answer}"))
    with pytest.raises(HarnessError, match=r"bad.yaml: columns: unknown key 'answer'"):
        load_benchmark("bad")
    path.write_text(CARD.replace("name: mycharts", "name: bad").replace("label_shape: string", "label_shape: str"))
    with pytest.raises(HarnessError, match=r"label_shape must be one of list, string"):
        load_benchmark("bad")


# ------------------------------------------------------------------------------------ local layouts


def test_rows_file_with_paths_relative_to_it(card, tmp_path):
    _image(tmp_path / "pics" / "a.png", size=(30, 20))
    _image(tmp_path / "pics" / "b.png", size=(50, 20))
    rows = tmp_path / "rows.jsonl"
    _write_rows(rows, [{"picture": "pics/a.png", "question": "A?", "answer": "1", "source": "h"},
                       {"picture": "pics/b.png", "question": "B?", "answer": "2", "source": "m"}])
    split = load_split(str(rows), "test", data_format=_fmt())  # the card's image column holds the paths
    assert [ex.image.size for ex in split] == [(30, 20), (50, 20)]


def test_top_level_metadata_is_the_asked_split_and_subfolders_are_splits(tmp_path):
    one = tmp_path / "one"
    _image(one / "a.png")
    _write_rows(one / "metadata.jsonl", [{"file_name": "a.png", "query": "Q?", "label": ["7"]}])
    assert load_split(str(one), "val")[0].labels == ("7",)  # canonical columns: no card mapping needed
    both = write_image_folder(tmp_path / "both", splits=("train", "test"))
    with pytest.raises(HarnessError, match=r"no split 'val'; available: test, train"):
        load_split(str(both), "val")


def test_planner_checks_the_split_of_an_image_folder_before_any_work(card, tmp_path):
    data = write_image_folder(tmp_path / "mycharts", splits=("train", "test"))
    with pytest.raises(HarnessError, match=r"--split val: .* has no split 'val' \(known: test, train\)"):
        plan_runs(["qwen2vl"], preset="smoke", benchmark="mycharts", dataset=str(data), split="val")
    (spec,) = plan_runs(["qwen2vl"], preset="smoke", benchmark="mycharts", dataset=str(data))
    assert spec.data_format["columns"] == {"image": "picture", "query": "question", "label": "answer"}


def test_missing_image_file_names_the_row(card, tmp_path):
    data = write_image_folder(tmp_path / "mycharts", splits=("test",))
    (data / "test" / "img" / "c1.png").unlink()
    from harness.data.check import check_data

    _, (report,) = check_data(str(data), benchmark="mycharts")
    assert report.problem_count == 1
    assert "metadata.csv: line 3" in report.problems[0] and "c1.png" in report.problems[0]


# ------------------------------------------------------------------------------------ harness data check


def test_data_check_reports_splits_rows_sizes_and_subsets(card, tmp_path, capsys):
    data = write_image_folder(tmp_path / "mycharts")
    assert main(["data", "check", str(data), "--benchmark", "mycharts"]) == 0
    out = capsys.readouterr().out
    assert "split test: 4 rows; images 60-90 x 40-40 px ; subsets: human 2, machine 2" in out
    assert "split train: 4 rows" in out
    assert out.strip().endswith("ok: no problems found")


def test_data_check_exits_1_with_the_first_problems(card, tmp_path, capsys):
    data = write_image_folder(tmp_path / "mycharts", splits=("test",), n=3)
    rows = list(csv.DictReader(open(data / "test" / "metadata.csv")))
    rows[1]["question"] = " "
    (data / "test" / "img" / "c2.png").write_bytes(b"not a png")
    _write_rows(data / "test" / "metadata.csv", rows)
    assert main(["data", "check", str(data), "--benchmark", "mycharts", "--split", "test"]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s), first 2:" in out
    assert "line 3" in out and "'query'" in out and "line 4" in out and "'image'" in out


def test_data_check_without_the_mapping_names_the_missing_columns(card, tmp_path, capsys):
    data = write_image_folder(tmp_path / "mycharts", splits=("test",))
    assert main(["data", "check", str(data)]) == 1  # the default card expects query / label
    assert "missing columns 'query', 'label'" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ prompt variants


def test_prompt_variant_is_part_of_the_runs_identity(harness_env):
    (default,) = plan_runs(["qwen2vl"], preset="smoke")
    (vlm,) = plan_runs(["qwen2vl"], preset="smoke", prompt="vlmevalkit")
    (lmms,) = plan_runs(["qwen2vl"], preset="smoke", prompt="lmms_eval")
    assert default.prompt_name == vlm.prompt_name == "vlmevalkit"
    assert default.run_id == vlm.run_id  # the default named explicitly is the same run
    assert lmms.prompt_name == "lmms_eval" and lmms.prompt_suffix == "\nAnswer the question with a single word."
    assert lmms.config_hash != vlm.config_hash and lmms.run_id != vlm.run_id
    assert plan_ft("qwen2vl", preset="smoke", prompt="lmms_eval").prompt_suffix == lmms.prompt_suffix
    assert lmms.record()["prompt_name"] == "lmms_eval"  # visible in spec.json and result["spec"]


def test_unknown_prompt_lists_the_cards_variants(harness_env, capsys):
    with pytest.raises(HarnessError, match=r"--prompt nope: benchmark chartqa has no such prompt "
                                           r"\(known: vlmevalkit, lmms_eval\)"):
        plan_runs(["qwen2vl"], preset="smoke", prompt="nope")
    assert main(["bench", "--model", "qwen2vl", "--preset", "smoke", "--prompt", "nope", "--dry-run"]) != 0
    assert "known: vlmevalkit, lmms_eval" in capsys.readouterr().err


def test_prompt_suffix_card_without_variants_still_plans(card):
    (spec,) = plan_runs(["qwen2vl"], preset="smoke", benchmark="chartqa")
    assert spec.prompt_suffix == "\nAnswer the question using a single word or phrase."  # today's suffix


# ------------------------------------------------------------------------------------ subsets


def test_synthetic_stand_in_of_full_chartqa_has_both_subsets(harness_env, tmp_path):
    from harness.data import write_synthetic

    (spec,) = plan_runs(["qwen2vl"], preset="smoke", benchmark="chartqa_full")
    assert spec.synthetic["format"]["subsets"]["column"] == "human_or_machine"
    out = write_synthetic(tmp_path / "full", sizes={"test": 12}, seed=1, data_format=spec.synthetic["format"])
    split = load_split(str(out), "test", data_format=spec.data_format)
    values = [ex.meta["human_or_machine"] for ex in split]
    assert set(values) == {0, 1}
    by_chart: dict[str, set] = {}
    for ex, v in zip(split, values):
        by_chart.setdefault(ex.image_id, set()).add(v)
    assert all(len(v) == 1 for v in by_chart.values())  # a chart's questions are in one subset


def test_synthetic_stand_in_is_written_in_the_cards_format(card, tmp_path):
    from harness.data import write_synthetic

    out = write_synthetic(tmp_path / "syn", sizes={"test": 6}, seed=2, data_format=_fmt())
    import datasets

    ds = datasets.load_from_disk(str(out))["test"]
    assert {"picture", "question", "answer", "source"} <= set(ds.column_names)
    assert isinstance(ds[0]["answer"], str)
    assert set(ds["source"]) == {"h", "m"}
    assert len(load_split(str(out), "test", data_format=_fmt())) == 6


def test_subset_metrics_score_each_subset_as_the_whole_set_is_scored():
    from harness.engine.bench import _aggregate

    fmt = {"subsets": {"column": "hm", "names": {"1": "augmented", "0": "human"}}}
    samples = [{"prediction": p, "references": [r], "meta": {"hm": hm}}
               for p, r, hm in [("1", "1", 0), ("2", "3", 0), ("5", "5", 1), ("x", "x", 1), ("9", "9", 1)]]
    got = subset_metrics(samples, fmt, lambda rows: _aggregate(rows, ["relaxed_accuracy"]))
    assert list(got) == ["augmented", "human"]  # the card's order
    assert got["augmented"] == {"n": 3, "relaxed_accuracy": 1.0}
    assert got["human"] == {"n": 2, "relaxed_accuracy": 0.5}
    assert subset_metrics(samples, None, lambda rows: {}) is None
