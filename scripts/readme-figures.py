#!/usr/bin/env python3
"""Regenerate the README's smoke figures and docs/leaderboard-smoke.png from one real run.

Runs `harness bench --all --preset smoke` from a clean cache (fresh HARNESS_CACHE_DIR, results,
checkpoints and page under a temporary folder), measures its wall time, screenshots the page's
index.html with headless Chromium, and rewrites each `<!-- figures:NAME -->...<!-- /figures -->` span
of the README with what that run produced, so no figure is typed in by hand.

    python3 scripts/readme-figures.py                    # rewrite README.md and docs/leaderboard-smoke.png
    python3 scripts/readme-figures.py --readme /tmp/R.md --png /tmp/s.png -- --model smolvlm --limit 4
                                                         # try it out elsewhere (extra args go to bench)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
MARKER = re.compile(r"<!-- figures:(?P<name>[a-z0-9-]+) -->(?P<body>.*?)<!-- /figures -->", re.S)
WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
TABLE_ROWS = 4  # the README shows the page trimmed to its first rows


def fail(message: str) -> None:
    sys.exit(f"readme-figures: {message}")


def run_smoke(root: Path, extra: list[str]) -> tuple[float, float, Path]:
    """(wall seconds, load average, page) of one smoke bench in fresh folders under `root`."""
    env = {**os.environ, "HARNESS_CACHE_DIR": str(root / "cache"), "HARNESS_RESULTS_DIR": str(root / "results"),
           "HARNESS_CHECKPOINTS_DIR": str(root / "checkpoints"), "HARNESS_CONFIG_DIR": str(REPO)}
    for key in ("HARNESS_PRESET", "HARNESS_VERBOSE"):
        env.pop(key, None)
    page = root / "board" / "LEADERBOARD.md"
    argv = [sys.executable, "-m", "harness.cli", "bench", *(extra or ["--all"]), "--preset", "smoke",
            "--leaderboard", str(page)]
    print("running:", " ".join(argv[2:]), file=sys.stderr)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE)
    wall = time.perf_counter() - start
    load = os.getloadavg()[0]  # the 1-minute average at the end: the run's own load plus anyone else's
    if done.returncode != 0:
        fail(f"the smoke bench exited {done.returncode}; README left unchanged")
    return wall, load, page


def screenshot(index: Path, png: Path, tmp: Path) -> None:
    """The same headless-Chromium call as tests/integration/test_leaderboard_html.py's screenshot."""
    browser = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if browser is None:
        fail("headless Chromium not installed (apt-get install -y chromium); README left unchanged")
    shot = tmp / "page.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp / 'profile'}", "--hide-scrollbars", "--window-size=1280,1600",
           f"--screenshot={shot}", index.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not shot.is_file() or not shot.read_bytes().startswith(b"\x89PNG"):
        fail(f"chromium did not write a screenshot: {done.stderr.strip().splitlines()[-1:]}")
    png.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, png)


def trimmed_page(page: Path) -> str:
    """The page's banner and the head and first rows of its first table, as the README shows it."""
    lines = page.read_text().splitlines()
    banner = next((line for line in lines if line.startswith("> ")), None)
    start = next((i for i, line in enumerate(lines) if line.startswith("| # |")), None)
    if banner is None or start is None:
        fail(f"{page}: no banner or results table to show")
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))[:2 + TABLE_ROWS]
    return "\n```markdown\n" + banner + "\n\n" + "\n".join(table) + "\n```\n"


def figures(root: Path, wall: float, load: float, page: Path) -> dict[str, str]:
    finetunes = len(list((root / "checkpoints").glob("*/training.json")))
    runs = len(list((root / "results").glob("*/result.json")))
    results = [json.loads(p.read_text()) for p in (root / "results").glob("*/result.json")]
    hardware = {r["manifest"].get("cpu_count") for r in results}

    def count(n: int, what: str) -> str:
        return f"{WORDS.get(n, n)} {what}{'' if n == 1 else 's'}"

    return {
        "smoke-time": f"**{wall:.0f} s**" if wall < 120 else f"**{wall // 60:.0f} min {wall % 60:.0f} s**",
        "smoke-counts": f"{count(finetunes, 'fine-tune')}, {count(runs, 'bench run')}",
        "smoke-load": f"~{load:.1f}",
        "smoke-cores": f"{hardware.pop() if len(hardware) == 1 else os.cpu_count()}-core",
        "smoke-table": trimmed_page(page),
    }


def rewrite(text: str, values: dict[str, str]) -> str:
    """`text` with every marked span replaced; a marker without a figure, or a figure without a marker, stops."""
    found = {m.group("name") for m in MARKER.finditer(text)}
    if found != set(values):
        fail(f"README markers {sorted(found)} do not match the figures {sorted(values)}")

    def body(match: re.Match) -> str:
        return f"<!-- figures:{match.group('name')} -->{values[match.group('name')]}<!-- /figures -->"

    return MARKER.sub(body, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md", help="the README to rewrite")
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "leaderboard-smoke.png",
                        help="where the screenshot goes")
    parser.add_argument("bench_args", nargs="*", help="after --: arguments for `harness bench` instead of --all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="readme-figures-") as tmp:
        root = Path(tmp)
        wall, load, page = run_smoke(root, args.bench_args)
        screenshot(page.parent / "index.html", args.png, root)
        values = figures(root, wall, load, page)
        args.readme.write_text(rewrite(args.readme.read_text(), values))
    for name, value in values.items():
        print(f"{name}: {value.strip()}")
    print(f"wrote {args.readme} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
