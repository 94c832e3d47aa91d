"""What the core needs from a model: the one seam between serving and the model.

Batching, admission, deadlines and workers (tandem.batching, tandem.admission,
tandem.worker_health) see token rows and output rows, never embeddings: a
model turns texts into token rows (``tokenize``), one padded batch of rows into
raw output rows (``Session.encode``, on a worker thread), and raw rows into the
answer (``postprocess``, on the same worker thread, per request options).
all-MiniLM-L6-v2 is the implementation (tandem.model.minilm); docs/your-model.md
says how to add another.

A model directory is built once (``tandem build-model``) and described by its
manifest, which also carries the model's measured capacity inputs for the
worker math (tandem.model.measure).

Rules an implementation keeps, because the scheduler relies on them:
- ``tokenize`` is thread-safe: it runs on the event loop for small requests
  and on tokenizer threads for large ones.
- ``Session.encode`` releases the GIL while it computes (ONNX Runtime does),
  returns float32 [len(rows), width] rows in input order, and may be called by
  several worker threads at once (single-threaded workers share one session).
- ``postprocess`` may work in place on ``outputs`` (it owns them) and must be
  cheap: it runs on a worker thread between two batches.
- Non-finite outputs need no check here: the scheduler fails those texts for
  any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from tandem.model.manifest import ModelManifest, Precision
from tandem.model.tokenizer import TokenizedText

OptionsT_contra = TypeVar("OptionsT_contra", contravariant=True)


class Session(Protocol):
    """One inference session (a worker's): one padded batch in, raw output rows out."""

    def encode(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        """Pad ``rows`` (int32 token ids) into one batch and run it: float32 [len(rows), width]."""
        ...


class Model(Protocol[OptionsT_contra]):
    """A servable model; ``OptionsT_contra`` is its per-request post-processing options."""

    @property
    def manifest(self) -> ModelManifest:
        """Its id, aliases, output width, maximum tokens and measured capacity inputs."""
        ...

    @property
    def precision(self) -> Precision:
        """Which of the manifest's graphs this instance serves."""
        ...

    @property
    def model_id(self) -> str:
        """The id clients ask for: the manifest's, suffixed for a non-fp32 precision."""
        ...

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names clients may ask for, suffixed like ``model_id``."""
        ...

    @property
    def min_tokens_per_text(self) -> int:
        """The fewest tokens a non-empty text becomes (special tokens included).

        Admission's deadline check before tokenizing uses it as a lower bound.
        """
        ...

    @property
    def warmup_texts(self) -> Sequence[str]:
        """Texts that reach every kernel and the largest row shape before the core is ready."""
        ...

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Token rows (at most ``manifest.max_tokens`` each) and each text's full length."""
        ...

    def open_session(self, intra_op_threads: int, *, exclusive: bool = False) -> Session:
        """A new inference session with exactly this many compute threads.

        ``exclusive``: the scheduler runs it only while no other batch runs
        (the wide session), so its threads may busy-wait between parallel
        steps instead of sleeping: nothing else needs those CPUs meanwhile.
        """
        ...

    def postprocess(self, outputs: np.ndarray, options: Sequence[OptionsT_contra]) -> np.ndarray:
        """The answer rows for one batch: ``options[i]`` is row i's request's options."""
        ...
