"""ModelManifest: what the core reads from a built model directory, and how it refuses a bad one.

A bad manifest must stop the core at start-up with an answer an operator can
act on ("rebuild", "set TANDEM_CORE_MODEL_DIR"), not a KeyError later on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tandem.model.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    GraphCapacity,
    ModelManifest,
    served_name,
)


def _manifest(**overrides: Any) -> ModelManifest:
    values: dict[str, Any] = {
        "model_id": "org/model",
        "aliases": ("model", "m"),
        "dimension": 384,
        "max_tokens": 256,
        "graphs": {"fp32": "model-fp32.onnx"},
        "source_package": "pkg==1.0",
        "source_sha256": "0" * 64,
        "capacity": {"fp32": GraphCapacity(weights_bytes=1000, activation_bytes_per_token=64)},
    }
    values.update(overrides)
    return ModelManifest(**values)


def _write(directory: Path, document: object) -> Path:
    (directory / MANIFEST_FILE).write_text(json.dumps(document))
    return directory


def _as_json(manifest: ModelManifest) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(manifest.model_dump_json())
    return document


def test_the_built_models_manifest_describes_its_files(model_dir: Path) -> None:
    manifest = ModelManifest.read(model_dir)
    assert manifest.format_version == FORMAT_VERSION
    assert (manifest.model_id, manifest.dimension, manifest.max_tokens) == (
        "sentence-transformers/all-MiniLM-L6-v2", 384, 256,
    )  # fmt: skip
    for precision in manifest.graphs:
        assert manifest.graph_path(model_dir, precision).is_file()
        assert manifest.capacity_of(precision).weights_bytes > 0
    assert set(manifest.capacity) == set(manifest.graphs)
    assert (model_dir / manifest.tokenizer).is_file()


def test_write_then_read_is_the_same_manifest(tmp_path: Path) -> None:
    written = _manifest(graphs={"fp32": "a.onnx", "int8": "b.onnx"}, capacity={
        "fp32": GraphCapacity(weights_bytes=4000, activation_bytes_per_token=64),
        "int8": GraphCapacity(weights_bytes=1000, activation_bytes_per_token=128),
    })  # fmt: skip
    written.write(tmp_path)
    assert ModelManifest.read(tmp_path) == written
    assert (tmp_path / MANIFEST_FILE).read_text().endswith("}\n")


def test_a_missing_manifest_says_how_to_build_the_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as missing:
        ModelManifest.read(tmp_path / "nowhere")
    message = str(missing.value)
    assert f"no built model at {tmp_path / 'nowhere'}" in message
    assert "tandem build-model --output" in message
    assert "TANDEM_CORE_MODEL_DIR" in message


@pytest.mark.parametrize("version", [1, 3, None, "2"])
def test_another_format_version_asks_for_a_rebuild_before_validating(
    tmp_path: Path, version: object
) -> None:
    # Fields of another version would otherwise fail validation one by one.
    document = {"format_version": version, "weights_bytes": 5} if version is not None else {}
    _write(tmp_path, document)
    with pytest.raises(ValueError, match="rebuild the model") as refused:
        ModelManifest.read(tmp_path)
    assert not isinstance(refused.value, ValidationError)
    assert str(tmp_path / MANIFEST_FILE) in str(refused.value)
    assert f"this core reads {FORMAT_VERSION}" in str(refused.value)


@pytest.mark.parametrize(
    ("tamper", "field"),
    [
        (lambda d: d.update(extra_field=1), "extra_field"),
        (lambda d: d["capacity"]["fp32"].update(weights_bytes=0), "capacity.fp32.weights_bytes"),
        (
            lambda d: d["capacity"]["fp32"].update(activation_bytes_per_token=-1),
            "capacity.fp32.activation_bytes_per_token",
        ),
        (lambda d: d["graphs"].update(fp16="model-fp16.onnx"), "graphs.fp16"),
        (lambda d: d.pop("model_id"), "model_id"),
        (lambda d: d.update(dimension="384 floats"), "dimension"),
        (lambda d: d["capacity"]["fp32"].update(flops=1), "capacity.fp32.flops"),
    ],
)
def test_a_tampered_manifest_is_refused_naming_the_field(
    tmp_path: Path, tamper: Any, field: str
) -> None:
    document = _as_json(_manifest())
    tamper(document)
    _write(tmp_path, document)
    with pytest.raises(ValidationError) as refused:
        ModelManifest.read(tmp_path)
    assert field in str(refused.value)


def test_malformed_json_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILE).write_text('{"format_version": 2, "model_id": ')
    with pytest.raises(ValueError):  # noqa: PT011 - the CLI and serve catch ValueError
        ModelManifest.read(tmp_path)


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILE).write_text('{"format_version": 2, "model_id": ')
    with pytest.raises(ValueError, match=MANIFEST_FILE):
        ModelManifest.read(tmp_path)


@pytest.mark.parametrize("document", [[], 2])
def test_a_manifest_that_is_not_an_object_is_a_value_error(
    tmp_path: Path, document: object
) -> None:
    _write(tmp_path, document)
    with pytest.raises(ValueError):  # noqa: PT011
        ModelManifest.read(tmp_path)


def test_served_names_are_the_manifests_for_fp32_and_suffixed_otherwise() -> None:
    manifest = _manifest()
    assert manifest.served_model_id("fp32") == "org/model"
    assert manifest.served_aliases("fp32") == ("model", "m")
    assert manifest.served_model_id("int8") == "org/model-int8"
    assert manifest.served_aliases("int8") == ("model-int8", "m-int8")
    assert served_name("x", "int8") == "x-int8"
    assert served_name("x", "fp32") == "x"


def test_a_precision_not_built_names_what_was_built(tmp_path: Path) -> None:
    manifest = _manifest()
    with pytest.raises(ValueError, match=r"no int8 graph \(built: fp32\)") as graph:
        manifest.graph_path(tmp_path, "int8")
    assert "tandem build-model --precision int8" in str(graph.value)
    with pytest.raises(ValueError, match=r"no int8 capacity record \(built: fp32\)"):
        manifest.capacity_of("int8")
    assert manifest.graph_path(tmp_path, "fp32") == tmp_path / "model-fp32.onnx"


def test_a_manifest_is_immutable() -> None:
    manifest = _manifest()
    with pytest.raises(ValidationError):
        manifest.model_id = "other"  # type: ignore[misc]
