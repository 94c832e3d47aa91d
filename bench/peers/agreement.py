"""Do the servers compute the same vectors? Checked before anything is reported.

A throughput figure means nothing if a server embeds differently (infinity's
ONNX engine pools with the [CLS] token unless told to use mean pooling, for
one). Every server embeds the same sample of the corpus; each one's vectors
must have a cosine of at least ``MIN_COSINE`` with Tandem's, text by text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_COSINE = 0.999


class VectorsDisagree(RuntimeError):
    """A server's vectors differ from the reference's: its numbers are not comparable."""


@dataclass(frozen=True)
class Agreement:
    server: str
    texts: int
    min_cosine: float
    worst_text: str


def cosines(reference: Sequence[Sequence[float]], other: Sequence[Sequence[float]]) -> list[float]:
    """Row-by-row cosine similarity of two equally shaped lists of vectors."""
    a, b = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise VectorsDisagree(f"shapes differ: {a.shape} against {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return [float(x) for x in np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)]


def check_agreement(
    server: str,
    texts: Sequence[str],
    reference: Sequence[Sequence[float]],
    other: Sequence[Sequence[float]],
    min_cosine: float = MIN_COSINE,
) -> Agreement:
    """The lowest cosine over ``texts``; raises VectorsDisagree, naming the server
    and the worst text, when it is below ``min_cosine``."""
    if not texts or len(texts) != len(reference):
        raise ValueError(f"{len(texts)} texts for {len(reference)} reference vectors")
    values = cosines(reference, other)
    worst = int(np.argmin(values))
    result = Agreement(server, len(texts), round(values[worst], 6), texts[worst])
    if not values[worst] >= min_cosine:  # also catches NaN
        raise VectorsDisagree(
            f"{server}: cosine {values[worst]:.6f} < {min_cosine} against Tandem's vector "
            f"for {texts[worst]!r} (worst of {len(texts)} texts)"
        )
    return result
