"""bench/peers/agreement.py: the check that stops the peers benchmark before it reports."""

from __future__ import annotations

import math

import pytest
from peers.agreement import MIN_COSINE, VectorsDisagree, check_agreement, cosines

TEXTS = ["first text", "second text", "third text"]
REFERENCE = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0]]


def test_cosines_ignore_scale() -> None:
    scaled = [[2.0 * x for x in v] for v in REFERENCE]
    assert cosines(REFERENCE, scaled) == pytest.approx([1.0, 1.0, 1.0])


def test_identical_vectors_agree() -> None:
    result = check_agreement("peer", TEXTS, REFERENCE, REFERENCE)
    assert result.min_cosine == pytest.approx(1.0)
    assert result.texts == 3


def test_disagreement_names_the_server_and_the_worst_text() -> None:
    other = [list(v) for v in REFERENCE]
    other[1] = [0.0, 0.9, 0.1]  # cosine 0.994: below the bar
    other[2] = [0.6, 0.8, 0.01]  # cosine 0.99995: fine
    with pytest.raises(
        VectorsDisagree, match=r"infinity-onnx: cosine 0\.99\d+ < 0\.999.*'second text'"
    ):
        check_agreement("infinity-onnx", TEXTS, REFERENCE, other)


def test_just_above_the_bar_agrees_and_reports_the_worst() -> None:
    angle = math.acos(MIN_COSINE) * 0.9
    other = [list(v) for v in REFERENCE]
    other[0] = [math.cos(angle), math.sin(angle), 0.0]
    result = check_agreement("peer", TEXTS, REFERENCE, other)
    assert MIN_COSINE < result.min_cosine < 1.0
    assert result.worst_text == "first text"


def test_nan_vectors_never_agree() -> None:
    other = [list(v) for v in REFERENCE]
    other[2] = [math.nan, 0.0, 0.0]
    with pytest.raises(VectorsDisagree, match="third text"):
        check_agreement("peer", TEXTS, REFERENCE, other)


def test_a_different_dimension_or_count_is_refused() -> None:
    with pytest.raises(VectorsDisagree, match="shapes differ"):
        check_agreement("peer", TEXTS, REFERENCE, [[*v, 0.0] for v in REFERENCE])
    with pytest.raises(VectorsDisagree, match="shapes differ"):
        check_agreement("peer", TEXTS, REFERENCE, REFERENCE[:2])
    with pytest.raises(ValueError, match="2 texts for 3 reference vectors"):
        check_agreement("peer", TEXTS[:2], REFERENCE, REFERENCE)
