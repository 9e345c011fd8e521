"""Shared set-up of the harness benchmarks: one smoke twin, its synthetic test split, a bench spec.

Not a benchmark itself. Everything lands in a cache folder (HARNESS_CACHE_DIR, else a temp folder),
so a second run reuses the twin and the charts.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("HARNESS_CONFIG_DIR", str(REPO))
sys.path.insert(0, str(REPO))


def model_names() -> list[str]:
    """The registered cards (models/*.yaml): what `--model` accepts."""
    from harness.registry import list_models

    return [card.name for card in list_models()]


@dataclass
class Twin:
    adapter: object
    data: object
    spec: object  # a RunSpec at the first batch size asked for
    manifest: dict
    cache: Path


def open_twin(model: str, samples: int, batch_size: int, threads: int | None = None) -> Twin:
    """Load the model's smoke twin (CPU, float32) and the first `samples` synthetic test charts."""
    import torch

    from harness.adapters import open_adapter
    from harness.data import load_split
    from harness.execute import materialize_dataset
    from harness.manifest import environment_manifest
    from harness.plan import BenchRequest, plan

    if threads:
        torch.set_num_threads(threads)
    cache = Path(os.environ.get("HARNESS_CACHE_DIR") or Path(tempfile.gettempdir()) / "harness-perf-cache")
    request = BenchRequest(models=(model,), variants=("base",), preset="smoke", limit=samples,
                           batch_sizes=(batch_size,))
    (spec,) = plan(request).runs
    source = materialize_dataset(spec, cache)
    data = load_split(source, spec.split, limit=samples, revision=spec.dataset_revision)
    adapter = open_adapter(spec.model_facts, spec.model_id, spec.model_revision, dtype=spec.dtype,
                           device=spec.device, cache=cache)
    manifest = {**environment_manifest(adapter.request.device), "dtype": spec.dtype}
    return Twin(adapter, data, spec, manifest, cache)


def bench_once(twin: Twin, spec) -> tuple[float, dict]:
    """One full `run_bench` (warm-up, timed batches, scoring, storing) into a fresh folder: (wall s, result)."""
    import time

    from harness.engine import run_bench
    from harness.store import RunStore

    with tempfile.TemporaryDirectory(prefix="harness-perf-") as tmp:
        store = RunStore.under(tmp, spec)
        start = time.perf_counter()
        result = run_bench(spec, store, twin.adapter, twin.data, twin.manifest)
        return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def describe_machine() -> str:
    import platform

    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}")
