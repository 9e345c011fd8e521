"""Clocks that respect device asynchrony.

- `Stopwatch` synchronises the device, then reads `time.perf_counter`, on entry and exit: a block's
  time includes the GPU work it queued.
- `StepTimer` timestamps every decoding step from inside `generate` (its `stamp` is the adapter's
  `on_step`, see harness/adapters/protocol.py). On CUDA it records CUDA events
  (no synchronisation inside the loop; the events are resolved once generation has finished), on the
  CPU it reads `time.perf_counter`. Either way the first stamp is the first token (prefill).

Raw values are kept by the callers; `summarize` turns them into mean and percentiles.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

__all__ = ["StepTimer", "Stopwatch", "summarize", "synchronize"]


def _is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def synchronize(device: str) -> None:
    """Wait for queued GPU work so a host clock reading includes it (no-op on CPU)."""
    if _is_cuda(device):
        import torch

        torch.cuda.synchronize(device)


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
    """Timestamps every decoding step: `stamp` is called once per step, after the step's token is chosen.

    The first stamp comes after the prompt's forward pass and the first token (prefill, i.e. time to
    first token inside `generate`); each later one is one decode step.

    Use: `begin()` just before `generate`, pass `stamp` as its `on_step`, `finish()` after.
    """

    def __init__(self, device: str = "cpu"):
        self.device = str(device)
        self.cuda = _is_cuda(device)
        self.clock = "cuda_events" if self.cuda else "perf_counter"
        self._start = None
        self._marks: list = []
        self._offsets: list[float] | None = None

    def begin(self) -> None:
        synchronize(self.device)
        self._marks, self._offsets = [], None
        if self.cuda:
            import torch

            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._start = time.perf_counter()

    def stamp(self):
        """Record one step; returns the mark (a CUDA event, or a `perf_counter` reading on the CPU)."""
        if self.cuda:
            import torch

            mark = torch.cuda.Event(enable_timing=True)
            mark.record()  # queued behind this step's kernels: no host synchronisation here
        else:
            mark = time.perf_counter()
        self._marks.append(mark)
        return mark

    def finish(self) -> None:
        """Resolve the stamps into milliseconds since `begin` (synchronises once on CUDA)."""
        if self._start is None:
            self._offsets = []
            return
        if self.cuda:
            synchronize(self.device)
            self._offsets = [float(self._start.elapsed_time(event)) for event in self._marks]
        else:
            self._offsets = [(mark - self._start) * 1000.0 for mark in self._marks]

    @property
    def offsets_ms(self) -> list[float]:
        """Milliseconds from `begin` to each step's stamp."""
        if self._offsets is None or len(self._offsets) != len(self._marks):
            self.finish()
        return list(self._offsets or [])

    @property
    def step_ms(self) -> list[float]:
        """Raw per-step durations: the first is the prefill, the others one decode step each."""
        offsets = self.offsets_ms
        return [b - a for a, b in zip([0.0, *offsets[:-1]], offsets)]

    @property
    def prefill_ms(self) -> float | None:
        offsets = self.offsets_ms
        return offsets[0] if offsets else None

    @property
    def decode_ms(self) -> float | None:
        """Time from the first token to the last step (0.0 when only one token was generated)."""
        offsets = self.offsets_ms
        return offsets[-1] - offsets[0] if offsets else None

    @property
    def decode_ms_per_token(self) -> float | None:
        """Mean time of the steps after the first; None when only one token was generated."""
        offsets = self.offsets_ms
        if len(offsets) < 2:
            return None
        return (offsets[-1] - offsets[0]) / (len(offsets) - 1)

    @property
    def steps(self) -> int:
        return len(self._marks)


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
