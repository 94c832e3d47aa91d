"""bench/int8: the quality measures and the generated corpus behind `make bench-int8`."""

from __future__ import annotations

import numpy as np
import pytest
from int8 import quality as q
from int8.corpus import TOPICS, make_queries, make_varied_corpus


def words(text: str) -> int:
    return len(text.split()) + 2  # a stand-in tokenizer: words plus [CLS] and [SEP]


def test_top_k_is_nearest_first() -> None:
    corpus = q.normalise(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.2]]))
    query = q.normalise(np.array([[1.0, 0.1]]))

    assert q.top_k(query, corpus, k=3).tolist() == [[3, 0, 2]]


def test_overlap_counts_shared_neighbours_whatever_their_order() -> None:
    want = np.array([[1, 2, 3, 4], [1, 2, 3, 4]])
    got = np.array([[4, 3, 2, 1], [1, 2, 9, 8]])

    assert q.neighbour_overlap(want, got).tolist() == [1.0, 0.5]


def test_spearman_sees_ranks_not_values() -> None:
    a = np.array([0.1, 0.2, 0.3, 0.4])

    assert q.spearman(a, a**3) == pytest.approx(1.0)  # monotone: same ranks
    assert q.spearman(a, -a) == pytest.approx(-1.0)
    assert q.spearman(a, np.array([0.2, 0.1, 0.3, 0.4])) == pytest.approx(0.8)


def test_sampled_pairs_are_fixed_and_never_a_row_with_itself() -> None:
    pairs = q.sample_pairs(50, count=10_000)

    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert pairs.min() >= 0
    assert pairs.max() < 50
    assert (q.sample_pairs(50, count=10_000) == pairs).all()


def test_corpus_is_deterministic_distinct_and_within_bounds() -> None:
    texts = make_varied_corpus(300, words, min_tokens=10, max_tokens=40)

    assert texts == make_varied_corpus(300, words, min_tokens=10, max_tokens=40)
    assert len(set(texts)) == 300
    assert all(10 <= words(t) <= 40 for t in texts)
    assert make_varied_corpus(50, words, seed=1) != texts[:50]


def test_corpus_and_queries_cover_every_topic() -> None:
    texts = " ".join(make_varied_corpus(300, words)) + " ".join(make_queries(300))

    for topic, (roles, *_rest) in TOPICS.items():
        assert any(role in texts for role in roles), topic
    assert len(set(make_queries(300))) == 300
