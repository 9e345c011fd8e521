"""Tracker arithmetic on known inputs: sleeps for clocks, a real allocation for RSS."""

from __future__ import annotations

import time

import pytest

from harness.trackers import MemoryTracker, StepTimer, Stopwatch, summarize


def test_stopwatch_measures_a_sleep():
    with Stopwatch("cpu") as watch:
        time.sleep(0.05)
    assert 45 <= watch.ms < 500


def test_step_timer_splits_prefill_and_decode():
    import torch

    timer = StepTimer("cpu")
    timer.begin()
    ids = torch.zeros((2, 3), dtype=torch.long)
    time.sleep(0.06)  # "prefill"
    assert not timer(ids, None).any()
    for _ in range(3):
        time.sleep(0.02)  # three decode steps
        timer(ids, None)
    assert timer.steps == 4
    assert 55 <= timer.prefill_ms < 300
    assert 18 <= timer.decode_ms_per_token < 150


def test_step_timer_single_token_has_no_decode_rate():
    import torch

    timer = StepTimer("cpu")
    timer.begin()
    timer(torch.zeros((1, 1), dtype=torch.long), None)
    assert timer.decode_ms_per_token is None and timer.prefill_ms is not None


def test_summarize_percentiles_match_numpy():
    import numpy as np

    values = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, None]
    s = summarize(values)
    clean = [v for v in values if v is not None]
    assert s["n"] == 6 and s["mean"] == pytest.approx(np.mean(clean))
    for q in (50, 90, 95):
        assert s[f"p{q}"] == pytest.approx(np.percentile(clean, q))
    assert summarize([None]) is None


def test_memory_tracker_sees_an_allocation():
    with MemoryTracker("cpu", interval_s=0.005) as tracker:
        before = tracker.report()["rss_peak_mb"]
        block = bytearray(200 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
        time.sleep(0.05)
        del block
    assert tracker.result["rss_peak_mb"] - before >= 150
    assert "torch_max_allocated_mb" in tracker.result["unavailable"]
