"""The fault hook (harness/faults.py) and what each fault must leave behind: a full disk keeps the old
file and says so in one line, a kill mid-append leaves a torn line the reader cuts off, a CUDA OOM halves a
bench batch, a NaN loss stops the fine-tune at its step with the last good checkpoint kept."""

from __future__ import annotations

import errno
import json
import os
import signal
from types import SimpleNamespace

import pytest

from harness import faults
from harness.errors import HarnessError
from harness.fileio import append_jsonl, read_jsonl, write_json_atomic


def test_parse_and_bad_syntax_is_one_line():
    assert faults.parse("kill@bench.after_append:3, nan@finetune.loss") == {
        "bench.after_append": ("kill", 3), "finetune.loss": ("nan", 1)}
    for bad in ("bench.after_append", "explode@x", "kill@x:0", "kill@x:two", "kill@"):
        with pytest.raises(HarnessError, match="HARNESS_FAULT"):
            faults.parse(bad)


def test_a_point_fires_at_its_nth_time_only(monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    assert faults.point("x.y") is None  # unarmed: nothing happens
    monkeypatch.setenv(faults.ENV, "enospc@x.y:3")
    faults.point("x.y")
    faults.point("other")
    faults.point("x.y")
    with pytest.raises(OSError) as info:
        faults.point("x.y", "/some/file")
    assert info.value.errno == errno.ENOSPC and info.value.filename == "/some/file"
    assert faults.point("x.y") is None  # the 4th time: fired once already


def test_oom_is_torch_cuda_out_of_memory_on_cpu_torch(monkeypatch):
    import torch

    monkeypatch.setenv(faults.ENV, "oom@p")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        faults.point("p")
    monkeypatch.setenv(faults.ENV, "nan@p")
    assert faults.point("p") == "nan"


def _fsync_fails(monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)


def test_disk_full_on_append_cuts_back_and_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, [{"id": "a"}, {"id": "b"}])
    before = path.read_bytes()
    _fsync_fails(monkeypatch)
    with pytest.raises(HarnessError) as info:
        append_jsonl(path, [{"id": "c"}, {"id": "d"}])
    assert str(info.value) == f"disk full writing {path}: previous state intact; free space and rerun to resume"
    assert path.read_bytes() == before  # no half batch left to be taken for stored samples


def test_disk_full_on_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    write_json_atomic(path, {"old": 1})
    _fsync_fails(monkeypatch)
    with pytest.raises(HarnessError, match=f"disk full writing {path}: previous state intact"):
        write_json_atomic(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # the temp file is gone


def test_a_real_kill_mid_append_leaves_a_torn_line_the_reader_cuts(tmp_path):
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, [{"id": "a"}])
    pid = os.fork()
    if pid == 0:
        os.environ[faults.ENV] = "kill@bench.append.mid"
        append_jsonl(path, [{"id": "b", "text": "x" * 50}, {"id": "c"}], fault="bench.append")
        os._exit(0)  # not reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert not path.read_bytes().endswith(b"\n")  # half a line on disk
    assert [r["id"] for r in read_jsonl(path, repair=True, key="id")] == ["a"]
    append_jsonl(path, [{"id": "b"}])
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]


class _OomAbove:
    """The bench's adapter contract on nothing: a batch larger than `fits` runs out of GPU memory."""

    def __init__(self, fits: int):
        self.fits, self.sizes = fits, []
        self.request = SimpleNamespace(device="cpu")

    def prepare(self, examples, suffix):
        return SimpleNamespace(examples=examples, prompt_tokens=[3] * len(examples), image_tokens=[1] * len(examples))

    def generate(self, prepared, decoding, on_step=None):
        import torch

        self.sizes.append(len(prepared.examples))
        if len(prepared.examples) > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return SimpleNamespace(ids=[ex.id for ex in prepared.examples], request_metrics=None)

    def decode(self, generation):
        return [f"answer {i}" for i in generation.ids], [2] * len(generation.ids)

    def clean(self, text):
        return text


def _examples(n):
    return [SimpleNamespace(id=f"s{i}", image_id=None, query="q", labels=["1"], meta=None) for i in range(n)]


def test_an_oom_batch_is_halved_and_recorded():
    from harness.engine.bench import _run_halving

    spec = SimpleNamespace(prompt_suffix="", model="twin", batch_size=4)
    adapter, retries = _OomAbove(fits=1), []
    rows, next_index = _run_halving(adapter, _examples(4), spec, None, 7, retries)
    assert [r["id"] for r in rows] == ["s0", "s1", "s2", "s3"]
    assert adapter.sizes == [4, 2, 1, 1, 2, 1, 1]
    assert retries == [{"batch_index": 7, "from": 4, "to": 2}, {"batch_index": 7, "from": 2, "to": 1},
                       {"batch_index": 9, "from": 2, "to": 1}]
    # Each batch that ran has its own index and size: latency is the successful attempt's, at the size it ran.
    assert [(r["batch_index"], r["batch_size"]) for r in rows] == [(7, 1), (8, 1), (9, 1), (10, 1)]
    assert next_index == 11


def test_an_oom_at_batch_size_one_is_one_line():
    from harness.engine.bench import _run_halving

    spec = SimpleNamespace(prompt_suffix="", model="twin", batch_size=2)
    with pytest.raises(HarnessError, match=r"out of memory on a single sample \(s0\).*--batch-size 2.*max_pixels"):
        _run_halving(_OomAbove(fits=0), _examples(2), spec, None, 0, [])


def test_oom_retries_is_a_declared_field_and_old_results_still_load():
    from harness.records import RunResult, upgrade

    old = {"schema_version": 3, "run_id": "r", "spec": {}}  # written before the field existed
    assert RunResult.from_dict(upgrade(old, 3)).oom_retries is None
    retries = [{"batch_index": 0, "from": 4, "to": 2}]
    new = {**upgrade(old, 3), "oom_retries": retries}
    assert RunResult.from_dict(new).to_dict()["oom_retries"] == retries


def _tiny_run(tmp_path, monkeypatch, fault: str):
    from harness.train.recipe import run_finetune
    from tests.integration.test_finetune_resume import NoisyAdapter, _tiny_spec

    data = [([float(i % 5), 1.0, -1.0, 0.5], float(i % 3)) for i in range(10)]
    monkeypatch.setenv(faults.ENV, fault)
    return lambda: run_finetune(_tiny_spec(), tmp_path / "ft", data, NoisyAdapter())


def test_a_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import torch

    run = _tiny_run(tmp_path, monkeypatch, "nan@finetune.loss:4")  # save_every=1, one micro-batch a step
    with pytest.raises(HarnessError, match="loss became nan at step 4.*last good checkpoint kept"):
        run()
    state = torch.load(tmp_path / "ft" / "checkpoint" / "state.pt", weights_only=False)
    assert state["step"] == 3 and not (tmp_path / "ft" / "training.json").exists()


def test_an_oom_during_finetune_names_the_settings_to_change(tmp_path, monkeypatch):
    run = _tiny_run(tmp_path, monkeypatch, "oom@finetune.forward:2")
    with pytest.raises(HarnessError) as info:
        run()
    message = str(info.value)
    assert "out of memory at step 2" in message and "\n" not in message
    for setting in ("finetune.batch_size", "finetune.grad_accum", "finetune.max_length",
                    "finetune.gradient_checkpointing", "qlora"):
        assert setting in message


def test_disk_full_in_a_folder_save_keeps_the_old_folder(tmp_path):
    """save_pretrained goes through safetensors / torch writers that wrap the OS error: matched by its text."""
    from harness.fileio import atomic_dir

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "weights").write_text("old")
    with pytest.raises(HarnessError, match=f"disk full writing {adapter}: previous state intact"):
        with atomic_dir(adapter) as tmp:
            (tmp / "weights").write_text("new, half")
            raise RuntimeError("failed writing file: No space left on device")
    assert (adapter / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
    with atomic_dir(adapter) as tmp:
        (tmp / "weights").write_text("new")
    assert (adapter / "weights").read_text() == "new"
