"""Example predictions per model: a few right and a few wrong answers next to the chart thumbnail.

Thumbnails come from each run's thumbs/ folder and are copied into the page's assets, so the page
links only relative files. Model output is passed on as plain text; the renderers escape it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from harness.leaderboard.doc import Block, Cell, Heading, Img, Para, Table
from harness.leaderboard.load import Entry
from harness.leaderboard.markdown import one_line

__all__ = ["example_blocks", "pick_examples"]

PER_KIND = 3  # right answers and wrong answers shown per model
TEXT_LIMIT = 80
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _correct(sample: dict) -> bool:
    return (sample.get("scores") or {}).get("relaxed_accuracy", 0.0) >= 1.0


def _asset_name(fingerprint: str, sample_id: str) -> str:
    safe = _SAFE.sub("_", sample_id)[:60]
    if safe != sample_id:
        safe += "-" + hashlib.sha1(sample_id.encode()).hexdigest()[:8]
    return f"assets/thumbs/{(fingerprint or 'data')[:8]}-{safe}.png"


def _thumb(entries: list[Entry], sample_id: str) -> Path | None:
    for e in entries:
        for run in e.runs:
            path = run.thumbnail(sample_id)
            if path is not None:
                return path
    return None


def pick_examples(entries: list[Entry]) -> list[str]:
    """Sample ids: up to PER_KIND the last variant got right and PER_KIND it got wrong.

    Only samples every variant answered; charts with a stored thumbnail first, then answers where the
    variants disagree (what fine-tuning changed), then data set order. Deterministic.
    """
    by_id = [{s.get("id"): s for s in e.primary.samples} for e in entries]
    shared = [s.get("id") for s in entries[0].primary.samples if all(s.get("id") in d for d in by_id)]
    last = by_id[-1]

    def priority(item: tuple[int, str]) -> tuple:
        pos, sid = item
        verdicts = {_correct(d[sid]) for d in by_id}
        return (_thumb(entries, sid) is None, len(verdicts) == 1, pos)

    ranked = [sid for _, sid in sorted(enumerate(shared), key=priority)]
    right = [sid for sid in ranked if _correct(last[sid])][:PER_KIND]
    wrong = [sid for sid in ranked if not _correct(last[sid])][:PER_KIND]
    order = {sid: i for i, sid in enumerate(shared)}
    return sorted(right, key=order.get) + sorted(wrong, key=order.get)


def _answer(sample: dict) -> Cell:
    ok = _correct(sample)
    return Cell(("✓ " if ok else "✗ ") + one_line(sample.get("prediction", ""), TEXT_LIMIT), sort=int(ok))


def example_blocks(groups: list[list[Entry]], multi_hardware: bool) -> tuple[list[Block], dict[str, bytes]]:
    """One table per model (and hardware): chart, question, references, each variant's answer."""
    blocks: list[Block] = []
    assets: dict[str, bytes] = {}
    for entries in groups:
        ids = pick_examples(entries)
        if not ids:
            continue
        head = entries[0]
        title = f"{head.model} on {head.hardware}" if multi_hardware else head.model
        blocks.append(Heading(3, title, anchor=f"examples-{_SAFE.sub('-', title)}"))
        by_id = [{s.get("id"): s for s in e.primary.samples} for e in entries]
        fingerprint = str(head.primary.manifest.get("dataset_fingerprint") or "")
        rows = []
        for sid in ids:
            first = by_id[0][sid]
            thumb = _thumb(entries, sid)
            chart: object = "–"
            if thumb is not None:
                name = _asset_name(fingerprint, str(sid))
                assets[name] = thumb.read_bytes()
                chart = Img(name, f"chart of {sid}", width=160)
            meta = first.get("meta") or {}
            kind = meta.get("question_type") or ""
            rows.append([
                chart, one_line(sid), one_line(first.get("query", ""), 160) + (f" ({kind})" if kind else ""),
                " / ".join(one_line(r, TEXT_LIMIT) for r in first.get("references") or []),
                *(_answer(d[sid]) for d in by_id),
            ])
        blocks.append(Table(["chart", "sample", "question", "reference", *(f"{e.variant} answer" for e in entries)],
                            rows, name=f"examples-{_SAFE.sub('-', title)}"))
    if blocks:
        blocks.insert(0, Para([f"Up to {PER_KIND} answers the last variant got right and {PER_KIND} it got wrong "
                               "(relaxed accuracy), preferring charts with a stored thumbnail and questions where "
                               "the variants disagree. ✓ correct, ✗ wrong; ⏎ marks a newline in the model output; "
                               f"answers are cut at {TEXT_LIMIT} characters. Click a thumbnail to enlarge it."]))
    return blocks, assets
