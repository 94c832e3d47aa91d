"""all-MiniLM-L6-v2 as a tandem model: sentence embeddings, optionally L2-normalised.

The graph already mean-pools the last hidden states over real tokens
(graph.py), so a session's raw rows are the unnormalised sentence vectors;
post-processing only L2-normalises the rows whose request asked for it. The
fp32 and int8 graphs of the same build are served by the same class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tandem.model.manifest import ModelManifest, Precision
from tandem.model.runtime import OnnxEncoder
from tandem.model.tokenizer import TextTokenizer, TokenizedText

# [CLS] and [SEP]: the fewest tokens a non-empty text becomes.
_SPECIAL_TOKENS = 2
# Same epsilon as torch.nn.functional.normalize in sentence-transformers.
_NORM_EPSILON = 1e-12


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    """Per-request post-processing options."""

    normalize: bool


NORMALIZED = EmbedOptions(normalize=True)
RAW = EmbedOptions(normalize=False)


class MiniLMEmbedding:
    """Implements tandem.model.interface.Model[EmbedOptions] for a built model directory."""

    min_tokens_per_text = _SPECIAL_TOKENS

    def __init__(self, model_dir: Path, manifest: ModelManifest, precision: Precision) -> None:
        self._manifest = manifest
        self._precision = precision
        self._graph = manifest.graph_path(model_dir, precision)
        self._tokenizer = TextTokenizer(model_dir / manifest.tokenizer, manifest.max_tokens)
        # A short text, and one longer than the maximum (one token per
        # "warm"): the first real request of either kind finds ORT's arena
        # and kernels ready.
        self._warmup = ("warm up", "warm " * (manifest.max_tokens + 1))

    @property
    def manifest(self) -> ModelManifest:
        return self._manifest

    @property
    def precision(self) -> Precision:
        return self._precision

    @property
    def model_id(self) -> str:
        return self._manifest.served_model_id(self._precision)

    @property
    def aliases(self) -> tuple[str, ...]:
        return self._manifest.served_aliases(self._precision)

    @property
    def warmup_texts(self) -> Sequence[str]:
        return self._warmup

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        return self._tokenizer.encode(texts)

    def open_session(self, intra_op_threads: int, *, exclusive: bool = False) -> OnnxEncoder:
        return OnnxEncoder(self._graph, intra_op_threads, spin=exclusive)

    def postprocess(self, outputs: np.ndarray, options: Sequence[EmbedOptions]) -> np.ndarray:
        """L2-normalise, in place, the rows whose request asked for it."""
        flags = [o.normalize for o in options]
        if all(flags):
            # The default, and the common batch: the whole array in place, no
            # boolean-mask copy.
            norms = np.linalg.norm(outputs, axis=1, keepdims=True)
            outputs /= np.maximum(norms, _NORM_EPSILON)
        elif any(flags):
            mask = np.array(flags, dtype=bool)
            selected = outputs[mask]
            norms = np.linalg.norm(selected, axis=1, keepdims=True)
            outputs[mask] = selected / np.maximum(norms, _NORM_EPSILON)
        return outputs
