"""The bad-input corpus (issue 11, part 2): every kind of bad input is one `error:` line naming the file,
row or field, with a non-zero exit and no traceback, through the real CLI entry and before any model loads.

A row-level problem inside an otherwise good set is not an error: the row is skipped, recorded with its
reason in the result (and training.json) and shown on the leaderboard (test at the end).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.cli as cli
from harness.cli import main
from harness.errors import HarnessError
from tests.bad_inputs import (
    FEATURES,
    bomb_png,
    good_rows,
    jpeg,
    png,
    save,
    with_column,
    with_images,
)

BENCH = ["bench", "--model", "qwen2vl", "--variant", "base", "--preset", "smoke", "--split", "test", "--dry-run"]


def one_line(capsys) -> str:
    """The single stderr line of a refused command, without 'error: '; no traceback, nothing on stdout."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0][len("error: "):]


@pytest.fixture(autouse=True)
def _no_model_loads(monkeypatch, tmp_path):
    """Every refusal here happens before a model is opened: opening one fails the test."""
    import datasets

    import harness.adapters as adapters

    monkeypatch.setattr(adapters, "open_adapter", lambda *a, **k: pytest.fail("a model was loaded"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def _bad_data(tmp_path: Path, kind: str) -> Path:
    """A data set folder with every row (or its structure) damaged in one way."""
    rows, d = good_rows(4), tmp_path / "charts"
    if kind == "corrupt image bytes":
        return save(d, with_images(rows, [b"this is not an image at all"]))
    if kind == "truncated image":
        return save(d, with_images(rows, [png(1)[:300]]))  # signature and header intact, body cut
    if kind == "zero-size image":
        return save(d, with_images(rows, [b""]))
    if kind == "decompression bomb":
        return save(d, with_images(rows, [bomb_png()]))
    if kind == "missing column":
        return save(d, {k: v for k, v in rows.items() if k != "label"}, features=None)
    if kind == "misspelled column":
        return save(d, {"image": rows["image"], "querry": rows["query"], "label": rows["label"]}, features=None)
    if kind == "empty split":
        return save(d, {k: [] for k in rows})
    if kind == "empty query":
        return save(d, with_column(rows, "query", ["  "]))
    if kind == "non-string query":
        return save(d, with_column(rows, "query", [7]), features=None)
    if kind == "label a string":
        return save(d, with_column(rows, "label", ["14"]), features=None)
    if kind == "non-UTF-8 dataset_dict.json":
        save(d, rows)
        (d / "dataset_dict.json").write_bytes('{"splits": ["test"], "note": "caf\xe9"}'.encode("latin-1"))
        return d
    raise AssertionError(kind)


DATA_KINDS = {
    # kind: what the one line must contain (after the data set folder)
    "corrupt image bytes": "row 0: field 'image' is not a decodable image: cannot identify image file",
    "truncated image": "row 0: field 'image' is not a decodable image: Truncated File Read",
    "zero-size image": "row 0: field 'image' is empty (0 bytes)",
    "decompression bomb": "row 0: field 'image' is too large to decode safely (a decompression bomb?)",
    "missing column": "missing column 'label' (columns present: image, query)",
    "misspelled column": "missing column 'query' (columns present: image, querry, label); column 'querry': "
                         "did you mean 'query'?",
    "empty split": "the split has no rows",
    "empty query": "row 0: field 'query' is empty",
    "non-string query": "field 'query' must be a string, got Value('int64')",
    "label a string": "field 'label' must be a list of strings, got Value('string')",
    "non-UTF-8 dataset_dict.json": "unreadable dataset_dict.json: 'utf-8' codec can't decode byte 0xe9",
}


@pytest.mark.parametrize("kind", list(DATA_KINDS))
def test_bad_data_is_one_line_naming_the_file_row_and_field(harness_env, capsys, kind):
    data = _bad_data(harness_env, kind)
    capsys.readouterr()  # the builder's progress bars
    assert main([*BENCH, "--dataset", str(data)]) == 2
    message = one_line(capsys)
    assert message.startswith(str(data)) and DATA_KINDS[kind] in message, message
    assert not (harness_env / "results").exists()


def test_every_row_bad_says_how_many_and_quotes_the_first_three(harness_env, capsys):
    data = save(harness_env / "charts", with_images(good_rows(5), [b"junk"]))
    capsys.readouterr()
    assert main([*BENCH, "--dataset", str(data)]) == 2
    message = one_line(capsys)
    assert message.startswith(f"{data} (split 'test'): 5 of 5 rows are unusable (no row is usable): ")
    assert [f"row {i}: field 'image'" in message for i in range(5)] == [True, True, True, False, False]
    assert message.endswith("; and 2 more")


def test_a_bomb_is_refused_from_its_header_without_decoding(tmp_path, monkeypatch):
    """The pixels of a 100000x100000 PNG are never decoded (that alone would need 30 GB)."""
    import PIL.ImageFile

    from harness.data.schema import check_image

    monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels decoded"))
    monkeypatch.setattr("PIL.Image.MAX_IMAGE_PIXELS", 10**12)  # past PIL's own refusal: ours must still hold
    with pytest.raises(HarnessError, match=r"^r: field 'image' is 100000x100000 pixels, over the"):
        check_image(bomb_png(), "r")


def test_non_utf8_preset_is_one_line(harness_env, config_copy, capsys):
    preset = config_copy / "presets" / "smoke.yaml"
    preset.write_bytes(preset.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    assert main(BENCH) == 2
    assert one_line(capsys).startswith(f"{preset}: not UTF-8 text (byte 0xe9 at offset ")


def test_a_dataset_path_that_does_not_exist(harness_env, capsys):
    assert main([*BENCH, "--dataset", str(harness_env / "nowhere")]) == 2
    assert one_line(capsys) == f"--dataset {harness_env / 'nowhere'}: no such directory"


def test_a_model_not_in_the_registry(harness_env, capsys):
    assert main(["bench", "--model", "qwen9vl", "--preset", "smoke", "--dry-run"]) == 2
    from harness.registry import list_models

    known = ", ".join(card.name for card in list_models())
    assert one_line(capsys) == f"unknown model 'qwen9vl' (known: {known})"


@pytest.mark.parametrize("content", [None, "not json {", '{"kind": "run"}'])
def test_a_folder_that_is_not_a_checkpoint_or_run_folder(harness_env, capsys, content):
    """`harness execute` takes the folder a planned spec was written to; anything else is one line."""
    folder = harness_env / "ckpt"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    if content is not None:
        (folder / "spec.json").write_text(content)
    assert main(["execute", str(folder)]) == 2
    message = one_line(capsys)
    assert message.startswith(str(folder / "spec.json")), message
    if content is None:
        assert "no spec.json here" in message
    if content and content.startswith("{"):  # JSON, but not a spec: missing fields are named, not a TypeError
        assert "not a run spec this harness can read" in message and "'model'" in message


def test_a_results_folder_from_another_configuration(harness_env, capsys):
    from tests.helpers import plan_runs

    spec = plan_runs(["qwen2vl"], preset="smoke")[0]
    folder = harness_env / "results" / spec.run_id
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps({**spec.record(), "config_hash": "0" * 16}))
    assert main([*BENCH[:-1], "--no-leaderboard"]) == 2
    assert one_line(capsys) == f"{folder / 'spec.json'}: belongs to another configuration; remove the folder"


CARD_DAMAGE = {
    "YAML syntax error": ("revision: [unclosed\n", "invalid YAML"),
    "unknown key": ("revison: abc\n", "unknown field(s) ['revison']; did you mean 'revision'?"),
    "wrong type": ("trust_remote_code: 'yes'\n", "field 'trust_remote_code' must be bool, got str 'yes'"),
}


@pytest.mark.parametrize("damage", list(CARD_DAMAGE))
@pytest.mark.parametrize("kind", ["models/qwen2vl.yaml", "presets/smoke.yaml"])
def test_a_malformed_card_or_preset(harness_env, config_copy, capsys, kind, damage):
    path = config_copy / kind
    text, expected = CARD_DAMAGE[damage]
    if kind.startswith("presets") and damage == "wrong type":
        text, expected = "use_twins: 'yes'\n", "field 'use_twins' must be bool, got str 'yes'"
    if kind.startswith("presets") and damage == "unknown key":
        text, expected = "descripton: x\n", "unknown field(s) ['descripton']; did you mean 'description'?"
    path.write_text(path.read_text() + text)
    assert main(BENCH) == 2
    message = one_line(capsys)
    assert message.startswith(str(path)) and expected in message, message


def test_an_unexpected_exception_is_one_line_and_debug_shows_the_traceback(harness_env, capsys, monkeypatch):
    def broken(args):
        raise KeyError("surprise\nsecond line")

    monkeypatch.setattr(cli, "cmd_models", broken)
    assert main(["models"]) == 2
    assert one_line(capsys) == "KeyError: 'surprise\\nsecond line' (rerun with --debug for the traceback)"
    with pytest.raises(KeyError):
        main(["--debug", "models"])


# ------------------------------------------------------------------- one bad row in a good set: skipped

def test_one_bad_row_is_skipped_and_recorded_and_the_fingerprint_stays_honest(tmp_path):
    from harness.data.load import load_split

    good = good_rows(20)
    fixed = load_split(str(save(tmp_path / "good", good)), "test")
    bad = load_split(str(save(tmp_path / "bad", with_images(good, [b"junk"], at=[3]))), "test")
    assert [e.id for e in bad] == [e.id for e in fixed if e.id != "test-3"]
    assert [s.record() for s in bad.skipped] == [{
        "id": "test-3", "where": f"{tmp_path / 'bad'}: split 'test': row 3", "field": "image",
        "reason": "is not a decodable image: cannot identify image file"}]
    assert bad.asked_rows == 20 and len(bad) == 19
    dropped = load_split(str(save(tmp_path / "dropped", {k: v[:3] + v[4:] for k, v in good.items()})), "test")
    assert len({fixed.fingerprint, bad.fingerprint, dropped.fingerprint}) == 3  # the bad row still counts


def test_more_bad_rows_than_the_bound_fail(tmp_path):
    from harness.data.load import load_split

    with pytest.raises(HarnessError, match=r"3 of 20 rows are unusable \(more than 10% may be skipped\): .*row 0"):
        load_split(str(save(tmp_path / "d", with_images(good_rows(20), [b"junk"], at=[0, 5, 9]))), "test")
    assert len(load_split(str(save(tmp_path / "e", with_images(good_rows(20), [b"junk"], at=[0, 5]))), "test")) == 18


def test_an_image_that_fails_only_at_decode_is_skipped_by_the_bench(tmp_path):
    """A cut JPEG passes every header check; the bench skips it with its reason instead of crashing."""
    from harness.data.load import load_split
    from harness.engine.bench import _Skips

    rows = with_images(good_rows(20), [jpeg(1)[: len(jpeg(1)) // 2]], at=[7])
    data = load_split(str(save(tmp_path / "d", rows)), "test")
    assert len(data) == 20 and not data.skipped  # found only when decoded
    skips = _Skips(data)
    todo = skips.usable(list(data))
    assert [e.id for e in todo] == [e.id for e in data if e.id != "test-7"]
    skipped = {r["id"]: r for r in skips.records()}
    assert list(skipped) == ["test-7"] and skipped["test-7"]["field"] == "image"
    assert skipped["test-7"]["reason"].startswith("could not be decoded: image file is truncated")


def test_skipped_samples_are_in_the_result_record_and_on_the_leaderboard(tmp_path):
    from harness.leaderboard import header
    from harness.records import RunResult
    from harness.specs import SCHEMA_VERSION

    old = {"schema_version": SCHEMA_VERSION, "run_id": "r", "spec": {}}
    assert RunResult.from_dict(old).skipped_samples == []  # results written before the field still load
    skipped = [{"id": "test-3", "where": "d: split 'test': row 3", "field": "image", "reason": "is empty (0 bytes)"}]
    assert RunResult.from_dict({**old, "skipped_samples": skipped}).to_dict()["skipped_samples"] == skipped

    from harness.leaderboard.load import Entry, Run

    runs = [Run({"spec": {"model": m}, "skipped_samples": skipped}) for m in ("a", "b")]  # same data: named once
    assert header._skipped([Entry(runs[:1]), Entry(runs[1:])]) == [
        "1 sample skipped (not scored, still in the fingerprint): test-3 (image: is empty (0 bytes))"]
    assert header._skipped([Entry([Run({"spec": {}})])]) == []


def test_features_constant_is_the_pjn_schema():
    from harness.data.schema import validate_features

    validate_features(FEATURES, "x")
