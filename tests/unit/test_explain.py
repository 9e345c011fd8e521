"""`harness explain`: known runs in, the right cause with the right share out.

Runs are built from synthetic per-sample rows with exactly known times, through the same
`summarize_latency` the bench uses, so the arithmetic can be checked to the millisecond.
"""

from __future__ import annotations

import json

import pytest

from harness.analysis import explain_pair, find_pairs, load_run
from harness.cli import main
from harness.engine.bench import summarize_latency

FACTORS = {
    "dtype": "bfloat16", "param_dtype": "bfloat16", "attn_implementation": "sdpa", "quantization": None,
    "adapter": "none", "adapter_merged": False, "num_beams": 1, "max_new_tokens": 32, "min_new_tokens": 0,
    "do_sample": False, "temperature": None, "top_p": None, "top_k": None, "repetition_penalty": 1.0,
    "batch_size": 1, "processor_kwargs": {}, "prompt_suffix": "?", "device": "cuda", "hardware": "NVIDIA L4",
    "torch_threads": 8, "torch": "2.5.0", "transformers": "4.49.0", "peft": "0.13.0",
}


def make_run(run_id: str, *, samples: int = 8, batch_size: int = 1, preprocess: float = 20.0, prefill: float = 100.0,
             steps: int = 10, per_step: float = 5.0, postprocess: float = 1.0, tail: float = 0.5,
             overhead: float = 0.25, prompt_tokens: int = 200, image_tokens: int = 150, answer: str = "42",
             variant: str = "base", **factors) -> tuple[dict, list[dict]]:
    """A finished run whose every batch took exactly the given times (ms)."""
    rows = []
    decode = per_step * (steps - 1)
    generate = prefill + decode + tail
    latency = preprocess + generate + postprocess + overhead
    for i in range(samples):
        batch = i // batch_size
        rows.append({
            "id": f"s{i}", "image_id": f"img{i // 2}", "query": "q", "references": ["42"], "prediction": answer,
            "raw_output": answer, "meta": {}, "scores": {}, "generated_tokens": steps, "prompt_tokens": prompt_tokens,
            "image_tokens": image_tokens, "batch_index": batch, "batch_size": batch_size, "batch_steps": steps,
            "latency_ms": latency, "preprocess_ms": preprocess, "generate_ms": generate,
            "postprocess_ms": postprocess, "prefill_ms": prefill, "ttft_ms": preprocess + prefill,
            "decode_ms": decode, "decode_ms_per_token": per_step if steps > 1 else None,
            "step_ms": [prefill] + [per_step] * (steps - 1),
        })
    speed = {**FACTORS, "batch_size": batch_size, "variant": variant, **factors}
    result = {
        "schema_version": 1, "run_id": run_id,
        "spec": {"model": "m", "variant": variant, "batch_size": batch_size, "benchmark": "chartqa",
                 "dataset": "d", "split": "test", "limit": None, "preset": None, "device": "cuda"},
        "latency": summarize_latency(rows, clock="cuda_events"),
        "memory": {"torch_max_allocated_mb": 5000.0, "rss_peak_mb": 900.0},
        "speed_factors": speed,
    }
    return result, rows


def shares(explanation) -> dict[str, float]:
    return {c.name: c.share for c in explanation.causes}


def test_longer_answers_are_named_generated_tokens_with_the_whole_difference():
    a = make_run("base", steps=5, answer="93.2")
    b = make_run("tuned", steps=20, answer="['93.2']", variant="finetuned")
    ex = explain_pair(*a[:1], *b[:1], a[1], b[1])
    assert ex.delta_ms == pytest.approx(15 * 5.0)
    assert shares(ex) == pytest.approx({"generated_tokens": 1.0})
    cause = ex.causes[0]
    assert cause.name == "generated_tokens" and cause.delta_ms == pytest.approx(75.0)
    assert "19.0 vs 4.0 decode steps" in cause.sentence and "20.0 vs 5.0 tokens per answer" in cause.sentence
    assert "`['93.2']`" in cause.sentence
    assert "100%" in cause.sentence


def test_four_beams_are_named_num_beams_with_the_whole_difference():
    a = make_run("greedy", prefill=100.0, per_step=5.0)
    b = make_run("beams", prefill=300.0, per_step=15.0, num_beams=4)
    ex = explain_pair(a[0], b[0], a[1], b[1])
    assert ex.delta_ms == pytest.approx(200.0 + 9 * 10.0)
    assert shares(ex) == pytest.approx({"num_beams": 1.0})
    cause = ex.causes[0]
    assert cause.reasons == ("num_beams",)
    assert set(cause.terms) == {"prefill_rate", "decode_rate"}
    assert "num_beams 4 vs 1" in cause.sentence
    assert [c.factor for c in ex.config if c.differs] == ["num_beams"]


def test_tokens_and_per_token_split_exactly_with_the_midpoint_rule():
    # A: 9 decode steps at 5 ms; B: 19 at 8 ms, other dtype. Token part 10 x 6.5, rate part 3 x 14.
    a = make_run("a", steps=10, per_step=5.0, prefill=100.0)
    b = make_run("b", steps=20, per_step=8.0, prefill=100.0, dtype="float32", param_dtype="float32")
    ex = explain_pair(a[0], b[0], a[1], b[1])
    total = 19 * 8.0 - 9 * 5.0
    assert ex.delta_ms == pytest.approx(total)
    got = shares(ex)
    assert got["generated_tokens"] == pytest.approx(65.0 / total)
    assert got["dtype"] == pytest.approx(42.0 / total)
    assert sum(got.values()) == pytest.approx(1.0)


def test_more_image_tokens_are_named_image_tokens():
    a = make_run("a", prompt_tokens=200, image_tokens=150, prefill=100.0)
    b = make_run("b", prompt_tokens=400, image_tokens=350, prefill=200.0)
    ex = explain_pair(a[0], b[0], a[1], b[1])
    assert shares(ex) == pytest.approx({"image_tokens": 1.0})
    assert "350 vs 150 image tokens" in ex.causes[0].sentence


def test_unexplained_remainder_and_shares_sum_to_one():
    a = make_run("a", overhead=0.0, tail=0.0, preprocess=20.0)
    b = make_run("b", overhead=30.0, tail=10.0, preprocess=60.0, per_step=6.0)
    ex = explain_pair(a[0], b[0], a[1], b[1])
    got = shares(ex)
    assert sum(got.values()) == pytest.approx(1.0)
    assert ex.cause("other").delta_ms == pytest.approx(40.0)
    assert ex.cause("preprocess").delta_ms == pytest.approx(40.0)
    assert ex.cause("decode_per_token").delta_ms == pytest.approx(9.0)
    assert "no recorded setting that acts on it differs" in ex.cause("decode_per_token").sentence


def test_a_factor_that_cannot_explain_the_direction_is_not_blamed():
    # More beams, yet faster decoding (noise, other load): do not pin the speed-up on the beams.
    a = make_run("a", per_step=10.0)
    b = make_run("b", per_step=8.0, num_beams=4)
    ex = explain_pair(a[0], b[0], a[1], b[1])
    assert "num_beams" not in shares(ex) and shares(ex) == pytest.approx({"decode_per_token": 1.0})


def test_an_unmerged_adapter_is_named_for_slower_decoding():
    a = make_run("base", per_step=5.0)
    b = make_run("tuned", per_step=6.0, adapter="adapter", variant="finetuned")
    ex = explain_pair(a[0], b[0], a[1], b[1])
    assert shares(ex) == pytest.approx({"adapter": 1.0})


def test_different_batch_sizes_compare_per_sample():
    a = make_run("bs1", batch_size=1, prefill=100.0, per_step=5.0)
    b = make_run("bs8", batch_size=8, prefill=200.0, per_step=8.0)
    ex = explain_pair(a[0], b[0], a[1], b[1])
    assert ex.basis == "sample"
    # per sample: A 1 batch per sample; B 1/8 batch per sample
    lat_a = 20 + 100 + 45 + 0.5 + 1 + 0.25
    lat_b = (20 + 200 + 72 + 0.5 + 1 + 0.25) / 8
    assert ex.latency_a_ms == pytest.approx(lat_a) and ex.latency_b_ms == pytest.approx(lat_b)
    assert ex.causes[0].name == "batch_size" and ex.delta_ms < 0
    assert "faster" in ex.headline


def test_result_alone_gives_the_same_answer_as_samples():
    a = make_run("a", steps=5)
    b = make_run("b", steps=12, per_step=6.0, num_beams=2)
    with_samples = explain_pair(a[0], b[0], a[1], b[1])
    alone = explain_pair(a[0], b[0])
    assert shares(alone) == pytest.approx(shares(with_samples))
    assert alone.rows == with_samples.rows


def test_a_result_without_breakdown_or_speed_factors_is_a_one_line_error():
    # Older shapes are upgraded by the records module; the analysis reads the current one only.
    from harness.errors import HarnessError

    a, b = make_run("a", steps=5), make_run("b", steps=9)
    del b[0]["latency"]["breakdown"]
    with pytest.raises(HarnessError, match=r"run b: result.json has no latency.breakdown"):
        explain_pair(a[0], b[0])
    assert explain_pair(a[0], b[0], a[1], b[1]).causes[0].name == "generated_tokens"  # rebuilt from samples
    del a[0]["speed_factors"]
    with pytest.raises(HarnessError, match=r"run a: result.json has no speed_factors"):
        explain_pair(a[0], b[0], a[1], b[1])


def test_markdown_and_dict_forms():
    a = make_run("a")
    b = make_run("b", steps=20, per_step=6.0, num_beams=4)
    ex = explain_pair(a[0], b[0], a[1], b[1])
    md = ex.to_markdown(title="m: finetuned vs base")
    assert md.startswith("### m: finetuned vs base")
    assert "| quantity | A | B | B − A | share of difference |" in md
    assert "| num_beams | 1 | 4 |" in md
    assert md.count("\n- ") == len(ex.causes)
    data = json.loads(json.dumps(ex.to_dict()))
    assert data["delta_ms"] == pytest.approx(ex.delta_ms)
    assert {c["name"] for c in data["causes"]} == set(shares(ex))


def test_find_pairs_matches_base_and_finetuned_of_the_same_setting():
    base1, tuned1 = make_run("b1")[0], make_run("t1", variant="finetuned")[0]
    base8 = make_run("b8", batch_size=8)[0]
    tuned8 = make_run("t8", batch_size=8, variant="finetuned")[0]
    for r, variant in ((tuned1, "finetuned"), (tuned8, "finetuned")):
        r["spec"]["variant"] = variant
    pairs = find_pairs([base1, tuned1, base8, tuned8])
    assert [(a["run_id"], b["run_id"]) for a, b in pairs] == [("b1", "t1"), ("b8", "t8")]


def _store(folder, run):
    result, rows = run
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(result))
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_cli_explains_two_stored_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_PRESET", raising=False)
    results = tmp_path / "results"
    _store(results / "m-base-bs1-aaaa", make_run("m-base-bs1-aaaa"))
    _store(results / "m-finetuned-bs1-bbbb", make_run("m-finetuned-bs1-bbbb", steps=25, variant="finetuned"))
    assert main(["explain", "m-base", "m-finetuned", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "generated_tokens" in out and "100% of the difference" in out
    assert main(["explain", str(results / "m-base-bs1-aaaa"), str(results / "m-finetuned-bs1-bbbb" / "result.json"),
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["causes"][0]["name"] == "generated_tokens"
    assert main(["explain", "m-", "m-base", "--results", str(results)]) == 2  # ambiguous prefix
    assert "matches several runs" in capsys.readouterr().err


def test_load_run_reports_a_missing_run(tmp_path):
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="no finished run"):
        load_run("nope", tmp_path)
