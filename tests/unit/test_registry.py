"""Every shipped config loads, and broken ones fail with one line naming file and field."""

from __future__ import annotations

import pytest

from harness import registry
from harness.errors import HarnessError
from harness.plugins import resolve_object
from harness.specs import VARIANTS


def test_every_shipped_config_loads():
    root = registry.config_root()
    cards = registry.list_models()
    assert {c.name for c in cards} == {p.stem for p in (root / "models").glob("*.yaml")}
    for card in cards:
        # Revisions are pinned to immutable commits, not branches, unless the card says why not yet
        # (`unpinned:`; harness doctor warns until `harness pin` resolves it).
        assert card.unpinned or (len(card.revision) >= 10 and card.revision not in ("main", "master")), card.name
        resolve_object(card.adapter)
        if card.twin:
            resolve_object(card.twin["builder"])
    for path in (root / "benchmarks").glob("*.yaml"):
        assert registry.load_benchmark(path.stem).metrics
    for path in (root / "presets").glob("*.yaml"):
        registry.load_preset(path.stem)
    assert "finetuned" in VARIANTS


def _with_models(tmp_path, monkeypatch, text: str):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bad.yaml").write_text(text)
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path))


def test_unknown_field_is_named(tmp_path, monkeypatch):
    _with_models(tmp_path, monkeypatch, "name: bad\nfamily: x\nadapter: a:b\nhub_id: h\nrevision: r\ncolour: 3\n")
    with pytest.raises(HarnessError, match=r"bad.yaml: unknown field\(s\) \['colour'\]"):
        registry.load_model("bad")


def test_missing_field_is_named(tmp_path, monkeypatch):
    _with_models(tmp_path, monkeypatch, "name: bad\nfamily: x\nadapter: a:b\nhub_id: h\n")
    with pytest.raises(HarnessError, match="bad.yaml: missing field 'revision'"):
        registry.load_model("bad")


def test_invalid_yaml_names_line(tmp_path, monkeypatch):
    _with_models(tmp_path, monkeypatch, "name: bad\nfamily: [unclosed\n")
    with pytest.raises(HarnessError, match=r"bad.yaml:\d+: invalid YAML"):
        registry.load_model("bad")


def test_unknown_model_lists_known():
    with pytest.raises(HarnessError, match="unknown model 'nope' \\(known: .*qwen2vl"):
        registry.load_model("nope")
