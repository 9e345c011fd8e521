"""Which runs may be compared: the one rule for the leaderboard's pairs, `explain`'s pairs and groups.

Two runs are comparable when they answered the same questions on the same kind of hardware:

- the same samples: benchmark, dataset, dataset revision, split, the data's fingerprint (what was
  actually read, so a synthetic recipe or a changed file shows) and `limit` (a limited run is never
  paired with a full one);
- the same hardware as the manifest names it (GPU name, or CPU and core count).
- the same inference backend (transformers or vLLM): a vLLM "batch" is one engine call with continuous
  batching, so its latencies do not mean what a transformers run's do (harness/backends/metrics.py);
  `harness compare` (analysis/parity.py) is the report for runs that differ in backend.

Then their accuracies pair per question and their latencies differ only by what the runs set
differently (model, variant, decoding, batch size, library versions, ...), which `explain` names.
Everything else (which model, which variant, which batch size) is what a comparison looks at, so it
is left to the caller: the leaderboard pairs a variant with its base, `find_pairs` also wants the
same batch size. `comparable(a, b)` is exactly `pair_key(a) == pair_key(b)`, so grouping by the key
and testing pairs agree.
"""

from __future__ import annotations

__all__ = ["comparable", "data_key", "find_pairs", "pair_key"]


def data_key(result: dict) -> tuple:
    """What must match for two runs to be on the same samples."""
    spec, manifest = result.get("spec") or {}, result.get("manifest") or {}
    return (spec.get("benchmark"), spec.get("dataset"), spec.get("dataset_revision"), spec.get("split"),
            manifest.get("dataset_fingerprint"), spec.get("limit"))


def pair_key(result: dict) -> tuple:
    """The key comparable runs share: their data (`data_key`), their hardware and their inference backend."""
    backend = (result.get("spec") or {}).get("backend", "transformers")  # absent: recorded before backends
    return (*data_key(result), (result.get("manifest") or {}).get("hardware"), backend)


def comparable(a: dict, b: dict) -> bool:
    """Same samples on the same hardware (see the module docstring)."""
    return pair_key(a) == pair_key(b)


def find_pairs(results: list[dict]) -> list[tuple[dict, dict]]:
    """(base, other variant) pairs of comparable runs of the same model and batch size."""
    def key(r: dict) -> tuple:
        return (r["spec"]["model"], r["spec"]["batch_size"], pair_key(r))

    bases = {key(r): r for r in results if r["spec"]["variant"] == "base"}
    pairs = [(bases[key(r)], r) for r in results if r["spec"]["variant"] != "base" and key(r) in bases]
    return sorted(pairs, key=lambda p: (p[1]["spec"]["model"], p[1]["spec"]["batch_size"], p[1]["spec"]["variant"]))
