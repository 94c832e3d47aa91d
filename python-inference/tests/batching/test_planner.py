from __future__ import annotations

import random

import pytest

from tandem.batching.planner import BatchLimits, plan_batch

LIMITS = BatchLimits(max_size=8, max_tokens=512, max_padding_ratio=0.25)


def _padding(lengths: list[int], chosen: list[int]) -> float:
    longest = max(lengths[i] for i in chosen)
    padded = longest * len(chosen)
    return (padded - sum(lengths[i] for i in chosen)) / padded


def test_single_item_is_a_batch_whatever_its_length() -> None:
    assert plan_batch([256], 0, BatchLimits(1, 256, 0.0)) == [0]
    assert plan_batch([300], 0, BatchLimits(8, 256, 0.0)) == [0]


def test_groups_similar_lengths_around_the_anchor() -> None:
    lengths = [40, 10, 41, 200, 39, 11, 42]
    chosen = plan_batch(lengths, 0, BatchLimits(8, 512, 0.1))
    assert sorted(chosen) == [0, 2, 4, 6]  # the ~40-token texts, not 10s or 200


def test_respects_size_and_token_budget() -> None:
    lengths = [50] * 20
    assert len(plan_batch(lengths, 0, LIMITS)) == 8  # max_size
    assert len(plan_batch(lengths, 0, BatchLimits(32, 512, 0.25))) == 10  # 10 x 50 <= 512


@pytest.mark.parametrize("seed", range(20))
def test_random_queues_always_satisfy_the_limits(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.randint(3, 256) for _ in range(rng.randint(1, 200))]
    anchor = rng.randrange(len(lengths))
    chosen = plan_batch(lengths, anchor, LIMITS)
    assert anchor in chosen
    assert len(set(chosen)) == len(chosen)
    assert len(chosen) <= LIMITS.max_size
    if len(chosen) > 1:
        assert max(lengths[i] for i in chosen) * len(chosen) <= LIMITS.max_tokens
        assert _padding(lengths, chosen) <= LIMITS.max_padding_ratio


def test_sorted_batches_waste_less_than_arrival_order() -> None:
    """The point of the planner: far less padding than FIFO batches of the same size."""
    rng = random.Random(7)
    lengths = [rng.randint(16, 64) for _ in range(64)]
    chosen = plan_batch(lengths, 0, BatchLimits(8, 4096, 1.0))
    fifo = list(range(8))
    assert _padding(lengths, chosen) < _padding(lengths, fifo) / 2
