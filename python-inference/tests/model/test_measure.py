"""The built model's measured capacity inputs (tandem.model.measure) and the manifest format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.model.manifest import FORMAT_VERSION, MANIFEST_FILE, ModelManifest
from tandem.model.measure import (
    ACTIVATION_GRANULARITY_BYTES,
    activation_bytes_per_token,
    initializer_bytes,
    round_up,
)


def test_round_up_to_granularity() -> None:
    assert round_up(1, 8192) == 8192
    assert round_up(8192, 8192) == 8192
    assert round_up(8192.5, 8192) == 16384


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_manifest_records_what_the_worker_math_needs(model_dir: Path, precision: str) -> None:
    manifest = ModelManifest.read(model_dir)
    measured = manifest.capacity_of(precision)  # type: ignore[arg-type]
    graph = manifest.graph_path(model_dir, precision)  # type: ignore[arg-type]
    # Weights: exactly the graph's initializers, a little less than its file.
    assert measured.weights_bytes == initializer_bytes(graph)
    assert 0.9 * graph.stat().st_size < measured.weights_bytes <= graph.stat().st_size
    # Activations: a whole number of granules, and at least the hidden state
    # of one token in float32 (the smallest thing a transformer keeps per token).
    assert measured.activation_bytes_per_token % ACTIVATION_GRANULARITY_BYTES == 0
    assert measured.activation_bytes_per_token >= manifest.dimension * 4


def test_int8_weights_are_about_a_quarter_of_fp32(model_dir: Path) -> None:
    manifest = ModelManifest.read(model_dir)
    fp32 = manifest.capacity_of("fp32").weights_bytes
    int8 = manifest.capacity_of("int8").weights_bytes
    assert 0.2 < int8 / fp32 < 0.35


def test_measuring_again_gives_the_recorded_figure(model_dir: Path) -> None:
    """The rounding absorbs run-to-run noise: the drift check must not flake."""
    manifest = ModelManifest.read(model_dir)
    graph = manifest.graph_path(model_dir, "fp32")
    again = activation_bytes_per_token(graph, manifest.max_tokens)
    assert again == manifest.capacity_of("fp32").activation_bytes_per_token


def test_an_older_manifest_asks_for_a_rebuild(tmp_path: Path, model_dir: Path) -> None:
    old = json.loads((model_dir / MANIFEST_FILE).read_text())
    old["format_version"] = FORMAT_VERSION - 1
    del old["capacity"]
    old["weights_bytes"] = 1
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(old))
    with pytest.raises(ValueError, match="rebuild the model"):
        ModelManifest.read(tmp_path)


def test_a_precision_that_was_not_built_is_named(model_dir: Path, tmp_path: Path) -> None:
    manifest = ModelManifest.read(model_dir)
    only_fp32 = manifest.model_copy(update={"capacity": {"fp32": manifest.capacity["fp32"]}})
    with pytest.raises(ValueError, match="--precision int8"):
        only_fp32.capacity_of("int8")
