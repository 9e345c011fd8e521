"""Draw a ``SynthChart`` as a small PNG, byte-identical for the same chart on the same machine.

Uses ``matplotlib.figure.Figure`` with an Agg canvas (never pyplot), so no global backend is switched
and no figure registry grows. rcParams are pinned to matplotlib's defaults inside a context that
restores the caller's settings, so a style set elsewhere cannot change our pixels. PIL encodes
the PNG with no metadata (no software tag, no timestamps): same pixels -> same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from harness.data.synth_plan import COLORS, SynthChart, format_tenths

__all__ = ["IMAGE_SIZE", "render_png", "pinned_style", "pin_style_for_process"]

IMAGE_SIZE = (320, 240)
_DPI = 100
_LABEL_SIZE = 6
_LABEL_BOX = {"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
_STYLE = {
    "font.size": 7,
    "axes.titlesize": 8,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@contextmanager
def pinned_style() -> Iterator[None]:
    """matplotlib defaults plus our sizes for the duration; the caller's rcParams come back after."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)
        yield


def pin_style_for_process() -> None:
    """Worker-process initializer: the process is ours alone, so pin the style for its lifetime."""
    matplotlib.rcdefaults()
    matplotlib.rcParams.update(_STYLE)


def render_png(chart: SynthChart) -> bytes:
    """PNG bytes of ``chart`` at ``IMAGE_SIZE``, with every value printed as a data label."""
    fig = Figure(figsize=(IMAGE_SIZE[0] / _DPI, IMAGE_SIZE[1] / _DPI), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    draw = {"bar": _bar, "hbar": _hbar, "line": _line, "pie": _pie, "grouped_bar": _grouped}[chart.chart_type]
    draw(fig, chart)
    fig.suptitle(chart.title, y=0.97)
    canvas.draw()
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _hide_value_axis(ax: Axes, which: str) -> None:
    """Values are printed on the marks (Statista style), so the value axis is redundant; dropping
    its ticks also saves about a quarter of the drawing time."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_visible(False)
    ax.spines["left" if which == "y" else "bottom"].set_visible(False)


def _labels(row: tuple[int, ...]) -> list[str]:
    return [format_tenths(v) for v in row]


def _bar(fig: Figure, chart: SynthChart) -> None:
    ax = fig.add_axes((0.04, 0.12, 0.92, 0.72))
    bars = ax.bar(chart.categories, [v / 10 for v in chart.values[0]], color=COLORS[chart.colors[0]])
    ax.bar_label(bars, labels=_labels(chart.values[0]), fontsize=_LABEL_SIZE, padding=1)
    _hide_value_axis(ax, "y")
    ax.margins(y=0.15)


def _hbar(fig: Figure, chart: SynthChart) -> None:
    ax = fig.add_axes((0.17, 0.1, 0.78, 0.76))
    bars = ax.barh(chart.categories, [v / 10 for v in chart.values[0]], color=COLORS[chart.colors[0]])
    ax.bar_label(bars, labels=_labels(chart.values[0]), fontsize=_LABEL_SIZE, padding=1)
    ax.invert_yaxis()
    _hide_value_axis(ax, "x")
    ax.margins(x=0.15)


def _line(fig: Figure, chart: SynthChart) -> None:
    ax = fig.add_axes((0.04, 0.12, 0.92, 0.72))
    x = range(len(chart.categories))
    top = [column.index(max(column)) for column in zip(*chart.values)]  # series labelled above, per x
    for s, row in enumerate(chart.values):
        color = COLORS[chart.colors[s]]
        label = chart.series[s] if chart.series else None
        ax.plot(x, [v / 10 for v in row], marker="o", markersize=3, color=color, label=label)
        for xi, (v, text) in enumerate(zip(row, _labels(row))):
            # The highest point at each x is labelled above, any other below, so two series'
            # labels do not stack; the white box keeps a label legible where a line crosses it.
            above = s == top[xi]
            ax.annotate(
                text,
                (xi, v / 10),
                textcoords="offset points",
                xytext=(0, 4 if above else -4),
                ha="center",
                va="bottom" if above else "top",
                fontsize=_LABEL_SIZE,
                color=color,
                bbox=_LABEL_BOX,
                zorder=3,
            )
    ax.set_xticks(list(x), chart.categories)
    _hide_value_axis(ax, "y")
    ax.margins(x=0.06, y=0.25)
    if chart.series:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(chart.series), frameon=False)


def _pie(fig: Figure, chart: SynthChart) -> None:
    ax = fig.add_axes((0.05, 0.02, 0.9, 0.84))
    row = chart.values[0]
    start = sum(map(ord, chart.title)) % 360  # varied but deterministic orientation
    ax.pie(
        [v / 10 for v in row],
        labels=chart.categories,
        autopct=None,
        startangle=start,
        colors=[COLORS[name] for name in _pie_colors(chart)],
        textprops={"fontsize": _LABEL_SIZE},
        labeldistance=1.12,
        wedgeprops={"linewidth": 0.8, "edgecolor": "white"},
    )
    # Percent labels drawn by hand so the printed text is exactly the label text plus "%".
    wedges = ax.patches
    for wedge, v in zip(wedges, row):
        angle = math.radians((wedge.theta1 + wedge.theta2) / 2)
        ax.text(
            0.62 * math.cos(angle),
            0.62 * math.sin(angle),
            f"{format_tenths(v)}%",
            ha="center",
            va="center",
            fontsize=_LABEL_SIZE,
            color="white",
            fontweight="bold",
        )
    ax.set_aspect("equal")
    ax.axis("off")


def _pie_colors(chart: SynthChart) -> list[str]:
    """Wedge colours: the chart's colour first, then the palette in order, never repeating."""
    names = [chart.colors[0], *(c for c in COLORS if c != chart.colors[0])]
    return names[: len(chart.categories)]


def _grouped(fig: Figure, chart: SynthChart) -> None:
    ax = fig.add_axes((0.04, 0.1, 0.92, 0.7))
    n_series = len(chart.values)
    width = 0.8 / n_series
    for s, row in enumerate(chart.values):
        xs = [c + (s - (n_series - 1) / 2) * width for c in range(len(chart.categories))]
        bars = ax.bar(xs, [v / 10 for v in row], width=width, color=COLORS[chart.colors[s]], label=chart.series[s])
        ax.bar_label(bars, labels=_labels(row), fontsize=5, padding=1)
    ax.set_xticks(range(len(chart.categories)), chart.categories)
    _hide_value_axis(ax, "y")
    ax.margins(y=0.15)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=n_series, frameon=False)
