"""The PJN_CHARTS schema: a wrong data set fails in one line that names the field, row and source."""

from __future__ import annotations

import io

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Features, Image, Value
from PIL import Image as PILImage

from harness.data import load_split, validate_features
from harness.data.schema import check_row
from harness.errors import HarnessError

GOOD = {
    "image": Image(),
    "query": Value("string"),
    "label": datasets.Sequence(Value("string")),
    "human_or_machine": Value("int64"),
}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def _png(shade: int = 0) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (6, 4), (shade, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def test_good_features_with_extra_columns_pass():
    validate_features(Features(GOOD), "somewhere")
    validate_features(GOOD, "somewhere")  # a plain dict works too
    validate_features(["image", "query", "label", "extra"], "somewhere")


@pytest.mark.parametrize(
    "image_feature",
    [{"bytes": Value("binary"), "path": Value("string")}, {"bytes": Value("binary")}, Value("binary")],
)
def test_image_as_struct_or_binary_passes(image_feature):
    validate_features({**GOOD, "image": image_feature}, "x")


def test_missing_column_names_it_and_where():
    features = {k: v for k, v in GOOD.items() if k != "label"}
    with pytest.raises(HarnessError) as exc:
        validate_features(Features(features), "data/pjn (split 'test')")
    message = _one_line(exc)
    assert message.startswith("data/pjn (split 'test'): missing column 'label'")
    assert "human_or_machine" in message  # lists what is there


def test_missing_columns_from_names_only():
    with pytest.raises(HarnessError, match=r"^src: missing columns 'image', 'query'"):
        validate_features(["label"], "src")


def test_label_as_string_column_is_named():
    with pytest.raises(HarnessError) as exc:
        validate_features({**GOOD, "label": Value("string")}, "hub/id (split 'val')")
    assert _one_line(exc) == "hub/id (split 'val'): field 'label' must be a list of strings, got Value('string')"


def test_label_list_of_ints_rejected():
    with pytest.raises(HarnessError, match="field 'label' must be a list of strings"):
        validate_features({**GOOD, "label": datasets.Sequence(Value("int64"))}, "x")


def test_wrong_image_and_query_types_named():
    with pytest.raises(HarnessError, match=r"^x: field 'image' must be an image"):
        validate_features({**GOOD, "image": Value("int64")}, "x")
    with pytest.raises(HarnessError, match=r"^x: field 'query' must be a string, got Value\('int32'\)"):
        validate_features({**GOOD, "query": Value("int32")}, "x")


def test_check_row_accepts_and_returns_tuple():
    assert check_row("What?", ["14", "14.0"], "r") == ("What?", ("14", "14.0"))


def test_check_row_label_as_str_names_row_and_field():
    with pytest.raises(HarnessError) as exc:
        check_row("What?", "14", "data/test-00000.parquet: row 17")
    assert _one_line(exc) == "data/test-00000.parquet: row 17: field 'label' must be a list of strings, got str"


def test_check_row_empty_label_list():
    with pytest.raises(HarnessError, match=r"^src: row 3: field 'label' is an empty list"):
        check_row("What?", [], "src: row 3")


def test_check_row_non_string_label_item_and_bad_query():
    with pytest.raises(HarnessError, match=r"field 'label\[1\]' must be a string, got None"):
        check_row("q", ["a", None], "r")
    with pytest.raises(HarnessError, match=r"^r: field 'query' is empty"):
        check_row("   ", ["a"], "r")
    with pytest.raises(HarnessError, match=r"^r: field 'query' must be a string, got None"):
        check_row(None, ["a"], "r")


def _write_parquet(path, rows):
    table = pa.table(
        {
            "image": pa.array(
                [{"bytes": r[0], "path": None} for r in rows],
                pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
            ),
            "query": pa.array([r[1] for r in rows], pa.string()),
            "label": pa.array([r[2] for r in rows], pa.list_(pa.string())),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def test_load_names_parquet_file_and_row_of_empty_label(tmp_path):
    src = tmp_path / "pjn"
    good = [(_png(i), f"q{i}", [str(i)]) for i in range(3)]
    _write_parquet(src / "data" / "test-00000-of-00002.parquet", good)
    _write_parquet(src / "data" / "test-00001-of-00002.parquet", [good[0], (_png(9), "q", [])])
    with pytest.raises(HarnessError) as exc:  # 1 bad row of 5 is over the share that may be skipped
        load_split(str(src), "test")
    expected = f"{src}/data/test-00001-of-00002.parquet: row 1: field 'label' is an empty list"
    assert _one_line(exc).startswith(f"{src}/data/test-*.parquet: 1 of 5 rows are unusable (more than 10% ")
    assert expected in _one_line(exc)


def test_load_rejects_undecodable_image_naming_row(tmp_path):
    src = tmp_path / "pjn"
    _write_parquet(src / "test-00000.parquet", [(_png(), "q", ["1"]), (b"not an image", "q", ["1"])])
    with pytest.raises(HarnessError, match=r"test-00000.parquet: row 1: field 'image' is not a decodable image"):
        load_split(str(src), "test")


def test_truncated_image_fails_on_use_naming_row(tmp_path):
    src = tmp_path / "pjn"
    big = io.BytesIO()
    PILImage.effect_noise((64, 64), 50).convert("RGB").save(big, format="JPEG")  # a cut PNG is found at load
    _write_parquet(src / "test-00000.parquet", [(big.getvalue()[: len(big.getvalue()) // 2], "q", ["1"])])
    split = load_split(str(src), "test")  # the header is intact, so indexing succeeds
    with pytest.raises(HarnessError, match=r"test-00000.parquet: row 0: field 'image' could not be decoded"):
        _ = split[0].image


def test_load_rejects_missing_column(tmp_path):
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(), "path": None}], "question": ["q"]},
        features=Features({"image": Image(), "question": Value("string")}),
    )
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(HarnessError, match=r"d \(split 'test'\): missing columns 'query', 'label'"):
        load_split(str(tmp_path / "d"), "test")
