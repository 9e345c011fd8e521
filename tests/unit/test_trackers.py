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
    timer = StepTimer("cpu")
    timer.begin()
    time.sleep(0.06)  # "prefill"
    before = time.perf_counter()
    assert before <= timer.stamp() <= time.perf_counter()  # the mark is returned: a perf_counter reading
    for _ in range(3):
        time.sleep(0.02)  # three decode steps
        timer.stamp()
    assert timer.steps == 4
    assert 55 <= timer.prefill_ms < 300
    assert 18 <= timer.decode_ms_per_token < 150


def test_step_timer_single_token_has_no_decode_rate():
    timer = StepTimer("cpu")
    timer.begin()
    timer.stamp()
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


def test_step_timer_keeps_raw_step_times():
    timer = StepTimer("cpu")
    timer.begin()
    for pause in (0.04, 0.01, 0.01):
        time.sleep(pause)
        timer.stamp()
    timer.finish()
    steps = timer.step_ms
    assert len(steps) == 3 and timer.clock == "perf_counter"
    assert sum(steps) == pytest.approx(timer.offsets_ms[-1])
    assert steps[0] == pytest.approx(timer.prefill_ms)
    assert timer.decode_ms == pytest.approx(steps[1] + steps[2])
    assert 35 <= steps[0] < 300 and all(8 <= s < 150 for s in steps[1:])


def _row(i: int, batch: int, size: int, **over) -> dict:
    row = {"id": f"s{i}", "batch_index": batch, "batch_size": size, "batch_steps": 5, "latency_ms": 100.0,
           "preprocess_ms": 10.0, "generate_ms": 80.0, "postprocess_ms": 2.0, "prefill_ms": 30.0,
           "ttft_ms": 40.0, "decode_ms": 44.0, "decode_ms_per_token": 11.0, "generated_tokens": 5,
           "prompt_tokens": 50, "image_tokens": 20}
    return {**row, **over}


def test_breakdown_splits_each_batch_exactly():
    from harness.trackers import batch_records, latency_breakdown

    rows = [_row(0, 0, 2), _row(1, 0, 2, generated_tokens=3), _row(2, 1, 1, latency_ms=60.0, generate_ms=45.0,
                                                                    decode_ms=0.0, batch_steps=1, prefill_ms=44.0)]
    records = batch_records(rows)
    assert [r["samples"] for r in records] == [2, 1]
    first = records[0]
    assert first["generate_tail_ms"] == pytest.approx(80.0 - 30.0 - 44.0)
    assert first["overhead_ms"] == pytest.approx(100.0 - 10.0 - 80.0 - 2.0)
    assert first["decode_steps"] == 4 and first["decode_slots"] == 8 and first["generated_tokens"] == 8
    totals = latency_breakdown(rows)["totals"]
    assert totals["end_to_end_ms"] == pytest.approx(160.0)
    parts = ("preprocess_ms", "prefill_ms", "decode_ms", "generate_tail_ms", "postprocess_ms", "overhead_ms")
    assert sum(totals[k] for k in parts) == pytest.approx(totals["end_to_end_ms"])
    assert totals["decode_steps"] == 4 and totals["prompt_tokens"] == 150


def test_breakdown_without_step_times_keeps_generate_whole():
    from harness.trackers import latency_breakdown

    rows = [_row(0, 0, 1, prefill_ms=None, decode_ms=None, decode_ms_per_token=None)]
    out = latency_breakdown(rows)
    assert out["step_timed"] is False and out["totals"]["prefill_ms"] is None
    assert out["totals"]["overhead_ms"] == pytest.approx(8.0)


def test_summarize_latency_throughput_on_known_rows():
    from harness.engine.bench import summarize_latency

    rows = [_row(i, i // 4, 4) for i in range(8)]  # two batches of 4, 100 ms each, 5 tokens per answer
    out = summarize_latency(rows, clock="perf_counter")
    assert out["samples_per_s"] == pytest.approx(8 / 0.2)
    assert out["generated_tokens_per_s"] == pytest.approx(40 / 0.2)
    assert out["batch_size"] == 4 and out["batches"] == 2 and out["timed_samples"] == 8
    for key in ("latency_ms", "prefill_ms", "ttft_ms", "decode_ms_per_token", "generated_tokens", "decode_steps"):
        assert set(out[key]) >= {"mean", "p50", "p90", "p95"}, key
    assert out["decode_steps"]["mean"] == 4 and out["ttft_ms"]["p50"] == 40.0
    assert "perf_counter" in out["how"] and out["breakdown"]["batches"] == 2


def test_memory_tracker_says_what_was_available():
    with MemoryTracker("cpu", interval_s=0.005) as tracker:
        time.sleep(0.03)
    result = tracker.result
    assert result["available"] == ["rss_peak_mb"]
    assert set(result["unavailable"]) == {"torch_max_allocated_mb", "torch_max_reserved_mb", "nvml_peak_used_mb"}
    assert result["unavailable_reasons"]["nvml_peak_used_mb"] == "not a CUDA device"
    assert result["rss_peak_mb"] >= result["rss_at_start_mb"] > 0 and result["samples_taken"] >= 2


def test_sweep_rows_pick_the_best_batch_size():
    from harness.engine.sweep import sweep_rows, sweep_table

    def result(bs, sps, rss):
        return {"spec": {"model": "m", "variant": "base", "batch_size": bs},
                "latency": {"samples_per_s": sps, "generated_tokens_per_s": sps * 5,
                            "latency_ms": {"p50": 1000.0 * bs / sps}, "decode_ms_per_token": {"p50": 10.0}},
                "memory": {"rss_peak_mb": rss}}

    rows = sweep_rows([result(8, 9.0, 1200), result(1, 2.0, 1000), result(4, 7.0, 1100)])
    assert [r["batch_size"] for r in rows] == [1, 4, 8]
    assert [r["best"] for r in rows] == [False, False, True]
    assert rows[2]["speedup"] == pytest.approx(4.5)
    assert "8 ★" in sweep_table([result(8, 9.0, 1200), result(1, 2.0, 1000)])
