"""Small helpers shared by tests (not fixtures): reading stored runs."""

from __future__ import annotations

import json
from pathlib import Path


def read_results(results_dir: Path) -> dict[tuple[str, str, int], dict]:
    """(model, variant, batch size) -> result.json of every finished run under the folder."""
    out = {}
    for path in Path(results_dir).glob("*/result.json"):
        result = json.loads(path.read_text())
        spec = result["spec"]
        result["_dir"] = str(path.parent)
        out[(spec["model"], spec["variant"], spec["batch_size"])] = result
    return out


def read_samples(run_dir: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "samples.jsonl").read_text().splitlines()]


def plan_runs(models, variants=("base",), **request):
    """RunSpecs the planner makes for these models and variants (BenchRequest fields as keywords)."""
    from harness.plan import BenchRequest, plan

    for key in ("batch_sizes", "sets", "decoding"):
        if key in request:
            request[key] = tuple(request[key])
    return list(plan(BenchRequest(models=tuple(models), variants=tuple(variants), **request)).runs)


def plan_ft(model, **request):
    """The FinetuneSpec the planner makes for `model` (BenchRequest fields as keywords)."""
    from harness.plan import BenchRequest, plan_finetune
    from harness.registry import load_model

    if "sets" in request:
        request["sets"] = tuple(request["sets"])
    return plan_finetune(load_model(model), BenchRequest(models=(model,), **request))


def finetune_sets(**values):
    """{'epochs': 7} -> the --set pairs for finetune.epochs=7."""
    return tuple((("finetune", key), value) for key, value in values.items())


def twin_adapter(model, cache, **kwargs):
    """The model's offline twin, loaded through the same facts the planner puts in a smoke spec."""
    from harness.adapters import open_adapter

    spec = plan_runs([model], preset="smoke")[0]
    return open_adapter(spec.model_facts, spec.model_id, None, dtype="float32", device="cpu", cache=Path(cache),
                        **kwargs)


def finetune_dir(checkpoints: Path, model: str) -> Path:
    """The one finished fine-tune of `model` under a checkpoints folder (folders are named by fine-tune id)."""
    found = [p.parent for p in Path(checkpoints).glob(f"{model}-ft-*/training.json")]
    assert len(found) == 1, f"expected one fine-tune of {model} in {checkpoints}, found {found}"
    return found[0]


def execute_spec(spec, paths):
    """Run one planned spec in process, into the folder the orchestrator gives it (spec.json first)."""
    from harness.execute import execute
    from harness.orchestrate import prepare_job

    job = prepare_job(spec, paths)
    return execute(spec, job.folder, checkpoints=paths.checkpoints, cache=paths.cache)


def synthetic_examples(cache, name: str, n: int, seed: int) -> list:
    """`n` synthetic training examples, generated once per cache folder under `name`."""
    from harness.data import write_synthetic
    from harness.data.load import load_split

    folder = Path(cache) / name
    if not folder.exists():
        write_synthetic(folder, sizes={"train": n, "val": 0, "test": 0}, seed=seed)
    return list(load_split(str(folder), "train"))


# --- registry queries: tests take their model lists from the cards, never from a hard-coded list ------

def can_finetune(card) -> bool:
    """The planner's rule (plan.py): a card fine-tunes unless `supports: finetune: []` says it cannot."""
    return card.supports.get("finetune") != []


def batches(card) -> bool:
    """Real batched generation (moondream2025's `batching: none ...` runs queries one at a time)."""
    return not str(card.supports.get("batching") or "").startswith("none")


def runs_here(card) -> bool:
    """This interpreter satisfies the card's pins (`harness doctor`), so it runs with --runner local."""
    from harness.doctor import check_card

    return not check_card(card)


def models_where(keep=lambda card: True, *, one_per: str | None = None) -> list[str]:
    """Names of the registered cards for which `keep(card)` holds, sorted.

    `one_per="adapter"` (or "image", "family", any card field) keeps the first such card of each value:
    a bounded, registry-driven selection for heavy tests of code that is shared within a group, so
    that adding cards does not multiply CI time.
    """
    from harness.registry import list_models

    chosen, seen = [], set()
    for card in list_models():
        if not keep(card):
            continue
        group = getattr(card, one_per) if one_per else card.name
        if group not in seen:
            seen.add(group)
            chosen.append(card.name)
    return chosen
