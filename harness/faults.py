"""Fault injection: the one test hook for killing, filling the disk, running out of memory or poisoning the loss.

Code names the places a fault can strike with `point("bench.after_append")`. With the environment unset
a point is one dict lookup. `HARNESS_FAULT=KIND@POINT[:N][,KIND@POINT[:N]...]` arms it: the fault fires
the N-th time (default 1) this process reaches POINT. Kinds:

  kill     os.kill(getpid(), SIGKILL): a real, uncatchable kill, as by the OOM killer or a preemption
  enospc   raise OSError(ENOSPC), as a full disk does inside a write
  oom      raise torch.cuda.OutOfMemoryError (constructible on CPU torch), as a too-large batch does
  nan      the point returns "nan" and the caller poisons its value (the fine-tune's loss)

`HARNESS_FAULT_TRACE=FILE` appends every point reached to FILE, one name a line, so the fault suite
(scripts/fault-suite.py) learns how often each point is reached and picks N from a seed.
"""

from __future__ import annotations

import errno
import os
import signal

from harness.errors import HarnessError

__all__ = ["ENV", "KINDS", "TRACE_ENV", "parse", "point"]

ENV = "HARNESS_FAULT"
TRACE_ENV = "HARNESS_FAULT_TRACE"
KINDS = ("kill", "enospc", "oom", "nan")

_parsed: tuple[str | None, dict] = (None, {})  # (the env value parsed, {point: (kind, n)})
_reached: dict[str, int] = {}  # point -> times reached in this process


def parse(text: str) -> dict[str, tuple[str, int]]:
    """'kill@bench.after_append:3,nan@finetune.loss' -> {point: (kind, n)}; a bad entry is one line."""
    out = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        kind, at, rest = entry.partition("@")
        name, _, count = rest.partition(":")
        if not at or kind not in KINDS or not name:
            raise HarnessError(f"{ENV}={text!r}: expected KIND@POINT[:N] with KIND one of {', '.join(KINDS)}")
        if count and not (count.isdigit() and int(count) >= 1):
            raise HarnessError(f"{ENV}={text!r}: N in {entry!r} must be a positive integer")
        out[name] = (kind, int(count or 1))
    return out


def _armed() -> dict:
    global _parsed
    text = os.environ.get(ENV)
    if text != _parsed[0]:  # read when it changes, so a forked child or a test can arm its own fault
        _parsed = (text, parse(text) if text else {})
        _reached.clear()
    return _parsed[1]


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str, path=None) -> str | None:
    """A place a fault can strike; `path` is the file being written (named by an injected ENOSPC)."""
    if ENV not in os.environ:
        if _parsed[0] is not None:  # disarmed since: the next arming counts from zero
            _armed()
        if TRACE_ENV not in os.environ:
            return None
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")
    armed = _armed()
    if name not in armed:
        return None
    _reached[name] = _reached.get(name, 0) + 1
    kind, n = armed[name]
    if _reached[name] != n:
        return None
    if kind == "kill":
        _kill()
    if kind == "enospc":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (injected at {name})", str(path or name))
    if kind == "oom":
        import torch

        raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected at {name})")
    return kind
