"""bench/cpu_cost.py: CPU per 1,000 texts, batch shape from the core's counters, padding."""

from __future__ import annotations

import pytest
from cpu_cost import CpuRun, batch_shape, padding_share, profile_summary


def test_per_text_and_per_request_cpu() -> None:
    run = CpuRun(texts=3200, requests=100, wall_s=10.0, cpu_s={"core": 32.0, "gateway": 0.5})
    assert run.per_1000_texts("core") == pytest.approx(10.0)  # CPU-seconds per 1,000 texts
    assert run.ms_per_request("gateway") == pytest.approx(5.0)
    assert run.texts_per_s == pytest.approx(320.0)
    assert run.busy("core") == pytest.approx(3.2)


def test_batch_shape_is_the_change_between_two_scrapes() -> None:
    before = {"real_tokens": 1000.0, "padding_tokens": 100.0, "batches": 10.0, "texts": 40.0}
    after = {"real_tokens": 1900.0, "padding_tokens": 200.0, "batches": 30.0, "texts": 120.0}
    assert batch_shape(before, after) == {"mean_batch_texts": 4.0, "padding_share": 0.1}
    assert batch_shape(before, before) == {"mean_batch_texts": 0.0, "padding_share": 0.0}


def test_padding_share_counts_each_batch_padded_to_its_longest() -> None:
    # [10, 20]: 40 computed, 30 real; [5]: 5 and 5.
    assert padding_share([[10, 20], [5]]) == pytest.approx(10 / 45, abs=1e-4)
    assert padding_share([[7, 7, 7]]) == 0.0


def test_profile_summary_lists_the_largest_groups_first_and_the_rest() -> None:
    share = {"model": 0.9, "loop": 0.07, "log": 0.01, "other": 0.02}
    profile = {"1 text": {"samples": 100, "share": share}}
    (line,) = profile_summary(profile, top=2)
    assert line == "- 1 text (100 samples): model 90.0%, loop 7.0%, the rest 3.0%."
