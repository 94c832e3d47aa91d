"""bench/charts.py: each chart drawn from a small synthetic results file."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import charts
import pytest

MACHINE = {"cpus": 2, "cpu_model": "Test CPU", "python": "3.11.7", "date": "2026-01-02 03:04 UTC"}


def load_row(
    label: str, texts_per_s: float, p50: float, p99: float, texts: int = 1
) -> dict[str, Any]:
    return {"label": label, "texts_per_s": texts_per_s, "requests_per_s": texts_per_s / texts,
            "p50_ms": p50, "p99_ms": p99, "errors": {}, "client_cpu_share": 0.01}  # fmt: skip


CORE: dict[str, Any] = {
    "command": "make bench-core",
    "machine": MACHINE,
    "raw": {"ceiling_texts_per_s": 300.0},
    "served": {
        "rows": [
            load_row("gRPC, 1 text, concurrency 1", 80.0, 12.0, 17.0),
            load_row("gRPC, 1 text, concurrency 32 (saturation)", 200.0, 150.0, 280.0),
            load_row("gRPC, 32 texts, concurrency 4 (saturation)", 230.0, 550.0, 730.0, texts=32),
            load_row("gRPC, 1 text, open loop at 50% (100 req/s)", 100.0, 15.0, 23.0),
        ]
    },
    "http": {
        "ours": {"load": load_row("Tandem core, HTTP", 190.0, 160.0, 290.0)},
        "naive": {"load": load_row("naive: async def calls the model", 150.0, 210.0, 230.0)},
    },
    "memory": [
        {
            "workers": 1,
            "label": "1 x 1",
            "peak_rss_mib": 250.0,
            "formula_mib": 280,
            "limit_mib": 350,
            "error_pct": 12.0,
            "startup_s": 1.0,
        },
        {
            "workers": 2,
            "label": "2 x 1, 256 x 8 KB texts (admission bound)",
            "peak_rss_mib": 660.0,
            "formula_mib": 675,
            "limit_mib": 844,
            "error_pct": 2.3,
            "startup_s": None,
        },
    ],
    "memory_measured": {
        "date": "2026-01-05 06:07 UTC",
        "command": 'make bench-core BENCH_ARGS="--only memory"',
    },
}

GATEWAY: dict[str, Any] = {
    "command": "make bench-gateway",
    "machine": MACHINE,
    "stages": [
        {
            "level": "light",
            "requests": 300,
            "requests_per_s": 85.0,
            "errors": 0,
            "stages_ms": {
                "gateway": 0.3,
                "network": 0.6,
                "queue": 0.4,
                "tokenization": 0.2,
                "inference": 9.5,
            },
        },
        {
            "level": "70%",
            "requests": 1600,
            "requests_per_s": 160.0,
            "errors": 0,
            "stages_ms": {
                "gateway": 1.1,
                "network": 2.0,
                "queue": 6.0,
                "tokenization": 0.3,
                "inference": 11.0,
            },
        },
    ],
}


def svg_text(path: Path) -> str:
    """The SVG's content; text drawn as paths is kept in comments, which this includes."""
    content = path.read_text()
    ET.fromstring(content)  # well-formed
    return content


def test_every_chart_is_written_as_svg(tmp_path: Path) -> None:
    written = charts.render_charts("core", CORE, tmp_path) + charts.render_charts(
        "gateway", GATEWAY, tmp_path
    )

    assert sorted(p.name for p in written) == [
        "core-latency.svg",
        "core-memory.svg",
        "gateway-stages.svg",
    ]
    for path in written:
        assert svg_text(path).lstrip().startswith("<?xml")


def test_output_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    for out in (first, second):
        charts.render_charts("core", CORE, out)
        charts.render_charts("gateway", GATEWAY, out)

    for path in sorted(first.iterdir()):
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name
        assert "<dc:date>" not in path.read_text()


def figure_text(fig: Any) -> str:
    return " ".join(t.get_text().replace("\n", " ") for t in fig.texts)


def test_captions_name_the_command_that_measured_each_chart() -> None:
    with charts._style():
        latency, memory = charts.latency_throughput(CORE), charts.memory_formula(CORE)

    assert "Data: `make bench-core`, 2026-01-02 03:04 UTC, 2 CPUs (Test CPU)" in figure_text(
        latency
    )
    # Memory was measured again on its own: its caption says so, with that date.
    assert (
        'Data: `make bench-core BENCH_ARGS="--only memory"`, 2026-01-05 06:07 UTC'
        in figure_text(memory)
    )
    assert "2026-01-02" not in figure_text(memory)


def test_latency_chart_plots_single_text_loads_in_throughput_order() -> None:
    with charts._style():
        fig = charts.latency_throughput(CORE)
    assert fig is not None
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}

    p50 = lines["Tandem, gRPC: p50"]
    # The 32-text row (a different request shape) is left out; the rest sorted by throughput.
    assert list(p50.get_xdata()) == [80.0, 100.0, 200.0]
    assert list(p50.get_ydata()) == [12.0, 15.0, 150.0]
    assert list(lines["Tandem, gRPC: p99"].get_ydata()) == [17.0, 23.0, 280.0]
    assert list(lines["naive async def, HTTP: p50"].get_ydata()) == [210.0]
    assert fig.axes[0].get_yscale() == "log"


def test_memory_chart_sets_measured_beside_formula() -> None:
    with charts._style():
        fig = charts.memory_formula(CORE)
    assert fig is not None
    bars = [p.get_height() for p in fig.axes[0].patches]

    assert bars == [250.0, 660.0, 280, 675]  # measured bars, then formula bars


def test_stage_bars_stack_in_stage_order_and_add_up() -> None:
    with charts._style():
        fig = charts.stage_split(GATEWAY)
    assert fig is not None
    ax = fig.axes[0]
    by_stage = {c.get_label(): c for c in ax.containers}

    assert list(by_stage) == list(charts.STAGE_COLOURS)
    light = [by_stage[s].patches[0] for s in charts.STAGE_COLOURS]
    assert [round(p.get_x(), 6) for p in light] == [0.0, 0.3, 0.9, 1.3, 1.5]
    assert light[-1].get_x() + light[-1].get_width() == pytest.approx(11.0)
    heavy = by_stage["inference"].patches[1]
    assert heavy.get_x() + heavy.get_width() == pytest.approx(20.4)


def test_a_negative_difference_draws_no_bar_backwards() -> None:
    data = copy.deepcopy(GATEWAY)
    data["stages"][0]["stages_ms"]["network"] = -0.05  # two means' noise
    with charts._style():
        fig = charts.stage_split(data)
    assert fig is not None
    network = next(c for c in fig.axes[0].containers if c.get_label() == "network")

    assert network.patches[0].get_width() == 0.0


def test_results_without_a_section_skip_its_chart(tmp_path: Path) -> None:
    core = {k: v for k, v in CORE.items() if k != "memory"}
    gateway = {k: v for k, v in GATEWAY.items() if k != "stages"}

    assert [p.name for p in charts.render_charts("core", core, tmp_path)] == ["core-latency.svg"]
    assert charts.render_charts("gateway", gateway, tmp_path) == []
    assert charts.render_charts("tracing", {"machine": MACHINE}, tmp_path) == []


def test_command_line_draws_from_the_results_directory(tmp_path: Path) -> None:
    (tmp_path / "core.json").write_text(json.dumps(CORE))
    (tmp_path / "gateway.json").write_text(json.dumps(GATEWAY))

    done = subprocess.run(
        [sys.executable, charts.__file__, "--results-dir", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip

    assert done.stdout.count("wrote ") == 3
    assert (tmp_path / "gateway-stages.svg").exists()


def test_log_axis_labels_only_the_2x_and_5x_minor_ticks() -> None:
    ticks = [charts._minor_tick(v, 0) for v in (3, 20, 50, 60, 200, 0.5, 0)]

    assert ticks == ["", "20", "50", "", "200", "0.5", ""]


def int8_variant(name: str, cosine: float, overlap: float, shipped: bool = False) -> dict[str, Any]:
    return {"name": name, "shipped": shipped, "cosine_reference_min": cosine,
            "top10_overlap_mean": overlap}  # fmt: skip


INT8: dict[str, Any] = {
    "command": "make bench-int8",
    "machine": MACHINE,
    "targets": {"min_cosine": 0.99, "top10_overlap": 0.97, "speedup": 1.8},
    "quality": {
        "variants": [
            int8_variant("all ops", 0.979, 0.90),
            int8_variant("3 fp32", 0.991, 0.94, shipped=True),
            int8_variant("not timed", 0.999, 0.99),
        ]
    },
    "speed": {"variants": {"all ops": {"speedup": 2.5}, "3 fp32": {"speedup": 2.1}}},
    "speed_measured": {
        "date": "2026-01-06 07:08 UTC",
        "command": 'make bench-int8 BENCH_ARGS="--only speed"',
    },
}


def test_int8_frontier_plots_each_timed_variant_against_both_targets(tmp_path: Path) -> None:
    with charts._style():
        fig = charts.int8_frontier(INT8)
    assert fig is not None
    cosine, overlap = fig.axes

    points = [line for line in cosine.get_lines() if line.get_marker() == "o"]
    # The variant without a speed figure is left out; the rest in the table's order.
    assert [(p.get_xdata()[0], p.get_ydata()[0]) for p in points] == [(2.5, 0.979), (2.1, 0.991)]
    assert [p.get_color() for p in points] == [charts.BLUE, charts.GREEN]  # green: shipped
    assert [t.get_text() for t in cosine.texts] == ["1", "2"]
    overlap_points = [line for line in overlap.get_lines() if line.get_marker() == "o"]
    assert [p.get_ydata()[0] for p in overlap_points] == [0.90, 0.94]
    dashed = [line for line in overlap.get_lines() if line.get_linestyle() == "--"]
    assert sorted(
        float(line.get_ydata()[0]) for line in dashed if line.get_ydata()[0] == line.get_ydata()[1]
    ) == [0.97]
    assert 'make bench-int8 BENCH_ARGS="--only speed"`, 2026-01-06 07:08 UTC' in figure_text(fig)


def test_int8_frontier_needs_both_sections(tmp_path: Path) -> None:
    without_speed = {k: v for k, v in INT8.items() if k != "speed"}

    assert charts.int8_frontier(without_speed) is None
    assert [p.name for p in charts.render_charts("int8", INT8, tmp_path)] == ["int8-frontier.svg"]


def peer(key: str, single: float, batch: float, p50: float, p99: float) -> dict[str, Any]:
    return {"key": key, "label": f"{key} server", "lone": {"p50_ms": p50},
            "single": {"texts_per_s": single, "p99_ms": p99},
            "batch": {"texts_per_s": batch}}  # fmt: skip


PEERS: dict[str, Any] = {
    "command": "make bench-peers",
    "machine": MACHINE,
    "servers": [
        peer("tandem", 160.0, 181.0, 17.1, 369.0),
        peer("infinity", 124.0, 133.0, 14.9, 304.0),
    ],
}


def test_peer_charts_draw_one_bar_per_server_and_shape(tmp_path: Path) -> None:
    with charts._style():
        throughput, latency = charts.peers_throughput(PEERS), charts.peers_latency(PEERS)
    assert throughput is not None
    assert latency is not None

    single, batch = throughput.axes[0].containers
    assert [b.get_width() for b in single] == [160.0, 124.0]  # servers in the run's order
    assert [b.get_width() for b in batch] == [181.0, 133.0]
    lone, saturated = latency.axes[0].containers
    assert [b.get_width() for b in lone] == [17.1, 14.9]
    assert [b.get_width() for b in saturated] == [369.0, 304.0]
    assert latency.axes[0].get_xscale() == "log"
    assert "Data: `make bench-peers`, 2026-01-02 03:04 UTC" in figure_text(throughput)
    written = charts.render_charts("peers", PEERS, tmp_path)
    assert [p.name for p in written] == ["peers-throughput.svg", "peers-latency.svg"]
    assert charts.peers_throughput({**PEERS, "servers": []}) is None
