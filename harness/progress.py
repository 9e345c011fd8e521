"""Progress for long loops: a live line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "log"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Progress:
    """Shows items done, rate and time left. `unit` names what is counted (samples, steps)."""

    def __init__(self, total: int, label: str, unit: str = "samples", done: int = 0, stream=None,
                 min_interval_s: float = 5.0):
        self.total = max(total, 0)
        self.label = label
        self.unit = unit
        self.done = done
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = min_interval_s
        self._start = time.perf_counter()
        self._start_done = done
        self._last = 0.0

    def line(self) -> str:
        elapsed = time.perf_counter() - self._start
        rate = (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = f"{left:.0f}s left" if left == left else "time left unknown"
        return f"{self.label}: {self.done}/{self.total} {self.unit}, {rate:.2f} {self.unit}/s, {eta}"

    def update(self, n: int = 1, extra: str = "") -> None:
        self.done += n
        now = time.perf_counter()
        finished = self.done >= self.total
        text = self.line() + (f", {extra}" if extra else "")
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if finished else ""))
            self.stream.flush()
        elif finished or now - self._last >= self.min_interval_s:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now
