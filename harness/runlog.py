"""A run's log file: where third-party output goes, so the terminal shows the harness's own lines only.

While `run_log(path)` is open, sys.stderr (where tqdm bars such as "Loading weights" and "Saving the
dataset", Python warnings and the libraries' logging handlers write) is the log file; the harness's
`log()` lines still reach the terminal and are copied into the file. HARNESS_VERBOSE=1 (`--verbose`)
also sends the third-party output to the terminal. Logs nest: a run's log.txt inside a session log
under the results folder, both get everything. Secret values (HF_TOKEN) are masked in all of it.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SECRET_ENV", "THREADS_ENV", "VERBOSE_ENV", "apply_threads", "redact", "run_log", "verbose"]

SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
VERBOSE_ENV = "HARNESS_VERBOSE"


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """`text` with the values of the secret environment variables (and `extra`) replaced by ***."""
    secrets = {os.environ.get(key, "") for key in SECRET_ENV} | set(extra)
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


class _Stream:
    """A text stream writing (secrets masked) to every target; what sys.stderr is during a run."""

    def __init__(self, *targets):
        self.targets = targets

    def write(self, text: str) -> int:
        masked = redact(text)
        for target in self.targets:
            if not getattr(target, "closed", False):  # a bar or handler that outlived its run
                target.write(masked)
        return len(text)

    def flush(self) -> None:
        for target in self.targets:
            if not getattr(target, "closed", False):
                target.flush()

    def close(self) -> None:  # a handler closing "its" stream at exit must not close the log file
        pass

    def isatty(self) -> bool:  # tqdm draws a non-tty bar once per update, not a live one
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"


def _redirect_handlers(old, new, real_stderr: bool = True) -> list:
    """Point every stream handler that writes to `old` (or the real stderr) at `new`; returns what to undo."""
    changed = []
    loggers = [logging.getLogger()] + [lg for lg in list(logging.Logger.manager.loggerDict.values())
                                       if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and (
                    handler.stream is old or (real_stderr and handler.stream is sys.__stderr__)):
                try:
                    changed.append((handler, handler.setStream(new)))
                except AttributeError:  # logging's last-resort handler: its stream *is* sys.stderr, always
                    pass
    return changed


@contextmanager
def run_log(path: Path):
    """Send third-party output to `path` (appended) for the duration; harness lines to both."""
    from harness import progress

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed below)
    outer = sys.stderr
    terminal = progress.terminal()  # the outermost log keeps the user's terminal as the harness's
    stream = _Stream(file, outer) if (outer is not terminal or verbose()) else _Stream(file)
    previous_terminal = progress.set_terminal(terminal)
    progress.add_sink(file)
    sys.stderr = stream
    changed = _redirect_handlers(outer, stream)
    try:
        yield path
    finally:
        for handler, old in reversed(changed):
            handler.setStream(old)
        _redirect_handlers(stream, outer, real_stderr=False)  # handlers a library created during the run (lazy imports)
        sys.stderr = outer
        progress.remove_sink(file)
        progress.set_terminal(previous_terminal)
        file.close()


THREADS_ENV = "HARNESS_THREADS"


def apply_threads(threads: int | None) -> int | None:
    """torch's intra-op threads from `threads`, else $HARNESS_THREADS (a container's --threads); None: torch's
    default. A runner resource like a GPU id: in no spec hash; the manifest records the effective count."""
    text = str(threads) if threads is not None else os.environ.get(THREADS_ENV, "")
    if not text:
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        from harness.errors import HarnessError

        raise HarnessError(f"{'--threads' if threads is not None else THREADS_ENV}={text}: a positive integer")
    import torch

    torch.set_num_threads(count)  # the manifest's torch_threads then records it (harness/manifest.py)
    return count
