"""Synthetic charts: deterministic, PJN_CHARTS-shaped, and every answer right by recomputation."""

from __future__ import annotations

import io
import re
import struct
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import datasets
import pytest
from PIL import Image

from harness.data import SYNTH_VOCAB_TEXT, load_split, validate_features, write_synthetic
from harness.data.synth import SYNTH_FEATURES, synthetic_dataset
from harness.data.synth_plan import CHART_TYPES, COLORS, QUESTION_TYPES, SynthChart, plan_split
from harness.errors import HarnessError

SIZES = {"train": 20, "val": 9, "test": 9}
SEED = 3
NUMBER = re.compile(r"^(0|[1-9]\d*)(\.[1-9])?$")  # ChartQA style: '14', '3.5'; never '14.0' or '1,200'


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> str:
    return str(write_synthetic(tmp_path_factory.mktemp("synth") / "charts", SIZES, seed=SEED))


@pytest.fixture(scope="module")
def plans() -> dict[str, list[SynthChart]]:
    seen: set = set()  # the same call order as write_synthetic, so the same charts
    return {split: plan_split(split, n, SEED, seen) for split, n in SIZES.items()}


def _rows(path: str, split: str) -> list[dict]:
    ds = datasets.load_from_disk(path)[split].cast_column("image", datasets.Image(decode=False))
    return list(ds)


def test_writes_pjn_schema_and_sizes(synth_dir):
    dd = datasets.load_from_disk(synth_dir)
    assert sorted(dd) == sorted(SIZES)
    for split, n in SIZES.items():
        assert dd[split].features == SYNTH_FEATURES
        validate_features(dd[split].features, f"{synth_dir} ({split})")
        loaded = load_split(synth_dir, split)
        assert len(loaded) == n
        assert set(loaded[0].meta) == {"question_type", "chart_type"}
        assert all(len(e.labels) == 1 for e in loaded)


def test_same_seed_is_byte_identical(synth_dir, tmp_path):
    again = write_synthetic(tmp_path / "again", SIZES, seed=SEED)
    for split in SIZES:
        first, second = _rows(synth_dir, split), _rows(str(again), split)
        assert first == second  # includes the PNG bytes of every row
        assert load_split(synth_dir, split).fingerprint == load_split(str(again), split).fingerprint


def test_other_seed_differs_and_train_size_does_not_move_test(synth_dir):
    other = synthetic_dataset({"test": 9}, seed=SEED + 1)
    assert other["test"]["query"] != datasets.load_from_disk(synth_dir)["test"]["query"]
    resized = synthetic_dataset({"train": 5, "val": 9, "test": 9}, seed=SEED)
    original = datasets.load_from_disk(synth_dir)["test"]
    assert resized["test"]["query"] == original["query"]
    assert resized["test"].data.table.equals(original.data.table)


def test_images_are_small_rgb_pngs_without_metadata(synth_dir):
    for row in _rows(synth_dir, "test"):
        data = row["image"]["bytes"]
        with Image.open(io.BytesIO(data)) as img:
            assert (img.format, img.mode, img.size) == ("PNG", "RGB", (320, 240))
        assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(_png_chunks(data))


def _png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def test_several_questions_per_chart_and_splits_disjoint(synth_dir):
    ids = {split: [e.image_id for e in load_split(synth_dir, split)] for split in SIZES}
    for image_ids in ids.values():
        sizes = Counter(image_ids).values()
        assert max(sizes) <= 3
        assert sum(1 for s in sizes if s >= 2) >= len(sizes) - 1  # only a split's last chart may be short
        assert len(sizes) < len(image_ids)
    assert not set(ids["train"]) & set(ids["val"])
    assert not set(ids["train"]) & set(ids["test"])
    assert not set(ids["val"]) & set(ids["test"])


def test_rows_match_the_plan(synth_dir, plans):
    for split, charts in plans.items():
        expected = [(q.query, [q.answer], q.kind, c.chart_type) for c in charts for q in c.questions]
        rows = _rows(synth_dir, split)
        assert [(r["query"], r["label"], r["question_type"], r["chart_type"]) for r in rows] == expected


def _fmt(x: float) -> str:
    """Independent of the generator's formatter: one decimal at most, no trailing .0."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _expected(chart: SynthChart, kind: str, args: dict) -> str:
    """Recompute an answer from the chart's data with plain float arithmetic."""
    row = [v / 10 for v in chart.values[args.get("series", 0)]]
    cats = chart.categories
    if kind == "value":
        return _fmt(row[args["category"]])
    if kind == "largest":
        return cats[row.index(max(row))]
    if kind == "smallest":
        return cats[row.index(min(row))]
    if kind == "difference":
        return _fmt(abs(row[args["a"]] - row[args["b"]]))
    if kind == "sum":
        return _fmt(row[args["a"]] + row[args["b"]])
    if kind == "average":
        mean = Decimal(str(round(sum(row), 1))) / len(row)
        return _fmt(float(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)))
    if kind == "count_above":
        return str(sum(v > args["threshold"] / 10 for v in row))
    if kind == "color":
        return chart.colors[args["series"]]
    raise AssertionError(kind)


def test_answers_recomputed_from_chart_data():
    charts = plan_split("train", 900, seed=11)
    kinds = Counter()
    for chart in charts:
        assert chart.chart_type in CHART_TYPES
        if chart.chart_type == "pie":
            assert sum(chart.values[0]) == 1000  # percentages sum to 100
        for q in chart.questions:
            kinds[q.kind] += 1
            assert q.answer == _expected(chart, q.kind, q.args), (chart, q)
            if q.kind in ("largest", "smallest"):
                assert q.answer in chart.categories
            elif q.kind == "color":
                assert q.answer in COLORS and chart.series[q.args["series"]] in q.query
            else:
                assert NUMBER.match(q.answer), q.answer
        assert len({q.kind for q in chart.questions}) == len(chart.questions)  # distinct per chart
    assert set(kinds) == set(QUESTION_TYPES)
    assert {c.chart_type for c in charts} == set(CHART_TYPES)
    assert kinds["color"] >= 20  # common enough to learn


def test_number_label_format():
    from harness.data.synth_plan import format_tenths

    assert [format_tenths(v) for v in (140, 35, 5, 1000, 0, -15)] == ["14", "3.5", "0.5", "100", "0", "-1.5"]


def test_worker_processes_give_the_same_bytes():
    serial = synthetic_dataset({"test": 16}, seed=5)
    parallel = synthetic_dataset({"test": 16}, seed=5, workers=2)
    assert parallel["test"].data.table.equals(serial["test"].data.table)


def test_colour_answers_are_the_colours_drawn(synth_dir, plans):
    checked = 0
    for split, charts in plans.items():
        rows = _rows(synth_dir, split)
        i = 0
        for chart in charts:
            img = Image.open(io.BytesIO(rows[i]["image"]["bytes"]))
            colours = {rgb: n for n, rgb in img.getcolors(maxcolors=320 * 240)}
            for name in chart.colors:
                rgb = tuple(int(COLORS[name][k : k + 2], 16) for k in (1, 3, 5))
                assert colours.get(rgb, 0) >= 5, (chart.chart_type, name)
                checked += 1
            i += len(chart.questions)
    assert checked >= len(SIZES)


def test_vocab_text_covers_every_word_the_generator_uses():
    vocab = {w for line in SYNTH_VOCAB_TEXT for w in re.findall(r"[\w.%]+", line)}
    used = set()
    for chart in plan_split("test", 500, seed=99):
        words = [chart.title, *chart.categories, *chart.series, *chart.colors]
        words += [text for q in chart.questions for text in (q.query, q.answer)]
        used |= {w.rstrip(".") for text in words for w in re.findall(r"[\w.%]+", text)}
    assert used - vocab == set()
    assert all(isinstance(line, str) and line for line in SYNTH_VOCAB_TEXT)


def test_refuses_to_write_over_unrelated_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(HarnessError, match="not empty"):
        write_synthetic(tmp_path, {"test": 2})
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_bad_sizes_rejected(tmp_path):
    with pytest.raises(HarnessError, match="size must be a non-negative integer"):
        write_synthetic(tmp_path / "x", {"train": -1})
    with pytest.raises(HarnessError, match="split name"):
        write_synthetic(tmp_path / "x", {"my-split": 2})


def test_rewriting_replaces_an_earlier_set_without_stale_splits(tmp_path):
    out = tmp_path / "charts"
    write_synthetic(out, {"train": 4, "test": 2}, seed=1)
    write_synthetic(out, {"test": 2}, seed=2)
    assert sorted(p.name for p in out.iterdir()) == ["dataset_dict.json", "test"]
    assert sorted(datasets.load_from_disk(str(out))) == ["test"]
