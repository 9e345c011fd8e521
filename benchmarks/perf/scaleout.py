"""Wall time of the smoke bench on 1 vs 2 CPU worker processes (a local Ray, `--runner ray --shards N`).

    python benchmarks/perf/scaleout.py [--model smolvlm] [--limit 64]

Each measurement is a fresh process with a local Ray of N CPUs and fresh results (the twin and data cache
is warmed first and shared), base variants only, so it times the bench and not fine-tunes. On a shared
2-core machine the ratio stays well under 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys, ray
from harness.cli import main
ray.init(num_cpus={n}, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
         runtime_env={{"env_vars": {{"PYTHONPATH": {repo!r}}}}})
sys.exit(main({argv!r}))
"""


def _bench(n: int, models: list[str], limit: int, root: Path, cache: Path) -> float:
    argv = ["bench", *[a for m in models for a in ("--model", m)], "--variant", "base", "--preset", "smoke",
            "--limit", str(limit), "--no-leaderboard", "--runner", "ray", "--shards", str(n)]
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "HARNESS_RESULTS_DIR": str(root / f"results-{n}"),
           "HARNESS_CHECKPOINTS_DIR": str(root / "checkpoints"), "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD.format(n=n, repo=str(REPO), argv=argv)], env=env, check=True,
                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _card_names() -> list[str]:
    """The registered cards (models/*.yaml): what `--model` accepts."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HARNESS_CONFIG_DIR", str(REPO))
    from harness.registry import list_models

    return [card.name for card in list_models()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", choices=_card_names(),
                        help="registered cards to bench, repeatable (default: smolvlm)")
    parser.add_argument("--limit", type=int, default=64, help="samples per run (default: the smoke test split)")
    args = parser.parse_args()
    models = args.model or ["smolvlm"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = Path(os.environ.get("HARNESS_CACHE_DIR") or root / "cache")
        _bench(1, models, 2, root / "warm", cache)  # builds the twins and the synthetic data once
        one = _bench(1, models, args.limit, root, cache)
        two = _bench(2, models, args.limit, root, cache)
    print(f"smoke bench ({', '.join(models)}, {args.limit} samples/run, {os.cpu_count()} cores): "
          f"1 worker {one:.1f}s, 2 workers {two:.1f}s, ratio {one / two:.2f}x "
          "(wall time incl. Ray start and model load per worker)")


if __name__ == "__main__":
    main()
