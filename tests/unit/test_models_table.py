"""`harness models --json` / `--markdown`: what scripts read, and the README's model table (it cannot go stale)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.registry import list_models

REPO = Path(__file__).resolve().parents[2]
START, END = "<!-- models-table -->", "<!-- /models-table -->"


def _out(capsys, *argv: str) -> str:
    assert main(["models", *argv]) == 0
    return capsys.readouterr().out


def _rows(markdown: str) -> dict[str, list[str]]:
    """`name` -> the cells of its row (a `\\|` inside a cell is not a separator)."""
    rows = {}
    for line in markdown.splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = cells
    return rows


def test_readme_model_table_is_the_generated_one(capsys):
    readme = (REPO / "README.md").read_text()
    assert START in readme and END in readme, f"README.md has no {START} ... {END} block"
    table = readme.split(START, 1)[1].split(END, 1)[0]
    assert table.strip() == _out(capsys, "--markdown").strip(), (
        "README.md's model table is stale: paste `harness models --markdown` between the markers")


def test_markdown_lists_every_card_with_its_published_scores_and_support(capsys):
    rows = _rows(_out(capsys, "--markdown"))
    cards = list_models()
    assert sorted(rows) == sorted(card.name for card in cards)
    for card in cards:
        row = rows[card.name]
        assert card.hub_id in row[1]
        tune = card.supports.get("finetune")
        if tune == []:
            assert "benchmark only" in row[2]
        else:
            assert all(method in row[2] for method in tune or [])
        for ref in card.published:
            assert f"{ref['value']}" in row[5] and ref["source"] in row[5], (card.name, ref)
        if not card.published:
            assert row[5] == "–"


def test_markdown_escapes_a_pipe_in_a_card(capsys, tmp_path, monkeypatch):
    for folder in ("models", "benchmarks"):
        (tmp_path / folder).mkdir()
    for path in (REPO / "benchmarks").glob("*.yaml"):
        (tmp_path / "benchmarks" / path.name).write_text(path.read_text())
    text = (REPO / "models" / "qwen2vl.yaml").read_text()
    text = re.sub(r"(?m)^  batching: .*$", "  batching: left | right", text)
    (tmp_path / "models" / "qwen2vl.yaml").write_text(text)
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path))
    (row,) = _rows(_out(capsys, "--markdown")).values()
    assert len(row) == 6 and row[3] == "left \\| right"


def test_json_has_what_the_scripts_read(capsys):
    records = json.loads(_out(capsys, "--json"))
    by_name = {r["name"]: r for r in records}
    for card in list_models():
        record = by_name[card.name]
        assert (record["family"], record["image"], record["pins"]) == (card.family, card.image, card.environment)
        assert record["supports"] == card.supports and record["published"] == card.published
    assert len(records) == len(list_models())


def test_json_and_markdown_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["models", "--json", "--markdown"])
    assert exited.value.code == 2 and "not allowed with" in capsys.readouterr().err
