"""bench/peers/report.py: ratios to the best peer, targets met or missed, the page."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from peers.report import compare, health_p99, render

MACHINE = {"cpus": 2, "cpu_model": "Test CPU", "python": "3.11.7", "date": "2026-01-02 03:04 UTC"}


def load(texts_per_s: float, p50: float, p99: float, cpu: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"texts_per_s": texts_per_s, "p50_ms": p50, "p99_ms": p99, "errors": {}}
    if cpu is not None:
        out["cpu_s_per_1000_texts"] = cpu
    return out


def probe(p99: float | None, probes: int = 100, failed: int = 0) -> dict[str, Any]:
    return {"probes": probes, "failed": failed, "p50_ms": p99, "p99_ms": p99, "max_ms": p99}


def server(key: str, *, tps: float, batch: float, p50: float, p99: float,
           health: dict[str, Any], rss: float, first: float) -> dict[str, Any]:  # fmt: skip
    return {
        "key": key, "label": f"{key} server", "first_embedding_s": first,
        "lone": load(1000 / p50, p50, p50 * 2), "single": load(tps, p99 / 2, p99, cpu=9.0),
        "batch": load(batch, 900.0, 1000.0, cpu=8.0), "health": health, "rss_after_load_mib": rss,
        "rss_by_process_mib": {f"{key}-main": rss}, "load_average_before": 1.5,
        "load_average_after": 2.4,
    }  # fmt: skip


SERVERS = [
    server("tandem", tps=160, batch=180, p50=17.1, p99=370,
           health={"core /healthz": probe(8.0), "core gRPC health": probe(23.6),
                   "gateway /readyz": probe(5.0)}, rss=321, first=1.8),
    server("infinity-onnx", tps=124, batch=133, p50=14.9, p99=304,
           health={"/health": probe(14.8)}, rss=1932, first=14.4),
    server("infinity-torch", tps=90, batch=133, p50=27.6, p99=393,
           health={"/health": probe(11.1)}, rss=1107, first=11.4),
    server("naive", tps=59, batch=122, p50=14.9, p99=693,
           health={"/healthz": probe(None, probes=12, failed=12)}, rss=860, first=7.3),
]  # fmt: skip

DATA: dict[str, Any] = {
    "command": "make bench-peers",
    "machine": MACHINE,
    "quick": False,
    "corpus": {"texts": 2000, "min_tokens": 17, "max_tokens": 64, "mean_tokens": 40.5},
    "sample_texts": 64,
    "agreement": [
        {"server": k, "texts": 64, "min_cosine": 0.99999, "worst_text": "x"}
        for k in ("infinity-onnx", "infinity-torch", "naive")
    ],
    "servers": SERVERS,
}


def by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in rows}


def test_throughput_is_compared_with_the_fastest_peer() -> None:
    rows = by_key(compare(SERVERS))
    assert rows["single_tps"]["best_peer"] == "infinity-onnx"
    assert rows["single_tps"]["ratio"] == pytest.approx(160 / 124, abs=1e-3)
    assert rows["single_tps"]["met"] is False  # 1.29x < 1.5x
    assert rows["batch_tps"]["best_peer"] in ("infinity-onnx", "infinity-torch")  # a tie at 133


def test_latency_is_compared_with_the_lowest_peer() -> None:
    rows = by_key(compare(SERVERS))
    assert rows["lone_p50"]["best_peer_value"] == 14.9
    assert rows["lone_p50"]["ratio"] == pytest.approx(17.1 / 14.9, abs=1e-3)
    assert rows["lone_p50"]["met"] is False  # needs <= 0.7x
    assert rows["single_p99"]["best_peer"] == "infinity-onnx"
    assert rows["single_p99"]["met"] is False  # 370 > 304


def test_absolute_targets_use_tandems_own_figure() -> None:
    rows = by_key(compare(SERVERS))
    assert rows["rss"]["met"] is True  # 321 MiB <= 400
    assert rows["first_embedding"]["met"] is True  # 1.8 s <= 2
    assert rows["health_p99"]["tandem"] == 23.6  # the slowest of Tandem's three probes
    assert rows["health_p99"]["met"] is False
    assert rows["single_cpu"]["met"] is None  # for reference only


def test_a_peer_whose_probes_all_timed_out_has_no_health_figure() -> None:
    assert health_p99(SERVERS[3]) is None
    rows = by_key(compare(SERVERS))
    assert rows["health_p99"]["best_peer"] == "infinity-torch"  # 11.1 ms; the naive one is out


def test_a_faster_tandem_meets_the_ratio_targets() -> None:
    servers = copy.deepcopy(SERVERS)
    servers[0]["single"]["texts_per_s"] = 200.0
    servers[0]["lone"]["p50_ms"] = 10.0
    rows = by_key(compare(servers))
    assert rows["single_tps"]["met"] is True  # 200 / 124 = 1.61
    assert rows["lone_p50"]["met"] is True  # 10 / 14.9 = 0.67


def test_page_has_the_table_the_ratios_and_a_paragraph_per_missed_target() -> None:
    page = render(DATA)
    assert "    make bench-peers" in page
    assert "shared 2-CPU machine" in page
    assert "| infinity-onnx server | 14.4 s | 14.9 ms (29.8) | 124 (304 ms) | 133 |" in page
    assert "all 12 probes timed out" in page
    assert "23.6 ms (core gRPC health)" in page
    missed = page.split("## Targets missed", 1)[1]
    assert "**1 text, concurrency 32: texts/s** (>= 1.5x the best peer)" in missed
    assert "**1 text, concurrency 1: p50 ms**" in missed
    assert "**RSS after load" not in missed  # met: no paragraph
    assert "Quick run" not in page
    assert "infinity ONNX 1.5 / 2.4" in page  # how busy the machine was, per server


def test_issue_baseline_sits_beside_this_run() -> None:
    page = render(DATA)
    assert "| Tandem | 1.8 -> 1.8 | 17.1 -> 17.1 | 161 -> 160 | 369 -> 370 | 181 -> 180 |" in page
    assert "| naive | 7.3 -> 7.3 | 14.9 -> 14.9 | 59 -> 59 | 693 -> 693 | 122 -> 122 | " in page
    assert "timed out -> timed out" in page


def test_a_busy_machine_is_called_out() -> None:
    assert "machine was busy" not in render(DATA)  # 2.4 on 2 CPUs: the benchmark's own load
    busy = copy.deepcopy(DATA)
    busy["servers"][2]["load_average_after"] = 7.5
    assert "**The machine was busy during this run** (load average up to 7.5 on 2 CPUs)" in render(
        busy
    )


def test_a_quick_run_says_so() -> None:
    assert "Quick run (`--quick`)" in render({**DATA, "quick": True})
