"""Learning-rate schedules as plain functions of the step (easy to test, identical on resume)."""

from __future__ import annotations

import math

__all__ = ["lr_factor"]


def lr_factor(step: int, total: int, warmup: int, kind: str = "cosine", floor: float = 0.0,
              warmup_start: float = 0.0) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based).

    Linear warm-up from `warmup_start` to 1 over `warmup` steps, then `kind` decay to `floor`:
    cosine, linear or constant. Moondream's official schedule is warmup_start=0.1, floor=0.1, cosine.
    """
    if warmup > 0 and step < warmup:
        return warmup_start + (1.0 - warmup_start) * (step + 1) / warmup
    if kind == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if kind == "linear":
        return floor + (1.0 - floor) * (1.0 - progress)
    if kind == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    from harness.errors import HarnessError

    raise HarnessError(f"unknown schedule '{kind}' (use cosine, linear or constant)")
