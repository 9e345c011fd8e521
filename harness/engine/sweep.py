"""Batch-size sweep summary: throughput, latency and peak memory per batch size, from stored results.

Pure (no torch): `harness bench --batch-size 1,4,8` prints it after the runs, so a user can pick the
batch size with the best throughput that fits their device.
"""

from __future__ import annotations

from harness.trackers.memory import peak_memory

__all__ = ["sweep_rows", "sweep_table"]


def sweep_rows(results: list[dict]) -> list[dict]:
    """One row per (model, variant, batch size), sorted; speedup is samples/s over the smallest batch's."""
    rows = []
    for r in results:
        spec, lat = r["spec"], r.get("latency") or {}
        key, peak = peak_memory(r.get("memory"))
        p50 = (lat.get("latency_ms") or {}).get("p50")
        dpt = (lat.get("decode_ms_per_token") or {}).get("p50")
        rows.append({"model": spec["model"], "variant": spec["variant"], "batch_size": spec["batch_size"],
                     "samples_per_s": lat.get("samples_per_s"),
                     "generated_tokens_per_s": lat.get("generated_tokens_per_s"),
                     "latency_p50_ms": p50, "decode_ms_per_token_p50": dpt, "peak_memory_mb": peak,
                     "memory_key": key or "–"})
    rows.sort(key=lambda x: (x["model"], x["variant"], x["batch_size"]))
    smallest: dict[tuple, float] = {}
    for row in rows:
        group = (row["model"], row["variant"])
        if group not in smallest and row["samples_per_s"]:
            smallest[group] = row["samples_per_s"]
        base = smallest.get(group)
        row["speedup"] = row["samples_per_s"] / base if base and row["samples_per_s"] else None
    best: dict[tuple, dict] = {}
    for row in rows:
        group = (row["model"], row["variant"])
        if row["samples_per_s"] and (group not in best or row["samples_per_s"] > best[group]["samples_per_s"]):
            best[group] = row
    for row in rows:
        row["best"] = best.get((row["model"], row["variant"])) is row
    return rows


def sweep_table(results: list[dict]) -> str:
    """A Markdown table of `sweep_rows`; the best throughput per model variant is starred."""
    rows = sweep_rows(results)
    if not rows:
        return "No runs to compare."

    def f(value, digits=1):
        return "–" if value is None else f"{value:.{digits}f}"

    lines = ["| model | variant | batch | samples/s | tokens/s | speedup vs smallest | p50 latency ms | "
             "decode ms/token | peak memory MB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        star = " ★" if r["best"] else ""
        lines.append(f"| {r['model']} | {r['variant']} | {r['batch_size']}{star} | {f(r['samples_per_s'], 2)} | "
                     f"{f(r['generated_tokens_per_s'])} | {f(r['speedup'], 2)}x | {f(r['latency_p50_ms'])} | "
                     f"{f(r['decode_ms_per_token_p50'], 2)} | {f(r['peak_memory_mb'], 0)} ({r['memory_key']}) |")
    return "\n".join(lines)
