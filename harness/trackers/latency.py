"""Wall-clock timing that synchronises the device before reading the host clock.

Raw values are kept by the callers; `summarize` turns them into mean and percentiles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

__all__ = ["StepTimer", "Stopwatch", "summarize", "synchronize"]


def synchronize(device: str) -> None:
    """Wait for queued GPU work so a host clock reading includes it (no-op on CPU)."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


class Stopwatch:
    """Context manager measuring elapsed milliseconds of a block, device work included."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.ms = 0.0

    def __enter__(self) -> Stopwatch:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.ms = (time.perf_counter() - self._start) * 1000.0


class StepTimer:
    """A `generate` stopping criterion that never stops but timestamps every decoding step.

    The first call happens after the prompt's forward pass and the first token (prefill, i.e. time
    to first token); each later call is one decode step. Works with beams, unlike streamers.
    """

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.start = 0.0
        self.stamps: list[float] = []

    def begin(self) -> None:
        synchronize(self.device)
        self.stamps = []
        self.start = time.perf_counter()

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        synchronize(self.device)
        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    @property
    def prefill_ms(self) -> float | None:
        return (self.stamps[0] - self.start) * 1000.0 if self.stamps else None

    @property
    def decode_ms_per_token(self) -> float | None:
        """Mean time of the steps after the first; None when only one token was generated."""
        if len(self.stamps) < 2:
            return None
        return (self.stamps[-1] - self.stamps[0]) * 1000.0 / (len(self.stamps) - 1)

    @property
    def steps(self) -> int:
        return len(self.stamps)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    # Linear interpolation between closest ranks (numpy's default), without numpy.
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low))


def summarize(values: Sequence[float | None]) -> dict | None:
    """Mean, p50, p90, p95, min, max and count of the non-missing values."""
    clean = sorted(float(v) for v in values if v is not None)
    if not clean:
        return None
    return {
        "mean": sum(clean) / len(clean),
        "p50": _percentile(clean, 50),
        "p90": _percentile(clean, 90),
        "p95": _percentile(clean, 95),
        "min": clean[0],
        "max": clean[-1],
        "n": len(clean),
    }
