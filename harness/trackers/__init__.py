"""Measurement: clocks that respect device asynchrony, memory peaks from three sources."""

from harness.trackers.latency import StepTimer, Stopwatch, summarize
from harness.trackers.memory import MemoryTracker

__all__ = ["MemoryTracker", "StepTimer", "Stopwatch", "summarize"]
