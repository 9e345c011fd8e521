"""The leaderboard's pictures as PNG bytes, from plain numbers (no pyplot state, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

__all__ = ["Point", "accuracy_vs_latency", "by_group", "loss_curves", "memory_bars"]

MARKERS = {"base": "o", "finetuned": "^", "study": "s"}
DPI = 110


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _colors(names: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {name: palette(i % 10) for i, name in enumerate(dict.fromkeys(names))}


@dataclass(frozen=True)
class Point:
    """One model variant on the accuracy/latency plane (accuracy in percent, latency in ms)."""

    model: str
    variant: str
    label: str
    latency_ms: float
    accuracy: float
    low: float
    high: float


def accuracy_vs_latency(points: Sequence[Point], arrows: Sequence[tuple[int, int]]) -> bytes:
    """Up and to the left is better; arrows go from a base model to its fine-tuned variant."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    colors = _colors([p.model for p in points])
    for p in points:
        ax.errorbar(p.latency_ms, p.accuracy, yerr=[[p.accuracy - p.low], [p.high - p.accuracy]],
                    fmt=MARKERS.get(p.variant, "D"), color=colors[p.model], markersize=8, capsize=3,
                    label=p.label)
    for a, b in arrows:
        pa, pb = points[a], points[b]
        ax.annotate("", xy=(pb.latency_ms, pb.accuracy), xytext=(pa.latency_ms, pa.accuracy),
                    arrowprops={"arrowstyle": "->", "color": colors[pa.model], "lw": 1.4, "shrinkA": 6,
                                "shrinkB": 6})
    latencies = [p.latency_ms for p in points if p.latency_ms > 0]
    if latencies and max(latencies) / min(latencies) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("p50 latency per sample, ms (smallest batch size; lower is better)")
    ax.set_ylabel("relaxed accuracy, % (95% CI)")
    ax.set_title("Accuracy vs latency (arrows: base → fine-tuned)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def memory_bars(labels: Sequence[str], models: Sequence[str], values_mb: Sequence[float], what: str) -> bytes:
    fig = Figure(figsize=(7.5, 0.5 + 0.45 * max(3, len(labels))))
    ax = fig.subplots()
    colors = _colors(models)
    y = list(range(len(labels)))[::-1]
    bars = ax.barh(y, values_mb, color=[colors[m] for m in models])
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values_mb], padding=3, fontsize=8)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"peak memory, MB ({what})")
    ax.set_title("Peak memory per variant (smallest batch size)")
    ax.margins(x=0.15)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def loss_curves(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]]) -> bytes:
    """Training loss per optimizer step: raw (faint) and a moving average."""
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    colors = _colors([label for label, _, _ in curves])
    for label, steps, losses in curves:
        ax.plot(steps, losses, color=colors[label], alpha=0.3, lw=1)
        window = max(1, len(losses) // 15)
        smooth = [sum(losses[max(0, i - window + 1): i + 1]) / len(losses[max(0, i - window + 1): i + 1])
                  for i in range(len(losses))]
        ax.plot(steps, smooth, color=colors[label], lw=2, label=f"{label} (moving mean of {window})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Fine-tune loss curves")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def by_group(groups: Sequence[str], series: Sequence[tuple[str, str, Sequence[tuple[float, float, float] | None]]],
             group_label: str) -> bytes:
    """Grouped bars: per group (question type or answer type) one bar per variant, with 95% CIs.

    `series` holds (label, model, [(estimate, low, high) or None per group]) in percent.
    """
    width = 0.8 / max(1, len(series))
    fig = Figure(figsize=(max(7.5, 1.3 * len(groups) * max(1, len(series)) * 0.45), 4.4))
    ax = fig.subplots()
    colors = _colors([model for _, model, _ in series])
    hatches = {}
    for k, (label, model, values) in enumerate(series):
        hatch = hatches.setdefault(label.split(" ")[-1], ["", "//", "..", "xx"][len(hatches) % 4])
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        est = [v[0] if v else 0.0 for v in values]
        err = [[v[0] - v[1] if v else 0.0 for v in values], [v[2] - v[0] if v else 0.0 for v in values]]
        ax.bar(xs, est, width, yerr=err, capsize=2, color=colors[model], hatch=hatch, edgecolor="white",
               label=label, alpha=0.9)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
    ax.set_ylabel("relaxed accuracy, % (95% CI)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Relaxed accuracy by {group_label}")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    return _png(fig)
