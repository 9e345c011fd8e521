"""The bench loop: batches, generation with per-step timing, per-sample records."""

from harness.engine.bench import run_bench

__all__ = ["run_bench"]
