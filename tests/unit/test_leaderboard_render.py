"""The whole page from constructed result folders: every section, assets, determinism, merging, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_leaderboard_fixtures import make_samples, write_results, write_run

from harness.cli import main
from harness.errors import HarnessError
from harness.leaderboard import write_leaderboard
from harness.registry import load_preset
from harness.specs import SCHEMA_VERSION

SECTIONS = ["## What was run", "## Results", "## Base vs fine-tuned", "## Accuracy by question type",
            "## Speed and memory", "## Why slower", "## Fine-tune records", "## Example predictions"]
PLOTS = ["accuracy_vs_latency.png", "peak_memory.png", "loss_curves.png", "accuracy_by_question_type.png"]


def _render(tmp_path, dirs, **kw) -> tuple[str, Path]:
    out = write_leaderboard(dirs, tmp_path / "lb" / "LEADERBOARD.md", n_resamples=200, **kw)
    return out.read_text(), out.parent


def test_page_has_every_part_and_relative_links(tmp_path):
    write_results(tmp_path / "r")
    md, folder = _render(tmp_path, [tmp_path / "r"])
    positions = [md.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for picture in PLOTS:
        assert f"](assets/{picture})" in md
        assert (folder / "assets" / picture).read_bytes().startswith(b"\x89PNG")
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert links and all(not link.startswith(("/", "http")) for link in links)
    for link in links:
        assert (folder / link).exists(), link
    assert any(link.startswith("assets/thumbs/") for link in links)
    for part in ("synthetic:test", "split `test`", "24 questions on 8 charts", "CPU (2 cores)", "Harness 0.1.0",
                 "2025-01-02", "200 resamples, seed 0"):
        assert part in md, part
    assert (folder / "index.html").exists() and (folder / "leaderboard.json").exists()


def test_main_table_sorted_by_accuracy_with_intervals_and_smallest_batch(tmp_path):
    write_results(tmp_path / "r", batch_sizes=(4, 1))
    md, _ = _render(tmp_path, [tmp_path / "r"])
    results = md.split("## Results", 1)[1].split("##", 1)[0]
    rows = [line for line in results.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 4  # one row per model and variant, not per batch size
    assert all("| batch 1 |" in row for row in rows)
    accuracies = [float(re.search(r"\| ([\d.]+) \(([\d.]+), ([\d.]+)\) \|", row).group(1)) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[0] == pytest.approx(66.7)


def test_pairs_speed_and_finetune_tables(tmp_path):
    write_results(tmp_path / "r")
    md, _ = _render(tmp_path, [tmp_path / "r"])
    pairs = md.split("## Base vs fine-tuned", 1)[1].split("##", 1)[0]
    assert "| relaxed acc | 33.3 | 66.7 | +33.3 (" in pairs and "McNemar (exact) | 8 / 0 |" in pairs
    assert "paired bootstrap, corpus" in pairs
    speed = md.split("## Speed and memory", 1)[1].split("##", 1)[0]
    assert speed.count("| alpha | base |") == 2 and "★ 4" in speed  # every batch size, best one named
    assert "`rss_peak_mb`" in speed
    tune = md.split("## Fine-tune records", 1)[1].split("##", 1)[0]
    assert "| lora | 1,000 (2.00% of 50,000) | 20 (2 epochs × batch 4 × accum 1) |" in tune
    assert "5.000 → 1.000" in tune


def test_identical_variants_show_zero_delta_and_p_one(tmp_path):
    same = make_samples()
    write_run(tmp_path / "r", "alpha", "base", same)
    write_run(tmp_path / "r", "alpha", "finetuned", same)
    md, _ = _render(tmp_path, [tmp_path / "r"])
    pairs = md.split("## Base vs fine-tuned", 1)[1].split("##", 1)[0]
    rows = [line for line in pairs.splitlines() if line.startswith("| alpha")]
    assert len(rows) == 7
    assert all("| +0.0 (+0.0, +0.0) | 1.000 | no |" in row for row in rows)


def test_rendering_is_deterministic(tmp_path):
    write_results(tmp_path / "r")
    first, folder = _render(tmp_path, [tmp_path / "r"])
    files = {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    again, _ = _render(tmp_path, [tmp_path / "r"])
    assert first == again
    assert files == {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stale_assets_are_removed(tmp_path):
    write_results(tmp_path / "r")
    _, folder = _render(tmp_path, [tmp_path / "r"])
    stale = folder / "assets" / "thumbs" / "old.png"
    stale.write_bytes(b"x")
    _render(tmp_path, [tmp_path / "r"])
    assert not stale.exists()


def test_merging_folders_keeps_hardware_per_row(tmp_path):
    write_results(tmp_path / "cpu", models=("alpha",), batch_sizes=(1,))
    write_results(tmp_path / "gpu", models=("alpha",), batch_sizes=(1, 8), hardware="NVIDIA H100 80GB HBM3",
                  gpu=True)
    md, _ = _render(tmp_path, [tmp_path / "cpu", tmp_path / "gpu"])
    results = md.split("## Results", 1)[1].split("##", 1)[0]
    assert results.count("| CPU (2 cores) |") == 2 and results.count("| NVIDIA H100 80GB HBM3 |") == 2
    pairs = md.split("## Base vs fine-tuned", 1)[1].split("##", 1)[0]
    assert pairs.count("McNemar (exact) |") == 6  # one pair per hardware, three accuracy metrics each
    assert "`torch_max_allocated_mb`" in md and "Hardware: CPU (2 cores) (2 runs); NVIDIA H100 80GB HBM3 (4 runs)" in md


def test_newer_schema_is_refused(tmp_path):
    write_run(tmp_path / "r", "alpha", "base", make_samples(), schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(HarnessError, match="newer than this harness understands"):
        write_leaderboard([tmp_path / "r"], tmp_path / "lb" / "LEADERBOARD.md")


def test_empty_results_give_a_page(tmp_path):
    (tmp_path / "r").mkdir()
    md, folder = _render(tmp_path, [tmp_path / "r"])
    assert "No finished runs yet." in md and (folder / "index.html").exists()


def test_preset_banner_stays_first(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(Path(__file__).resolve().parents[2]))
    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1,), preset="smoke")
    md, _ = _render(tmp_path, [tmp_path / "r"])
    banner = " ".join(load_preset("smoke").banner.split())
    assert md.startswith(f"> **{banner.split(':')[0]}")
    assert md.splitlines()[0].startswith("> **SMOKE PRESET")


def test_cli_merges_results_folders(tmp_path, capsys):
    write_results(tmp_path / "a", models=("alpha",), batch_sizes=(1,))
    write_results(tmp_path / "b", models=("beta",), batch_sizes=(1,), hardware="NVIDIA L4")
    out = tmp_path / "page" / "LEADERBOARD.md"
    code = main(["leaderboard", "--results", str(tmp_path / "a"), "--results", str(tmp_path / "b"),
                 "--leaderboard", str(out), "--resamples", "100", "--seed", "5"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    md = out.read_text()
    assert "| alpha |" in md and "| beta |" in md and "NVIDIA L4" in md
    stats = json.loads((out.parent / "leaderboard.json").read_text())
    assert stats["statistics"]["n_resamples"] == 100 and stats["statistics"]["seed"] == 5


def test_cli_reports_newer_schema_in_one_line(tmp_path, capsys):
    write_run(tmp_path / "r", "alpha", "base", make_samples(), schema_version=SCHEMA_VERSION + 1)
    code = main(["leaderboard", "--results", str(tmp_path / "r"), "--leaderboard", str(tmp_path / "x.md")])
    assert code == 2 and "upgrade the harness" in capsys.readouterr().err


def test_rendering_imports_no_ml_packages(tmp_path):
    import subprocess
    import sys

    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1,))
    code = ("import sys; from harness.leaderboard import write_leaderboard; "
            f"write_leaderboard([{str(tmp_path / 'r')!r}], {str(tmp_path / 'lb' / 'L.md')!r}, n_resamples=50); "
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_merged_adapter_runs_are_their_own_rows(tmp_path):
    samples = make_samples()
    write_run(tmp_path / "r", "alpha", "base", samples)
    write_run(tmp_path / "r", "alpha", "finetuned", samples)
    merged = write_run(tmp_path / "m", "alpha", "finetuned", samples, batch_size=1, ms=50.0)
    merged.rename(tmp_path / "r" / "alpha-finetuned-merged-bs1")
    path = tmp_path / "r" / "alpha-finetuned-merged-bs1" / "result.json"
    result = json.loads(path.read_text())
    result["spec"]["merge_adapter"] = True
    path.write_text(json.dumps(result))
    md, _ = _render(tmp_path, [tmp_path / "r"])
    results = md.split("## Results", 1)[1].split("##", 1)[0]
    assert "| alpha | finetuned (merged) |" in results and "| alpha | finetuned |" in results


def test_cli_names_a_bad_middle_line_of_samples_jsonl(tmp_path, capsys):
    """A bad line in the middle is an error naming file:line; a torn last line is cut off (killed writer)."""
    write_results(tmp_path / "r", models=("alpha",), batch_sizes=(1,))
    samples = tmp_path / "r" / "alpha-finetuned-bs1" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines) + lines[0][:25])  # torn last line: still renders
    out = tmp_path / "page" / "LEADERBOARD.md"
    assert main(["leaderboard", "--results", str(tmp_path / "r"), "--leaderboard", str(out),
                 "--resamples", "20"]) == 0
    capsys.readouterr()
    samples.write_text("".join(lines[:2]) + "{not json\n" + "".join(lines[2:]))
    assert main(["leaderboard", "--results", str(tmp_path / "r"), "--leaderboard", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{samples}:3:" in err


def test_runs_with_other_settings_stay_apart_and_say_how_they_differ(tmp_path):
    """A fine-tune benched greedily and with 4 beams are two rows, labelled by the setting, never one silently."""
    from harness.leaderboard.load import collect

    samples = make_samples()
    write_run(tmp_path / "a", "alpha", "base", samples)
    for folder, beams in (("a", 1), ("b", 4)):
        run = write_run(tmp_path / folder, "alpha", "finetuned", samples)
        result = json.loads((run / "result.json").read_text())
        result["spec"]["decoding"]["num_beams"] = beams
        (run / "result.json").write_text(json.dumps(result))
    entries = collect([tmp_path / "a", tmp_path / "b"])
    assert sorted(e.variant for e in entries) == ["base", "finetuned (num_beams=1)", "finetuned (num_beams=4)"]


def test_the_same_run_from_two_folders_is_one_line_naming_both(tmp_path):
    from harness.errors import HarnessError
    from harness.leaderboard.load import collect

    samples = make_samples()
    write_run(tmp_path / "a", "alpha", "base", samples)
    write_run(tmp_path / "b", "alpha", "base", samples)
    with pytest.raises(HarnessError, match="measured twice") as exc:
        collect([tmp_path / "a", tmp_path / "b"])
    assert str(tmp_path / "a") in str(exc.value) and str(tmp_path / "b") in str(exc.value)
