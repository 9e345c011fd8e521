"""Measurement: clocks that respect device asynchrony, memory peaks from three sources, and the
exact split of a batch's time into preprocess, prefill, decode and the rest."""

from harness.trackers.breakdown import batch_records, latency_breakdown
from harness.trackers.latency import StepTimer, Stopwatch, summarize, synchronize
from harness.trackers.memory import PEAK_KEYS, MemoryTracker, peak_memory

__all__ = ["PEAK_KEYS", "MemoryTracker", "StepTimer", "Stopwatch", "batch_records", "latency_breakdown",
           "peak_memory", "summarize", "synchronize"]
