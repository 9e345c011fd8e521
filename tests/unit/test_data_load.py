"""load_split: the same data in any supported layout gives the same examples and fingerprint."""

from __future__ import annotations

import gc
import io
import pickle
import shutil

import datasets
import pytest
from datasets import Features, Image, Value
from PIL import Image as PILImage
from PIL import ImageFile

from harness.data import ChartSplit, Example, load_split
from harness.errors import HarnessError

FEATURES = Features(
    {
        "image": Image(),
        "query": Value("string"),
        "label": datasets.Sequence(Value("string")),
        "question_type": Value("string"),
        "score": Value("float64"),
        "tags": datasets.Sequence(Value("string")),
    }
)


def _png(i: int, size=(40, 30), mode="RGBA") -> bytes:
    img = PILImage.new(mode, size, (i * 37 % 256, i * 11 % 256, 200, 160)[: len(mode)])
    img.putpixel((0, 0), (i % 256,) * len(mode))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _split(n: int, offset: int = 0, shared_every: int = 2, size=(40, 30)) -> datasets.Dataset:
    # Consecutive pairs of rows share one chart, like ChartQA's several questions per image.
    images = [_png(offset + i // shared_every, size) for i in range(n)]
    return datasets.Dataset.from_dict(
        {
            "image": [{"bytes": b, "path": None} for b in images],
            "query": [f"What is value {offset + i}?" for i in range(n)],
            "label": [[str(offset + i), f"{offset + i}.0"] for i in range(n)],
            "question_type": ["value" if i % 2 else "largest" for i in range(n)],
            "score": [i / 2 for i in range(n)],
            "tags": [["a"] for _ in range(n)],
        },
        features=FEATURES,
    )


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def dataset_dict() -> datasets.DatasetDict:
    return datasets.DatasetDict({"train": _split(8), "test": _split(6, offset=100)})


@pytest.fixture
def disk_dir(tmp_path, dataset_dict) -> str:
    path = tmp_path / "saved"
    dataset_dict.save_to_disk(str(path))
    return str(path)


@pytest.fixture
def parquet_dir(tmp_path, dataset_dict) -> str:
    path = tmp_path / "hub_layout"
    (path / "data").mkdir(parents=True)
    dataset_dict["train"].to_parquet(str(path / "data" / "train-00000-of-00001.parquet"))
    test = dataset_dict["test"]  # two shards, as the hub writes larger splits
    test.select(range(4)).to_parquet(str(path / "data" / "test-00000-of-00002.parquet"))
    test.select(range(4, 6)).to_parquet(str(path / "data" / "test-00001-of-00002.parquet"))
    return str(path)


def _summary(split: ChartSplit) -> list[tuple]:
    return [(e.id, e.query, e.labels, e.image_id, e.meta) for e in split]


def test_disk_and_parquet_layouts_agree(disk_dir, parquet_dir, tmp_path):
    from_disk = load_split(disk_dir, "test")
    from_parquet = load_split(parquet_dir, "test")
    assert len(from_disk) == 6
    assert from_disk.fingerprint == from_parquet.fingerprint
    assert _summary(from_disk) == _summary(from_parquet)
    assert [e.image.tobytes() for e in from_disk] == [e.image.tobytes() for e in from_parquet]
    # top-level <split>-*.parquet (no data/ folder) is accepted too
    flat = tmp_path / "flat"
    shutil.copytree(f"{parquet_dir}/data", flat)
    assert load_split(str(flat), "test").fingerprint == from_disk.fingerprint


def test_example_fields(disk_dir):
    split = load_split(disk_dir, "test")
    first = split[0]
    assert isinstance(first, Example)
    assert (split.source, split.split) == (disk_dir, "test")
    assert first.id == "test-0"
    assert first.query == "What is value 100?"
    assert first.labels == ("100", "100.0")
    assert first.answer == "100"  # labels[0], never str(labels)
    assert first.meta == {"question_type": "largest", "score": 0.0}  # list column 'tags' left out
    assert len(first.image_id) == 16 and int(first.image_id, 16) >= 0
    image = first.image
    assert image.mode == "RGB" and image.size == (40, 30)  # RGBA source composited to RGB
    # rows 0 and 1 share a chart, row 2 has another one
    assert split[0].image_id == split[1].image_id != split[2].image_id
    assert [e.id for e in split] == [f"test-{i}" for i in range(6)]
    assert split[-1].id == "test-5"


def test_fingerprint_tracks_content_and_order(tmp_path, dataset_dict, disk_dir):
    base = load_split(disk_dir, "test").fingerprint
    assert base != load_split(disk_dir, "train").fingerprint
    changed = dataset_dict["test"].map(lambda r, i: {"label": ["999"] if i == 3 else r["label"]}, with_indices=True)
    datasets.DatasetDict({"test": changed}).save_to_disk(str(tmp_path / "changed"))
    assert load_split(str(tmp_path / "changed"), "test").fingerprint != base
    reordered = dataset_dict["test"].select([1, 0, 2, 3, 4, 5])
    datasets.DatasetDict({"test": reordered}).save_to_disk(str(tmp_path / "reordered"))
    assert load_split(str(tmp_path / "reordered"), "test").fingerprint != base


def test_limit_takes_first_rows(disk_dir):
    full = load_split(disk_dir, "train")
    first3 = load_split(disk_dir, "train", limit=3)
    assert [e.id for e in first3] == ["train-0", "train-1", "train-2"]
    assert _summary(first3) == _summary(full)[:3]
    assert first3.fingerprint == full[:3].fingerprint != full.fingerprint
    assert len(load_split(disk_dir, "train", limit=100)) == 8
    with pytest.raises(HarnessError, match="limit must be a non-negative integer"):
        load_split(disk_dir, "train", limit=-1)


def test_slicing_returns_chart_split(disk_dir):
    split = load_split(disk_dir, "train")
    part = split[2:5]
    assert isinstance(part, ChartSplit)
    assert [e.id for e in part] == ["train-2", "train-3", "train-4"]
    assert (part.source, part.split) == (split.source, split.split)
    assert len(list(iter(split))) == len(split) == 8


def test_missing_split_lists_available(disk_dir, parquet_dir):
    with pytest.raises(HarnessError) as exc:
        load_split(disk_dir, "validation")
    assert str(exc.value) == f"{disk_dir}: no split 'validation'; available: train, test"
    with pytest.raises(HarnessError, match=r"no split 'val'; available: test, train$"):
        load_split(parquet_dir, "val")


@pytest.mark.parametrize("source", ["./no/such/dir", "/no/such/dir", "~/no-such-dir-xyz", "a/b/c", "x.parquet"])
def test_nonexistent_path_is_not_a_hub_lookup(source, monkeypatch):
    def no_hub(*args, **kwargs):
        raise AssertionError("must not reach the hub")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    with pytest.raises(HarnessError) as exc:
        load_split(source, "test")
    assert str(exc.value) == f"{source}: no such directory"


def test_relative_path_under_existing_folder_is_a_path(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("hub lookup"))
    with pytest.raises(HarnessError, match="^data/pjn: no such directory$"):
        load_split("data/pjn", "test")


def test_directory_without_data_set(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(HarnessError, match="not a data set directory"):
        load_split(str(tmp_path), "test")
    with pytest.raises(HarnessError, match="is a file"):
        load_split(str(tmp_path / "notes.txt"), "test")


def test_single_dataset_dir_only_when_unambiguous(tmp_path):
    recorded = datasets.Dataset.from_dict(_split(4).to_dict(), features=FEATURES, split="test")
    recorded.save_to_disk(str(tmp_path / "single"))
    assert len(load_split(str(tmp_path / "single"), "test")) == 4
    with pytest.raises(HarnessError, match="split 'train' is ambiguous"):
        load_split(str(tmp_path / "single"), "train")
    unnamed = _split(3)
    unnamed.save_to_disk(str(tmp_path / "val"))  # no recorded split, but the folder names it
    assert len(load_split(str(tmp_path / "val"), "val")) == 3
    unnamed.save_to_disk(str(tmp_path / "anything"))
    with pytest.raises(HarnessError, match="no recorded split"):
        load_split(str(tmp_path / "anything"), "val")


def test_hub_source_passes_token_and_revision(monkeypatch):
    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return _split(4)

    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    split = load_split("krowiemlekommm/PJN_CHARTS", "test", limit=2, revision="abc123")
    assert calls == [("krowiemlekommm/PJN_CHARTS", {"split": "test", "revision": "abc123", "token": "hf_secret"})]
    assert len(split) == 2 and split.source == "krowiemlekommm/PJN_CHARTS"


def test_hub_failure_is_one_line_without_token(monkeypatch):
    def offline(path, **kwargs):
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (token {kwargs['token']})\nretry details")

    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(HarnessError) as exc:
        load_split("krowiemlekommm/PJN_CHARTS", "test")
    message = str(exc.value)
    assert "\n" not in message and "hf_secret" not in message
    assert message.startswith("krowiemlekommm/PJN_CHARTS: cannot load split 'test' from the hub: ConnectionError:")
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_revision_rejected_for_local_dirs(disk_dir):
    with pytest.raises(HarnessError, match="only applies to hub ids"):
        load_split(disk_dir, "test", revision="v1")


def test_images_are_decoded_lazily(tmp_path, monkeypatch):
    n = 40  # 850x600 RGBA like PJN_CHARTS: ~2 MB each once decoded
    datasets.DatasetDict({"test": _split(n, shared_every=1, size=(850, 600))}).save_to_disk(str(tmp_path / "big"))
    decoded = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self):
        decoded.append(id(self))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    split = load_split(str(tmp_path / "big"), "test")
    assert decoded == []  # indexing read headers only
    gc.collect()
    # nothing held either (other tests may leave small images alive, e.g. palettes: only ours count)
    assert not [o for o in gc.get_objects() if isinstance(o, PILImage.Image) and o.size == (850, 600)]
    image = split[7].image
    assert len(set(decoded)) == 1  # exactly one image decoded (load() may be re-entered by convert)
    assert image.size == (850, 600) and image.mode == "RGB"
    assert split[7].image is not image  # not cached on the example either


def test_examples_pickle_with_their_image_loader(disk_dir):
    example = load_split(disk_dir, "test")[2]
    clone = pickle.loads(pickle.dumps(example))
    assert clone == example
    assert clone.image.tobytes() == example.image.tobytes()
    assert hash(clone) == hash(example)
