"""Quality measures of a quantised model against fp32, as a search user feels them.

Every function takes L2-normalised vectors (rows), so a dot product is a cosine.
"""

from __future__ import annotations

import numpy as np

TOP_K = 10
PAIR_SAMPLE = 200_000
PAIR_SEED = 20261129


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def rowwise_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b``."""
    return np.asarray((a * b).sum(axis=1))


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Indices of each query's ``k`` nearest corpus rows, nearest first."""
    scores = queries @ corpus.T
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def neighbour_overlap(want: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Per query: the share of the reference's top-k that the other top-k also holds."""
    k = want.shape[1]
    return np.array([len(set(w) & set(g)) / k for w, g in zip(want, got, strict=True)])


def sample_pairs(n: int, count: int = PAIR_SAMPLE, seed: int = PAIR_SEED) -> np.ndarray:
    """``count`` fixed pairs (i, j), i != j, of ``n`` rows: the same pairs for every variant."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, count)
    j = (i + rng.integers(1, n, count)) % n  # never i itself
    return np.stack([i, j], axis=1)


def pair_similarities(vectors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return rowwise_cosines(vectors[pairs[:, 0]], vectors[pairs[:, 1]])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's on the ranks (float ties are negligible here)."""
    ranks_a = np.empty(len(a))
    ranks_a[np.argsort(a, kind="stable")] = np.arange(len(a))
    ranks_b = np.empty(len(b))
    ranks_b[np.argsort(b, kind="stable")] = np.arange(len(b))
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])
