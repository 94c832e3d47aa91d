"""MiniLMEmbedding: the model interface's implementation for all-MiniLM-L6-v2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tandem.model.interface import Model
from tandem.model.manifest import ModelManifest
from tandem.model.minilm import NORMALIZED, RAW, EmbedOptions, MiniLMEmbedding


@pytest.fixture(scope="module")
def model(model_dir: Path) -> MiniLMEmbedding:
    return MiniLMEmbedding(model_dir, ModelManifest.read(model_dir), "fp32")


def test_it_is_a_model(model: MiniLMEmbedding) -> None:
    """The static check lives in server.py (mypy); this one fails if a member goes missing."""
    served: Model[EmbedOptions] = model
    for name in (
        "manifest",
        "precision",
        "model_id",
        "aliases",
        "min_tokens_per_text",
        "warmup_texts",
    ):
        assert getattr(served, name) is not None
    for name in ("tokenize", "open_session", "postprocess"):
        assert callable(getattr(served, name))


def test_fp32_serves_the_manifests_names(model: MiniLMEmbedding) -> None:
    assert model.model_id == model.manifest.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert model.aliases == model.manifest.aliases == ("all-MiniLM-L6-v2",)


def test_int8_is_its_own_model_named_after_the_manifests_names(model_dir: Path) -> None:
    """The gateway routes by these names: derived, never typed a second time."""
    manifest = ModelManifest.read(model_dir)
    int8 = MiniLMEmbedding(model_dir, manifest, "int8")
    assert int8.model_id == f"{manifest.model_id}-int8"
    assert int8.aliases == tuple(f"{alias}-int8" for alias in manifest.aliases)
    assert "all-MiniLM-L6-v2-int8" in int8.aliases
    # No name of one precision is a name of the other.
    fp32 = MiniLMEmbedding(model_dir, manifest, "fp32")
    assert not {int8.model_id, *int8.aliases} & {fp32.model_id, *fp32.aliases}


def test_postprocess_normalises_only_the_rows_that_asked_in_place() -> None:
    outputs = np.array([[3, 4], [3, 4], [0, 0]], dtype=np.float32)
    result = MiniLMEmbedding.postprocess(
        None,  # type: ignore[arg-type]  # postprocess reads no instance state
        outputs,
        [RAW, NORMALIZED, NORMALIZED],
    )
    assert result is outputs  # no copy on the hot path
    assert result[0].tolist() == [3, 4]
    assert result[1].tolist() == pytest.approx([0.6, 0.8])
    # A zero vector stays zero (sentence-transformers' epsilon), never NaN.
    assert result[2].tolist() == [0, 0]


def test_all_raw_rows_are_returned_untouched() -> None:
    outputs = np.array([[3, 4]], dtype=np.float32)
    assert MiniLMEmbedding.postprocess(None, outputs, [RAW]).tolist() == [[3, 4]]  # type: ignore[arg-type]


def test_min_tokens_is_what_the_shortest_text_becomes(model: MiniLMEmbedding) -> None:
    (one,) = model.tokenize(["a"])
    assert one.token_count == model.min_tokens_per_text + 1  # "a" plus [CLS] and [SEP]
    assert model.min_tokens_per_text == 2


def test_warmup_reaches_the_longest_row(model: MiniLMEmbedding) -> None:
    lengths = [t.token_count for t in model.tokenize(list(model.warmup_texts))]
    assert max(lengths) == model.manifest.max_tokens
    assert min(lengths) < model.manifest.max_tokens


def test_a_session_returns_one_raw_row_per_text_of_the_manifests_width(
    model: MiniLMEmbedding,
) -> None:
    tokenized = model.tokenize(["short", "a somewhat longer text than the first"])
    raw = model.open_session(1).encode([t.ids for t in tokenized])
    assert raw.shape == (2, model.manifest.dimension)
    assert raw.dtype == np.float32
    # Mean pooling is in the graph; normalisation is not (a per-request option).
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_an_all_normalised_batch_is_normalised_in_place() -> None:
    outputs = np.array([[3, 4], [0, 0], [6, 8]], dtype=np.float32)
    result = MiniLMEmbedding.postprocess(None, outputs, [NORMALIZED] * 3)  # type: ignore[arg-type]
    assert result is outputs
    assert result.tolist() == [pytest.approx([0.6, 0.8]), [0, 0], pytest.approx([0.6, 0.8])]
