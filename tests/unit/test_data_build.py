"""build_pjn_charts: the ChartQA -> PJN_CHARTS recipe on a small fake ChartQA made here."""

from __future__ import annotations

import io
import os

import datasets
import numpy as np
import pytest
from datasets import ClassLabel, Features, Image, Value
from PIL import Image as PILImage

from harness.data import build_pjn_charts, load_split
from harness.errors import HarnessError

CHARTQA_FEATURES = Features(
    {
        "image": Image(),
        "query": Value("string"),
        "label": datasets.Sequence(Value("string")),
        "human_or_machine": ClassLabel(names=["human", "machine"]),
    }
)
SIZES = {"train": 6, "val": 3, "test": 3}


def _png(i: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGBA", (12, 8), (i % 256, 40, 90, 255)).save(out, format="PNG")
    return out.getvalue()


def _fake_split(name: str, n: int) -> datasets.Dataset:
    flags = [0 if i % 3 else 1 for i in range(n)]  # two of every three rows human-written
    return datasets.Dataset.from_dict(
        {
            "image": [{"bytes": _png(i), "path": None} for i in range(n)],
            "query": [f"{name} {'human' if f == 0 else 'machine'} question {i}" for i, f in enumerate(flags)],
            "label": [[f"{i}"] for i in range(n)],
            "human_or_machine": flags,
        },
        features=CHARTQA_FEATURES,
    )


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def chartqa(tmp_path) -> str:
    path = tmp_path / "chartqa"
    datasets.DatasetDict(
        {"train": _fake_split("train", 18), "val": _fake_split("val", 9), "test": _fake_split("test", 12)}
    ).save_to_disk(str(path))
    return str(path)


def _files(root: str) -> set[str]:
    return {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}


def test_recipe_filters_shuffles_selects_and_drops(chartqa, tmp_path):
    before = _files(chartqa)
    out = build_pjn_charts(tmp_path / "pjn", source=chartqa, seed=42, sizes=SIZES)
    assert _files(chartqa) == before  # nothing written next to the source
    built = datasets.load_from_disk(str(out))
    assert sorted(built) == sorted(SIZES)
    source = datasets.load_from_disk(chartqa)
    for split, n in SIZES.items():
        assert built[split].column_names == ["image", "query", "label"]  # human_or_machine dropped
        queries = built[split]["query"]
        assert len(queries) == n and all(" human " in q for q in queries)
        # Independent statement of the recipe: human rows, numpy permutation from the seed, first n.
        human = [q for q, f in zip(source[split]["query"], source[split]["human_or_machine"]) if f == 0]
        order = np.random.default_rng(42).permutation(len(human))
        assert queries == [human[i] for i in order[:n]]
    split = load_split(str(out), "test")
    assert [e.answer for e in split] == [q.rsplit(" ", 1)[1] for q in built["test"]["query"]]


def test_same_seed_same_data_other_seed_differs(chartqa, tmp_path):
    first = build_pjn_charts(tmp_path / "a", source=chartqa, seed=42, sizes=SIZES)
    second = build_pjn_charts(tmp_path / "b", source=chartqa, seed=42, sizes=SIZES)
    third = build_pjn_charts(tmp_path / "c", source=chartqa, seed=7, sizes=SIZES)
    fp = {p: load_split(str(p), "train").fingerprint for p in (first, second, third)}
    assert fp[first] == fp[second] != fp[third]


def test_parquet_source_gives_the_same_result(chartqa, tmp_path):
    pq_dir = tmp_path / "chartqa_parquet" / "data"
    pq_dir.mkdir(parents=True)
    for split, ds in datasets.load_from_disk(chartqa).items():
        ds.to_parquet(str(pq_dir / f"{split}-00000-of-00001.parquet"))
    from_disk = build_pjn_charts(tmp_path / "a", source=chartqa, sizes=SIZES)
    from_parquet = build_pjn_charts(tmp_path / "b", source=str(pq_dir.parent), sizes=SIZES)
    for split in SIZES:
        assert load_split(str(from_disk), split).fingerprint == load_split(str(from_parquet), split).fingerprint


def test_too_few_rows_is_a_clear_error(chartqa, tmp_path):
    with pytest.raises(HarnessError) as exc:
        build_pjn_charts(tmp_path / "pjn", source=chartqa, sizes={"val": 7})
    assert str(exc.value) == f"{chartqa} (split 'val'): only 6 human-written rows (human_or_machine == 0), 7 asked for"


def test_missing_split_and_missing_flag_column(chartqa, tmp_path):
    with pytest.raises(HarnessError, match="no split 'validation'; available: train, val, test"):
        build_pjn_charts(tmp_path / "pjn", source=chartqa, sizes={"validation": 1})
    plain = tmp_path / "plain"
    datasets.DatasetDict({"train": _fake_split("train", 3).remove_columns("human_or_machine")}).save_to_disk(str(plain))
    with pytest.raises(HarnessError, match="missing column 'human_or_machine'"):
        build_pjn_charts(tmp_path / "pjn", source=str(plain), sizes={"train": 1})


def test_refuses_to_overwrite_its_own_source(chartqa):
    with pytest.raises(HarnessError, match="the output directory is the source"):
        build_pjn_charts(chartqa, source=chartqa, sizes=SIZES)
    assert len(datasets.load_from_disk(chartqa)["train"]) == 18
