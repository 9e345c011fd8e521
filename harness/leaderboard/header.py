"""The page header: what was run (data, hardware, software, date) and how the statistics were made."""

from __future__ import annotations

from collections.abc import Iterable

from harness.leaderboard.analyze import Analysis
from harness.leaderboard.doc import Block, Bullets, Code, Heading, Inline
from harness.leaderboard.stats import clusters_for

__all__ = ["header_blocks"]

PACKAGES = ("torch", "transformers", "peft")


def _distinct(values: Iterable) -> list:
    return list(dict.fromkeys(v for v in values if v not in (None, "")))


def _data_lines(a: Analysis) -> list[list[Inline]]:
    lines = []
    for key in _distinct(e.data_key for e in a.entries):
        group = [e for e in a.entries if e.data_key == key]
        spec, first = group[0].primary.spec, group[0].primary
        sizes = _distinct(len(e.primary.samples) or e.primary.result.get("num_samples") for e in group)
        charts = {s.get("image_id") for s in first.samples}
        revision = spec.get("dataset_revision")
        fingerprint = str(first.manifest.get("dataset_fingerprint") or "?")[:12]
        line: list[Inline] = ["Data set: ", Code(str(spec.get("dataset"))),
                              f" at revision {revision}" if revision else " (no pinned revision)",
                              ", split ", Code(str(spec.get("split"))),
                              f", {' / '.join(str(n) for n in sizes)} questions"]
        if charts and None not in charts and len(charts) < len(first.samples):
            line.append(f" on {len(charts)} charts")
        if spec.get("limit"):
            line.append(f" (limited to the first {spec['limit']})")
        line += [", fingerprint ", Code(fingerprint), ", benchmark ", Code(str(spec.get("benchmark"))),
                 f" v{spec.get('benchmark_version')}"]
        if spec.get("preset"):
            line += [", preset ", Code(str(spec["preset"]))]
        lines.append(line)
        skipped = _skipped(group)
        if skipped:
            lines.append(skipped)
    return lines


SHOWN_SKIPPED = 5  # skipped samples named on the page; result.json holds them all


def _skipped(group) -> list[Inline]:
    """The samples a data set's runs left out (never a silent drop): "2 samples skipped: test-3 (image: ...)"."""
    rows = {s.get("id"): s for e in group for r in e.runs for s in (r.result.get("skipped_samples") or [])}
    if not rows:
        return []
    shown = "; ".join(f"{i} ({s.get('field')}: {s.get('reason')})" for i, s in list(rows.items())[:SHOWN_SKIPPED])
    more = f"; and {len(rows) - SHOWN_SKIPPED} more (result.json skipped_samples)" if len(rows) > SHOWN_SKIPPED else ""
    return [f"{len(rows)} sample{'s' if len(rows) != 1 else ''} skipped (not scored, still in the fingerprint): "
            f"{shown}{more}"]


def _runs(a: Analysis):
    return [run for e in a.entries for run in e.runs]


def _software(a: Analysis) -> list[Inline]:
    runs = _runs(a)
    harness = _distinct(f"{r.manifest.get('harness_version')} (git {str(r.manifest.get('harness_git_sha'))[:10]})"
                        for r in runs)
    packages = []
    for name in PACKAGES:
        versions = _distinct((r.manifest.get("packages") or {}).get(name) for r in runs)
        if versions:
            packages.append(f"{name} {' / '.join(versions)}")
    out: list[Inline] = [f"Harness {', '.join(harness)}"]
    if packages:
        out.append("; " + ", ".join(packages))
    return out


def _decoding(a: Analysis) -> list[Inline]:
    out: list[Inline] = ["Decoding (same for every variant of a model): "]
    for d in _distinct(str({k: v for k, v in (e.primary.spec.get("decoding") or {}).items() if v is not None})
                       for e in a.entries):
        out.append(Code(d.strip("{}").replace("'", "")))
    suffixes = _distinct(e.primary.spec.get("prompt_suffix") for e in a.entries)
    if suffixes:
        out += ["; prompt suffix ", *(Code(s) for s in suffixes)]
    return out


def header_blocks(a: Analysis) -> list[Block]:
    if not a.entries:
        return []
    runs = _runs(a)
    hardware = _distinct(r.hardware for r in runs)
    dates = sorted(_distinct(r.finished for r in runs))
    o = a.options
    clustered = [e for e in a.entries if clusters_for(e.primary.samples) is not None]
    items: list[list[Inline]] = [
        *_data_lines(a),
        ["Hardware: " + "; ".join(f"{hw} ({sum(r.hardware == hw for r in runs)} runs)" for hw in hardware)],
        ["Models: ", *_join(Code(f"{e.model} = {e.primary.spec.get('model_id')}"
                                 + (f"@{str(e.primary.spec['model_revision'])[:12]}"
                                    if e.primary.spec.get("model_revision") else ""))
                            for e in a.entries if e.variant == "base")],
        _software(a),
        ["Date: runs finished " + (" to ".join([dates[0], dates[-1]] if len(dates) > 1 else dates) or "?")
         + " (UTC)"],
        _decoding(a),
        [f"Statistics: {o.confidence:.0%} percentile bootstrap intervals, {o.n_resamples} resamples, seed {o.seed}"
         + ("; resampling whole charts (clustered by image)" if clustered else "; resampling questions")
         + "; paired tests per base/fine-tuned pair (McNemar for accuracy, paired bootstrap for ROUGE and BLEU)"],
    ]
    return [Heading(2, "What was run", anchor="what"), Bullets(items)]


def _join(items: Iterable[Inline]) -> list[Inline]:
    out: list[Inline] = []
    for item in items:
        if out:
            out.append(", ")
        out.append(item)
    return out
