"""The leaderboard as a pure function of stored results: entries -> Page (Markdown, HTML, PNGs, stats).

`write_leaderboard` is the only part that touches the disk: it reads result folders and writes
LEADERBOARD.md (or the page path given), index.html, leaderboard.json and assets/ next to each other,
links all relative.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.analysis import load_samples
from harness.errors import HarnessError
from harness.fileio import write_bytes_atomic, write_text_atomic
from harness.leaderboard import plots, tables
from harness.leaderboard.analyze import Analysis, analyze, to_json
from harness.leaderboard.doc import Banner, Block, Bullets, Code, Figure, Heading, Link, Para
from harness.leaderboard.examples import example_blocks
from harness.leaderboard.header import header_blocks
from harness.leaderboard.html import render_html
from harness.leaderboard.load import Entry, Run, collect, group_runs
from harness.leaderboard.markdown import render_blocks
from harness.leaderboard.published import published_refs, published_table, subset_table
from harness.leaderboard.stats import StatsOptions
from harness.leaderboard.why import why_blocks
from harness.trackers.memory import peak_memory

__all__ = ["PAGE_NAME", "Page", "build_page", "page_path", "preset_banner", "render_markdown", "write_leaderboard"]

TITLE = "Chart-QA leaderboard"
ASSET_MARKER = ".generated-by-harness-leaderboard"


@dataclass
class Page:
    markdown: str
    html: str
    assets: dict[str, bytes]  # relative path -> PNG bytes
    stats: dict


def _label(e: Entry, multi_hw: bool) -> str:
    return f"{e.model} {e.variant}" + (f" ({e.hardware})" if multi_hw else "")


def _plots(a: Analysis, multi_hw: bool) -> dict[str, tuple[bytes, str]]:
    """asset path -> (PNG, alt text)."""
    out: dict[str, tuple[bytes, str]] = {}
    points, index = [], {}
    for e in a.entries:
        ci, lat = a.accuracy(e), e.primary.result.get("latency", {}).get("latency_ms")
        if ci is not None and lat:
            index[e.key] = len(points)
            points.append(plots.Point(e.model, e.variant, _label(e, multi_hw), lat["p50"], ci.estimate * 100,
                                      ci.low * 100, ci.high * 100))
    if points:
        arrows = [(index[p.base.key], index[p.other.key]) for p in a.pairs
                  if p.base.key in index and p.other.key in index]
        out["assets/accuracy_vs_latency.png"] = (plots.accuracy_vs_latency(points, arrows),
                                                 "relaxed accuracy against p50 latency per model variant")
    mem = [(e, *peak_memory(e.primary.result.get("memory"))) for e in a.entries]
    mem = [(e, v, k) for e, k, v in mem if v is not None]
    if mem:
        what = ", ".join(dict.fromkeys(k for _, _, k in mem))
        out["assets/peak_memory.png"] = (plots.memory_bars([_label(e, multi_hw) for e, _, _ in mem],
                                                           [e.model for e, _, _ in mem], [v for _, v, _ in mem],
                                                           what), "peak memory per model variant")
    curves = []
    for e, rec in tables.finetune_records(a):
        history = rec.get("loss_per_step") or []
        if history:
            curves.append((_label(e, multi_hw), [h["step"] for h in history], [h["loss"] for h in history]))
    if curves:
        out["assets/loss_curves.png"] = (plots.loss_curves(curves), "fine-tune training loss per step")
    groups = sorted({g for per in a.groups.values() for g in per})
    if groups:
        series = []
        for e in a.entries:
            per = a.groups.get(e.key, {})
            series.append((_label(e, multi_hw), e.model,
                           [(per[g].estimate * 100, per[g].low * 100, per[g].high * 100) if g in per else None
                            for g in groups]))
        name = a.group_field.replace("_", " ")
        out[f"assets/accuracy_by_{a.group_field}.png"] = (plots.by_group(groups, series, name),
                                                          f"relaxed accuracy by {name} per model variant")
    return out


def _figure(pictures: dict, path: str, caption: str) -> list[Block]:
    return [Figure(path, pictures[path][1], caption)] if path in pictures else []


def _metric_notes(a: Analysis) -> Bullets:
    infos: dict[str, dict] = {}
    for e in a.entries:
        for name, info in e.primary.result.get("metric_info", {}).items():
            infos.setdefault(name, info)
    return Bullets([[Code(tables.label(m)), f" (v{infos[m].get('version')}): {infos[m].get('description')}"]
                    for m in a.metrics if m in infos])


def _reference_blocks(a: Analysis, published: list[dict]) -> list[Block]:
    """Per-subset scores (cards with `subsets:`) and the cards' published numbers, in their own tables."""
    blocks: list[Block] = []
    subsets = subset_table(a)
    if subsets is not None:
        blocks += [Heading(2, "Scores by subset", anchor="subsets"),
                   Para(["Relaxed accuracy (0–100) over the whole split and per subset of the benchmark card's "
                         "subset column (ChartQA: augmented and human-written questions), with the number of "
                         "questions; the prompt column names the benchmark's prompt variant."]),
                   subsets]
    refs = published_table(a, published)
    if refs is not None:
        blocks += [Heading(2, "Published scores", anchor="published"),
                   Para(["Scores the model's authors or evaluation kits published for the same benchmark, as "
                         "the model cards cite them (models/*.yaml `published:`). They are not our "
                         "measurements: prompts, decoding and weights may differ. The last column is our "
                         "base-variant score on this page, for comparison."]),
                   refs]
    return blocks


def build_blocks(a: Analysis, banner: str, pictures: dict,
                 published: list[dict] | None = None) -> tuple[list[Block], dict[str, bytes]]:
    multi_hw = len({e.hardware for e in a.entries}) > 1
    blocks: list[Block] = [Banner(banner)] if banner.strip() else []
    blocks += [Heading(1, TITLE), *header_blocks(a)]
    if not a.entries:
        return blocks + [Para(["No finished runs yet."])], {}
    o = a.options
    blocks += [
        Heading(2, "Results", anchor="results"),
        Para([f"Sorted by relaxed accuracy. Every metric is shown 0–100 with its {o.confidence:.0%} confidence "
              f"interval in parentheses (percentile bootstrap, {o.n_resamples} resamples, seed {o.seed}, resampling "
              "whole charts when several questions share one). Statistics use the smallest batch size of each "
              "model variant (column 'stats from'); other batch sizes appear in the speed table only. "
              "Higher is better for every metric."]),
        tables.main_table(a),
        Para(["Metric definitions:"]), _metric_notes(a),
        *_figure(pictures, "assets/accuracy_vs_latency.png",
                 "Each point is a model variant (95% CI bars); arrows go from base to fine-tuned. "
                 "Up and to the left is better."),
        *_reference_blocks(a, published or []),
        Heading(2, "Base vs fine-tuned", anchor="pairs"),
    ]
    if a.pairs:
        blocks += [
            Para(["Each variant against the base model on the same questions (same hardware and data). "
                  "Accuracy-type metrics use the exact McNemar test on the questions where exactly one of the two "
                  "was right (fixed / broken counts them); ROUGE uses a paired bootstrap of per-question scores; "
                  "BLEU a paired bootstrap that recomputes corpus BLEU on each resample. The interval bounds the "
                  f"difference (paired bootstrap, {o.n_resamples} resamples, seed {o.seed}). p-values are not "
                  "corrected for testing several metrics, and the metrics are strongly correlated."]),
            tables.pairs_table(a),
        ]
    else:
        blocks.append(Para(["No base/fine-tuned pairs on the same hardware and data yet."]))
    group_name = a.group_field.replace("_", " ")
    blocks += [
        Heading(2, f"Accuracy by {group_name}", anchor="groups"),
        Para([f"Relaxed accuracy per {group_name} with 95% CI and the number of questions"
              + (" (question types of the synthetic chart generator)." if a.group_field == "question_type"
                 else " (numeric: the first reference parses as a number under the official rule).")]),
        tables.by_group_table(a),
        *_figure(pictures, f"assets/accuracy_by_{a.group_field}.png", f"Relaxed accuracy by {group_name}."),
        Heading(2, "Speed and memory", anchor="speed"),
        Para(["Every batch size that was run. A sample's latency is its batch's end-to-end wall time (warm-up "
              "excluded, device synchronised); prefill is the time to the first token of a batch, decode the time "
              "per further token; tokens/answer is the mean number of generated tokens. Peak memory names its "
              "measure: torch_max_allocated_mb (GPU allocator), nvml_peak_used_mb (whole device) or rss_peak_mb "
              "(process, CPU). ★ marks the batch size with the highest throughput for that model variant."]),
        tables.speed_table(a),
        *_figure(pictures, "assets/peak_memory.png", "Peak memory at the smallest batch size."),
        Heading(2, "Why slower", anchor="why"),
        *why_blocks(a.entries),
        Heading(2, "Fine-tune records", anchor="finetune"),
    ]
    if tables.finetune_records(a):
        blocks += [Para(["Wall time and samples/s cover the training loop only (model loading excluded); peak "
                         "memory names its measure as above."]),
                   tables.finetune_table(a),
                   *_figure(pictures, "assets/loss_curves.png", "Training loss per optimizer step.")]
    else:
        blocks.append(Para(["No fine-tuned runs yet."]))
    groups: dict[tuple, list[Entry]] = {}
    for e in a.entries:
        groups.setdefault((e.model, e.pair_key), []).append(e)
    examples, thumbs = example_blocks(list(groups.values()), multi_hw)
    blocks += [Heading(2, "Example predictions", anchor="examples"), *examples]
    blocks += [Para(["Generated by ", Code("harness leaderboard"), " from stored results only; the numbers "
                     "behind every interval and test are in ", Link("leaderboard.json", "leaderboard.json"), "."])]
    return blocks, thumbs


def build_page(entries: list[Entry], banner: str = "", options: StatsOptions | None = None,
               published: list[dict] | None = None) -> Page:
    """Pure: entries (results with their samples and thumbnails) -> the whole page.

    `published`: reference scores from the model cards (`published_refs`), shown in their own table.
    """
    a = analyze(entries, options)
    pictures = _plots(a, len({e.hardware for e in entries}) > 1) if entries else {}
    blocks, thumbs = build_blocks(a, banner, pictures, published)
    assets = {path: png for path, (png, _) in pictures.items()} | thumbs
    return Page(render_blocks(blocks), render_html(blocks, assets, TITLE), assets, to_json(a))


def render_markdown(results: list[dict], banner: str = "", options: StatsOptions | None = None) -> str:
    """Markdown of result records as `store.load_results` returns them (samples read from `_dir`)."""
    runs = [Run({k: v for k, v in r.items() if k != "_dir"}, load_samples(r["_dir"]) if r.get("_dir") else [],
                Path(r["_dir"]) if r.get("_dir") else None) for r in results]
    return build_page(group_runs(runs), banner, options).markdown


def preset_banner(entries: list[Entry]) -> str:
    """The banner of every preset the runs used (a preset's banner must open its page)."""
    from harness.registry import load_preset

    lines = []
    for name in sorted({e.primary.spec.get("preset") for e in entries} - {None, ""}):
        try:
            banner = load_preset(name).banner
        except HarnessError:
            banner = f"PRESET {name}: these runs used the '{name}' preset (its file was not found to say more)."
        if banner:
            lines.append(banner.strip())
    return "\n".join(lines)


PAGE_NAME = "LEADERBOARD.md"


def page_path(out_path: str | Path) -> Path:
    """Where the Markdown page goes: out_path, or PAGE_NAME inside it when out_path is an existing folder.

    Checked before anything is rendered, so a path that cannot hold the page is one line and nothing is
    written next to it (a folder used to get assets/ written into its parent, then IsADirectoryError).
    """
    out = Path(out_path).expanduser()
    if out.is_dir():
        out = out / PAGE_NAME
    for parent in [out.parent, *out.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise HarnessError(f"leaderboard {out_path}: {parent} is a file, not a folder")
            break
    return out


def write_leaderboard(results_dirs: list[Path], out_path: Path, n_resamples: int = 2000, seed: int = 0) -> Path:
    """Render the result folders into out_path (Markdown; a folder gets LEADERBOARD.md inside it) plus
    index.html, leaderboard.json and assets/ next to it."""
    out_path = page_path(out_path)
    entries = collect(results_dirs)
    page = build_page(entries, preset_banner(entries), StatsOptions(n_resamples=n_resamples, seed=seed),
                      published_refs(entries))
    try:
        return _write_page(page, out_path)
    except OSError as exc:
        raise HarnessError(f"leaderboard {out_path}: cannot write ({exc.strerror or exc})") from None


def _write_page(page: Page, out_path: Path) -> Path:
    folder = out_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    assets = folder / "assets"
    if (assets / ASSET_MARKER).exists():
        shutil.rmtree(assets)  # only a folder this renderer made: stale thumbnails and plots go
    for rel, data in page.assets.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    if page.assets:
        write_text_atomic(assets / ASSET_MARKER, "regenerated by `harness leaderboard`; do not edit\n")
    # Atomic: a reader (a web server, a CI artefact upload) sees the old page or the new one, never half.
    write_text_atomic(out_path, page.markdown)
    write_text_atomic(folder / "index.html", page.html)
    write_text_atomic(folder / "leaderboard.json", json.dumps(page.stats, indent=1, sort_keys=True) + "\n")
    return out_path

