"""The leaderboard page as a pure function of stored result records."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from harness.registry import load_preset
from harness.store import load_results

__all__ = ["escape_cell", "render_markdown", "write_leaderboard"]

HEADLINE = ("relaxed_accuracy", "exact_match", "rougeL", "bleu")


def escape_cell(text: object) -> str:
    """Model output must not break the table or inject HTML."""
    s = str(text)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "\\`"), ("*", "\\*"),
                 ("_", "\\_"), ("[", "\\["), ("]", "\\]")):
        s = s.replace(a, b)
    return " ".join(s.split())


def _fmt(value, scale: str = "fraction", digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.{digits}f}" if scale == "fraction" else f"{value:.{digits}f}"


def _ms(summary: dict | None, key: str = "p50") -> str:
    return "–" if not summary else f"{summary[key]:.1f}"


def _peak_memory(memory: dict) -> str:
    for key in ("torch_max_allocated_mb", "nvml_peak_used_mb", "rss_peak_mb"):
        if memory.get(key) is not None:
            return f"{memory[key]:.0f} ({key})"
    return "–"


def _header(results: list[dict], banner: str) -> list[str]:
    first = results[0]
    spec, man = first["spec"], first["manifest"]
    hardware = sorted({r["manifest"].get("hardware", "?") for r in results})
    lines = []
    if banner:
        lines += [f"> **{banner.strip()}**", ""]
    lines += [
        "# Chart-QA leaderboard",
        "",
        f"- Data set: `{spec['dataset']}` (fingerprint `{man.get('dataset_fingerprint', '?')[:12]}`), "
        f"split `{spec['split']}`, {first['num_samples']} samples per run",
        f"- Hardware: {', '.join(hardware)}; preset: {spec.get('preset') or 'none (real models)'}",
        f"- Decoding: {spec['decoding']} (identical for every variant of a model)",
        f"- Harness {man.get('harness_version')} (git {str(man.get('harness_git_sha'))[:10]})",
        "- Accuracy, ROUGE and exact match are percentages of samples (0–100); BLEU is sacreBLEU corpus "
        "BLEU (0–100). Latency is wall time per batch, warm-up excluded, device synchronised.",
        "",
    ]
    return lines


def render_markdown(results: list[dict], banner: str = "") -> str:
    if not results:
        return "# Chart-QA leaderboard\n\nNo finished runs yet.\n"
    rows = sorted(results, key=lambda r: -(r["metrics"].get("relaxed_accuracy") or 0.0))
    out = _header(results, banner)
    out += ["## Results", ""]
    table = []
    for r in rows:
        spec, m, lat = r["spec"], r["metrics"], r["latency"]
        table.append([
            spec["model"], spec["variant"], spec["batch_size"],
            *(_fmt(m.get(k), "0-100" if k == "bleu" else "fraction") for k in HEADLINE),
            _ms(lat.get("latency_ms")), _ms(lat.get("latency_ms"), "p95"),
            f"{lat['samples_per_s']:.2f}" if lat.get("samples_per_s") else "–",
            _fmt(lat.get("generated_tokens", {}).get("mean") if lat.get("generated_tokens") else None, "0-100"),
            _peak_memory(r.get("memory", {})), r["manifest"].get("hardware", "?"),
        ])
    out.append(tabulate(table, headers=[
        "model", "variant", "batch", "relaxed acc", "exact match", "ROUGE-L", "BLEU", "p50 latency ms",
        "p95 latency ms", "samples/s", "tokens/answer", "peak memory MB", "hardware",
    ], tablefmt="github"))
    out += ["", "## Fine-tuned minus base", ""]
    out += _delta_table(results)
    return "\n".join(out) + "\n"


def _delta_table(results: list[dict]) -> list[str]:
    by_key = {(r["spec"]["model"], r["spec"]["variant"], r["spec"]["batch_size"]): r for r in results}
    rows = []
    for (model, variant, bs), r in sorted(by_key.items()):
        base = by_key.get((model, "base", bs))
        if variant == "base" or base is None:
            continue
        row = [model, f"{variant} − base", bs]
        for k in HEADLINE:
            a, b = base["metrics"].get(k), r["metrics"].get(k)
            row.append("–" if a is None or b is None else
                       f"{(b - a) * (1 if k == 'bleu' else 100):+.1f}")
        rows.append(row)
    if not rows:
        return ["No base/fine-tuned pairs yet."]
    return [tabulate(rows, headers=["model", "comparison", "batch", *HEADLINE], tablefmt="github")]


def write_leaderboard(results_dirs: list[Path], out_path: Path) -> Path:
    results = load_results(results_dirs)
    presets = {r["spec"].get("preset") for r in results}
    banners = [load_preset(p).banner for p in sorted(p for p in presets if p)]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_markdown(results, " ".join(banners)))
    return out_path
