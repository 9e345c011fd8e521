"""Progress for long loops: a live line on a terminal, plain log lines otherwise.

The harness's own lines (`log`, `Progress`) go to the terminal even while a run log (harness/runlog.py)
has sent sys.stderr, where third-party libraries write, to a log file; they are copied into the open
log files and secrets are masked in both.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Board", "Progress", "add_sink", "log", "remove_sink", "set_terminal", "terminal"]

_terminal = None  # the stream the user sees; None: whatever sys.stderr is now
_sinks: list = []  # open log files that get a copy of every harness line


def terminal():
    return _terminal or sys.stderr


def set_terminal(stream) -> object:
    """Make `stream` the harness's terminal; returns the previous setting (to restore)."""
    global _terminal
    previous, _terminal = _terminal, stream
    return previous


def add_sink(stream) -> None:
    _sinks.append(stream)


def remove_sink(stream) -> None:
    if stream in _sinks:
        _sinks.remove(stream)


def _write(text: str, copy: bool = True) -> None:
    from harness.runlog import redact

    text = redact(text)
    out = terminal()
    out.write(text)
    out.flush()
    for sink in list(_sinks) if copy else ():
        if sink is not out:
            sink.write(text.replace("\r\033[K", ""))
            sink.flush()


def log(message: str) -> None:
    _write(message + "\n")


class Progress:
    """Shows items done, rate and time left. `unit` names what is counted (samples, steps)."""

    def __init__(self, total: int, label: str, unit: str = "samples", done: int = 0, stream=None,
                 min_interval_s: float = 5.0):
        self.total = max(total, 0)
        self.label = label
        self.unit = unit
        self.done = done
        self.stream = stream  # None: the harness's terminal (see `terminal`)
        self.min_interval_s = min_interval_s
        self._start = time.perf_counter()
        self._start_done = done
        self._last = 0.0

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stream or terminal(), "isatty", lambda: False)())

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
        if self.stream is not None:  # an explicit stream (tests): exactly what it gets, nothing copied
            if self.tty:
                self.stream.write("\r\033[K" + text + ("\n" if finished else ""))
            elif finished or now - self._last >= self.min_interval_s:
                self.stream.write(text + "\n")
                self._last = now
            self.stream.flush()
            return
        if self.tty:  # the live line on the terminal; only the final one is copied to the log files
            _write("\r\033[K" + text + ("\n" if finished else ""), copy=finished)
        elif finished or now - self._last >= self.min_interval_s:
            _write(text + "\n")
            self._last = now


class Board:
    """One view over several tasks (a cluster runner's): per task samples done / total and rate, and overall.

    On a terminal the block is redrawn in place; otherwise a plain log line every `min_interval_s`.
    """

    def __init__(self, unit: str = "samples", stream=None, min_interval_s: float = 10.0):
        self.unit, self.stream, self.min_interval_s = unit, stream, min_interval_s
        self._first: dict[str, tuple[float, int]] = {}  # task -> (when first seen, done then)
        self._drawn = 0
        self._last = 0.0

    def lines(self, counts: dict[str, tuple[int, int | None]]) -> list[str]:
        now = time.perf_counter()
        out, total_rate, done_all, total_all = [], 0.0, 0, 0
        for name, (done, total) in sorted(counts.items()):
            since, start = self._first.setdefault(name, (now, done))
            rate = (done - start) / (now - since) if now > since else 0.0
            total_rate += rate
            done_all += done
            total_all += total or 0
            out.append(f"  {name}: {done}/{total if total else '?'} {self.unit}, {rate:.2f} {self.unit}/s")
        return [f"overall: {done_all}/{total_all or '?'} {self.unit}, {total_rate:.2f} {self.unit}/s"] + out

    def show(self, counts: dict[str, tuple[int, int | None]]) -> None:
        if not counts:
            return
        lines = self.lines(counts)
        stream = self.stream or terminal()
        if getattr(stream, "isatty", lambda: False)():
            up = f"\033[{self._drawn}F" if self._drawn else ""
            stream.write(up + "".join("\033[K" + line + "\n" for line in lines))
            stream.flush()
            self._drawn = len(lines)
        elif time.perf_counter() - self._last >= self.min_interval_s:
            _write(" | ".join(line.strip() for line in lines) + "\n")
            self._last = time.perf_counter()

    def close(self) -> None:
        self._drawn = 0
