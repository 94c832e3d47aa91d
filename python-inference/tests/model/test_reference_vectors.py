"""Correctness first: the served model reproduces the official pipeline's vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tandem.model.manifest import ModelManifest
from tandem.model.minilm import NORMALIZED, MiniLMEmbedding
from tandem.model.source import locate_source_model

MIN_COSINE = 0.9999


def _embed(model_dir: Path, precision: str, texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """Through the served model's interface: tokenize, one padded batch, post-process."""
    model = MiniLMEmbedding(model_dir, ModelManifest.read(model_dir), precision)  # type: ignore[arg-type]
    tokenized = model.tokenize(texts)
    raw = model.open_session(1).encode([t.ids for t in tokenized])
    vectors = model.postprocess(raw, [NORMALIZED] * len(texts))
    return vectors, [t.token_count for t in tokenized]


def _cosines(vectors: np.ndarray, reference: dict[str, Any]) -> np.ndarray:
    expected = np.array([item["embedding"] for item in reference["items"]], dtype=np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    return np.asarray((vectors * expected).sum(axis=1))


def test_every_reference_item_matches_fp32(model_dir: Path, reference: dict[str, Any]) -> None:
    items = reference["items"]
    vectors, token_counts = _embed(model_dir, "fp32", [item["text"] for item in items])
    cosines = _cosines(vectors, reference)
    for item, cosine, tokens in zip(items, cosines, token_counts, strict=True):
        assert cosine >= MIN_COSINE, f"{item['text'][:40]!r}: cosine {cosine:.6f}"
        assert tokens == item["tokens_after_truncation"], item["text"][:40]


def test_reference_batch_padding_does_not_change_vectors(
    model_dir: Path, reference: dict[str, Any]
) -> None:
    """One text alone and the same text padded inside a batch give the same vector."""
    texts = [item["text"] for item in reference["items"]]
    batched, _ = _embed(model_dir, "fp32", texts)
    alone, _ = _embed(model_dir, "fp32", [texts[0]])
    assert float(alone[0] @ batched[0]) >= 0.99999


def test_int8_quality_is_measured_and_close(model_dir: Path, reference: dict[str, Any]) -> None:
    """int8 is an opt-in trade: near fp32, not identical.

    The shipped recipe (model/quantize.py) measured min 0.984, mean 0.994 on
    these items in `make bench-int8` (the graph before it: 0.970, 0.990);
    dynamic activation scales move a vector with its batch-mates by up to
    about 0.01 (docs/benchmarks/int8.md), hence the margin.
    """
    vectors, token_counts = _embed(model_dir, "int8", [i["text"] for i in reference["items"]])
    cosines = _cosines(vectors, reference)
    assert cosines.min() >= 0.975
    assert cosines.mean() >= 0.988
    assert token_counts == [item["tokens_after_truncation"] for item in reference["items"]]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_manifest_lists_built_graphs(
    model_dir: Path, precision: str, reference: dict[str, Any]
) -> None:
    manifest = ModelManifest.read(model_dir)
    assert manifest.dimension == len(reference["items"][0]["embedding"])
    assert manifest.max_tokens == locate_source_model().max_seq_length
    assert manifest.graph_path(model_dir, precision).exists()  # type: ignore[arg-type]
