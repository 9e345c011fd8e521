"""Hostile model output cannot break the Markdown tables or inject HTML into either page."""

from __future__ import annotations

import re

from test_leaderboard_fixtures import HOSTILE, write_results

from harness.leaderboard import build_page
from harness.leaderboard.doc import Code, Table
from harness.leaderboard.load import collect
from harness.leaderboard.markdown import escape_md, render_blocks
from harness.leaderboard.stats import StatsOptions


def _cells(line: str) -> list[str]:
    """Split a GFM table row the way GitHub does: a pipe preceded by an escaping backslash is text."""
    cells, current, i = [], "", 0
    body = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            current += body[i : i + 2]
            i += 2
            continue
        if body[i] == "|":
            cells.append(current)
            current = ""
        else:
            current += body[i]
        i += 1
    return cells + [current]


def test_escape_md_neutralises_every_hostile_string():
    for text in [*HOSTILE, "\\|", "a\\\\|b", "x\x00y\u2028z"]:
        out = escape_md(text)
        assert "\n" not in out and "\r" not in out and "\u2028" not in out
        assert "<" not in out and ">" not in out
        assert not re.search(r"(?<!\\)(\\\\)*\|", out.replace("\\\\", "")), out  # every pipe escaped
        assert "`" not in out.replace("\\`", "")


def test_table_with_hostile_cells_keeps_its_columns():
    rows = [[h, h.upper(), Code(h)] for h in HOSTILE]
    md = render_blocks([Table(["a", "b", "c"], rows)])
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(HOSTILE)  # header, rule, one line per row: newlines did not split rows
    for line in lines:
        assert len(_cells(line)) == 3, line
    assert "<script>" not in md and "<img" not in md
    assert "⏎" in md  # newlines are shown, not executed


def test_whole_page_with_hostile_predictions(tmp_path):
    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1,), hostile=True)
    page = build_page(collect([tmp_path / "r"]), "", StatsOptions(n_resamples=50))
    md, html = page.markdown, page.html
    assert "<script" not in md and "<img" not in md and "javascript:" not in md.replace("javascript:alert", "")
    # every line of every Markdown table has as many cells as its header
    tables = re.findall(r"((?:^\|.*\n)+)", md, flags=re.M)
    assert tables
    for table in tables:
        lines = table.strip().splitlines()
        widths = {len(_cells(line)) for line in lines}
        assert len(widths) == 1, lines
    examples = md.split("## Example predictions", 1)[1]
    assert "✗ " in examples and "\\|" in examples and "&lt;script&gt;" in examples and "⏎" in examples
    # HTML: the only scripts are the page's own sorting script
    assert html.count("<script") == 1
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "onerror=alert" not in html.replace("&lt;img src=x onerror=alert(1)&gt;", "")
