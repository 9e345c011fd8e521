"""One JSONL reader, one atomic writer: a torn last line is cut off, a bad middle line is file:line."""

from __future__ import annotations

import json
import os

import pytest

from harness.errors import HarnessError
from harness.fileio import append_jsonl, read_jsonl, write_json_atomic


def test_a_torn_last_line_is_cut_off_and_the_next_append_starts_clean(tmp_path):
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, [{"id": "a"}, {"id": "b"}])
    with open(path, "a") as fh:
        fh.write('{"id": "c", "v"')  # the writer was killed mid-line
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    assert path.read_text().endswith('"v"')  # without repair the file is left alone
    assert [r["id"] for r in read_jsonl(path, repair=True)] == ["a", "b"]
    assert path.read_text().endswith("}\n")
    append_jsonl(path, [{"id": "b"}, {"id": "c"}])
    assert [r["id"] for r in read_jsonl(path, key="id")] == ["a", "b", "c"]  # a rerun batch: first row kept


@pytest.mark.parametrize("bad", ['{"id": "b"', "[1, 2]", "\xff"])
def test_a_bad_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path, bad):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b'{"id": "a"}\n' + bad.encode("latin-1") + b'\n{"id": "c"}\n')
    with pytest.raises(HarnessError) as err:
        read_jsonl(path, repair=True)
    assert str(err.value).startswith(f"{path}:2: ") and "\n" not in str(err.value)
    assert path.read_bytes().endswith(b'{"id": "c"}\n')  # nothing cut off


def test_the_store_refuses_a_bad_middle_line_instead_of_dropping_what_follows(harness_env, tmp_path):
    # Before the store used read_jsonl it stopped at the first bad line and truncated the file there,
    # silently losing every sample after it.
    from harness.store import RunStore
    from tests.helpers import plan_runs

    spec = plan_runs(["qwen2vl"], preset="smoke")[0]
    store = RunStore.under(tmp_path / "r", spec)
    store.begin()
    good = json.dumps({"id": "x"})
    store.samples_path.write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(HarnessError, match=r"samples\.jsonl:2: invalid JSON line"):
        store.done_samples()
    assert store.samples_path.read_text().count("\n") == 3


def test_the_atomic_writer_leaves_no_temp_file_and_a_readable_file(tmp_path):
    path = tmp_path / "deep" / "result.json"
    write_json_atomic(path, {"b": 1, "a": [1]})
    assert json.loads(path.read_text()) == {"a": [1], "b": 1}
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
