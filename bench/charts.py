"""SVG charts of the benchmark results, drawn from the JSON the benchmarks write.

Each benchmark draws its charts when it writes its results; `make bench-charts`
draws them again from docs/benchmarks/*.json alone, without measuring:

    python bench/charts.py [--results-dir docs/benchmarks]

The output is deterministic (fixed SVG id salt, no date in the metadata, text
drawn as paths with the font matplotlib ships), so a chart changes in git only
when its numbers do. Each caption names the command that produced the data.
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

REPO = Path(__file__).resolve().parent.parent

# Okabe-Ito: distinguishable with every common colour-vision deficiency.
BLUE, ORANGE, GREEN, VERMILION, PURPLE, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#7F7F7F",
)  # fmt: skip
STAGE_COLOURS = {
    "gateway": BLUE,
    "network": GREY,
    "queue": ORANGE,
    "tokenization": PURPLE,
    "inference": GREEN,
}

STYLE: dict[str, Any] = {
    "svg.hashsalt": "tandem-bench",  # clip-path and glyph ids stable across runs
    "svg.fonttype": "path",  # the same glyphs in every viewer
    "font.family": "DejaVu Sans",  # shipped with matplotlib: no system font lookup
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "legend.frameon": False,
}


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def caption(data: Mapping[str, Any], section: str | None = None) -> str:
    """Where the numbers come from: the command, when and on what.

    ``section`` names a part measured again on its own (``<section>_measured``
    holds its command and date), which the caption then quotes instead.
    """
    m = data["machine"]
    again = data.get(f"{section}_measured", {}) if section else {}
    return (
        f"Data: `{again.get('command', data['command'])}`, {again.get('date', m['date'])}, "
        f"{m['cpus']} CPUs ({m['cpu_model']}); load generator, services and model share those CPUs."
    )


def _figure(title: str, note: str, width: float = 8.0, height: float = 4.8) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, loc="left")
    # A figure-level label, so the layout makes room for it below the axes.
    fig.supxlabel(textwrap.fill(note, 140), x=0.01, ha="left", fontsize=7.5, color="#444444")
    return fig, ax


# --- core.json: latency against throughput -----------------------------------------


def _short_load(label: str) -> str:
    """'gRPC, 1 text, open loop at 50% (103 req/s)' -> 'open loop at 50%'."""
    load = label.split(", ", 2)[-1]
    return load.split(" (", maxsplit=1)[0].replace("concurrency ", "c=")


def _minor_tick(y: float, _: int) -> str:
    """Label the 2x and 5x minor ticks of a log axis, so short ranges still read."""
    if y <= 0:
        return ""
    mantissa = y / 10 ** math.floor(math.log10(y))
    return f"{y:g}" if round(mantissa) in (2, 5) else ""


def latency_throughput(data: Mapping[str, Any]) -> Figure | None:
    """Tandem over gRPC at four loads, and Tandem and the naive pattern over HTTP at saturation."""
    served, side = data.get("served"), data.get("http")
    if not served or not side:
        return None
    # Single-text requests only: the 32-text row is a different request shape.
    rows = sorted(
        (r for r in served["rows"] if r["requests_per_s"] == r["texts_per_s"]),
        key=lambda r: r["texts_per_s"],
    )
    fig, ax = _figure(
        "Latency against throughput, 1 text per request",
        caption(data) + " Closed loops at concurrency 1 and 32, open loops at 50 % and 80 % "
        "of the saturated rate; HTTP rows at concurrency 32.",
    )
    x = [r["texts_per_s"] for r in rows]
    ax.plot(x, [r["p50_ms"] for r in rows], "-o", color=BLUE, label="Tandem, gRPC: p50")
    ax.plot(
        x, [r["p99_ms"] for r in rows], "--o", color=BLUE, mfc="white", label="Tandem, gRPC: p99"
    )
    for r in rows:
        ax.annotate(_short_load(r["label"]), (r["texts_per_s"], r["p50_ms"]),
                    textcoords="offset points", xytext=(6, -4), va="top", fontsize=8, color=BLUE)  # fmt: skip
    for key, colour, name in (
        ("ours", GREEN, "Tandem, HTTP"),
        ("naive", VERMILION, "naive async def, HTTP"),
    ):
        if key not in side:
            continue
        load = side[key]["load"]
        ax.plot(
            [load["texts_per_s"]] * 2, [load["p50_ms"], load["p99_ms"]], "-", color=colour, lw=1
        )
        ax.plot(load["texts_per_s"], load["p50_ms"], "s", color=colour, label=f"{name}: p50")
        ax.plot(
            load["texts_per_s"],
            load["p99_ms"],
            "s",
            color=colour,
            mfc="white",
            label=f"{name}: p99",
        )
    ceiling = data.get("raw", {}).get("ceiling_texts_per_s")
    if ceiling:
        ax.axvline(ceiling, color=GREY, ls=":", lw=1.2)
        ax.annotate(f"model alone, no server:\n{ceiling:g} texts/s", (ceiling, 0.02),
                    xycoords=("data", "axes fraction"), xytext=(-4, 0), textcoords="offset points",
                    ha="right", fontsize=8, color=GREY)  # fmt: skip
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_minor_tick))
    ax.set_xlabel("throughput (texts/s)")
    ax.set_ylabel("latency at the client (ms, log scale)")
    ax.set_xlim(left=0)
    ax.legend(loc="upper left", fontsize=8)
    return fig


# --- core.json: memory against the formula -----------------------------------------


def _memory_label(row: Mapping[str, Any]) -> str:
    """'2 x 1' -> '2 workers x 1 thread'; longer labels describe a special load and stay."""
    if "," in row["label"]:
        return str(row["label"])
    workers = row["workers"]
    return f"{workers} worker{'s' if workers != 1 else ''} x 1 thread"


def memory_formula(data: Mapping[str, Any]) -> Figure | None:
    """Peak RSS per configuration beside the worker-math request and limit."""
    rows = data.get("memory")
    if not rows:
        return None
    fig, ax = _figure(
        "Peak memory against the worker-math formula",
        caption(data, "memory") + " Peak RSS is the kernel's high-water mark (VmHWM); formula: "
        "`tandem worker-math` (python-inference/src/tandem/capacity.py).",
    )
    positions = range(len(rows))
    width = 0.38
    measured = ax.bar([p - width / 2 for p in positions], [r["peak_rss_mib"] for r in rows], width,
                      color=BLUE, label="measured peak RSS")  # fmt: skip
    ax.bar([p + width / 2 for p in positions], [r["formula_mib"] for r in rows], width,
           color="white", edgecolor=BLUE, hatch="//", label="formula: the pod's memory request (error against measured)")  # fmt: skip
    ax.hlines([r["limit_mib"] for r in rows], [p - width for p in positions], [p + width for p in positions],
              color=VERMILION, lw=2, label="formula's memory limit")  # fmt: skip
    for p, bar, r in zip(positions, measured, rows, strict=True):
        ax.annotate(f"{r['peak_rss_mib']:g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)  # fmt: skip
        ax.annotate(f"{r['formula_mib']:g}\n{r['error_pct']:+g} %", (p + width / 2, r["formula_mib"]),
                    textcoords="offset points", xytext=(0, -4), ha="center", va="top", fontsize=8,
                    bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none"})  # fmt: skip
        ax.annotate(f"limit {r['limit_mib']:g}", (p, r["limit_mib"]), textcoords="offset points",
                    xytext=(0, 3), ha="center", fontsize=7.5, color=VERMILION)  # fmt: skip
    ax.set_xticks(list(positions), [textwrap.fill(_memory_label(r), 26) for r in rows], fontsize=8)
    ax.set_ylabel("MiB")
    ax.set_ylim(0, max(r["limit_mib"] for r in rows) * 1.12)
    ax.legend(loc="upper left", fontsize=8)
    return fig


# --- gateway.json: the time split per stage ----------------------------------------


def stage_split(data: Mapping[str, Any]) -> Figure | None:
    """Stacked bars: mean time per request in each stage, at each load."""
    rows = data.get("stages")
    if not rows:
        return None
    fig, ax = _figure(
        "Where a request's time goes, through the gateway",
        caption(data, "stages") + " Means per request from the services' own histograms "
        "(_sum / _count before and after each load step, bench/stages.py); "
        "1 text per request; light = one request at a time, 70% = an open loop at 70 % of "
        "the core's measured capacity.",
        height=3.8,
    )
    labels = [f"{r['level']}\n({r['requests_per_s']:g} req/s)" for r in rows]
    left = [0.0] * len(rows)
    for stage, colour in STAGE_COLOURS.items():
        widths = [max(r["stages_ms"][stage], 0.0) for r in rows]
        ax.barh(labels, widths, left=left, color=colour, label=stage, height=0.55)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, total in enumerate(left):
        ax.annotate(f"{total:.1f} ms", (total, y), textcoords="offset points", xytext=(4, 0),
                    va="center", fontsize=8)  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel("mean time per request (ms)")
    ax.set_xlim(0, max(left) * 1.15)
    ax.grid(axis="y", visible=False)
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=len(STAGE_COLOURS), fontsize=8)
    return fig


# --- peers.json: Tandem and its peers -------------------------------------------------


def _peer_bars(
    data: Mapping[str, Any],
    title: str,
    note: str,
    bars: tuple[tuple[str, str, str], ...],
    *,
    xlabel: str,
    log: bool = False,
) -> Figure | None:
    """Grouped horizontal bars, one group per server; bars: (section, field, legend)."""
    servers = data.get("servers")
    if not servers:
        return None
    fig, ax = _figure(title, caption(data) + " " + note, height=1.2 + 0.75 * len(servers))
    height = 0.8 / len(bars)
    for i, (section, name, legend) in enumerate(bars):
        ys = [y + (i - (len(bars) - 1) / 2) * height for y in range(len(servers))]
        values = [s[section][name] for s in servers]
        drawn = ax.barh(ys, values, height, color=(BLUE, ORANGE, GREEN)[i], label=legend)
        for bar, value in zip(drawn, values, strict=True):
            ax.annotate(f"{value:,.0f}" if value >= 100 else f"{value:.1f}",
                        (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        textcoords="offset points", xytext=(3, 0), va="center", fontsize=8)  # fmt: skip
    labels = [textwrap.fill(s["label"].replace("`", ""), 34) for s in servers]
    ax.set_yticks(range(len(servers)), labels, fontsize=8)
    ax.invert_yaxis()
    largest = max(s[section][name] for s in servers for section, name, _ in bars)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_xlim(right=largest * 3)  # room for the value labels on a log axis
    else:
        ax.set_xlim(0, largest * 1.15)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=len(bars), fontsize=8)
    return fig


def peers_throughput(data: Mapping[str, Any]) -> Figure | None:
    """Texts/s of every server, single texts at concurrency 32 and 32-text requests."""
    return _peer_bars(
        data, "Throughput at saturation, Tandem and its peers",
        "Each server alone, one after the other, same corpus and load generator (bench/peers/).",
        (("single", "texts_per_s", "1 text per request, concurrency 32"),
         ("batch", "texts_per_s", "32 texts per request, concurrency 4")),
        xlabel="texts/s (higher is better)",
    )  # fmt: skip


def peers_latency(data: Mapping[str, Any]) -> Figure | None:
    """A lone text's p50 and the p99 at concurrency 32, every server."""
    return _peer_bars(
        data, "Latency of one text, Tandem and its peers",
        "1 text per request; p50 at concurrency 1 (one request at a time), p99 at concurrency 32.",
        (("lone", "p50_ms", "p50, concurrency 1"), ("single", "p99_ms", "p99, concurrency 32")),
        xlabel="ms at the client (log scale, lower is better)", log=True,
    )  # fmt: skip


# --- int8.json: quality against speed per variant ----------------------------------


def int8_frontier(data: Mapping[str, Any]) -> Figure | None:
    """Each int8 variant's speed (x fp32) against two quality measures, with the targets."""
    quality, speed = data.get("quality"), data.get("speed")
    if not quality or not speed:
        return None
    points = [
        (number, variant, speed["variants"][variant["name"]]["speedup"])
        for number, variant in enumerate(quality["variants"], start=1)
        if variant["name"] in speed["variants"]
    ]
    targets = data["targets"]
    fig = Figure(figsize=(9.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    fig.suptitle("int8 variants: quality against speed, both relative to fp32", x=0.01,
                 ha="left", fontsize=12, fontweight="bold")  # fmt: skip
    fig.supxlabel(textwrap.fill(caption(data, "speed") + " Numbers are the rows of int8.md's table; "
                                "green: the variant `tandem build-model` ships; dashed: the targets.", 150),
                  x=0.01, ha="left", fontsize=7.5, color="#444444")  # fmt: skip
    panels = (
        ("cosine_reference_min", "minimum cosine to the reference vectors", targets["min_cosine"]),
        (
            "top10_overlap_mean",
            "top-10 neighbour overlap with fp32 (mean)",
            targets["top10_overlap"],
        ),
    )
    for ax, (field, label, target) in zip(axes, panels, strict=True):
        for number, variant, speedup in points:
            colour = GREEN if variant.get("shipped") else BLUE
            ax.plot(speedup, variant[field], "o", color=colour, ms=6)
            ax.annotate(str(number), (speedup, variant[field]), textcoords="offset points",
                        xytext=(4, 3), fontsize=7.5, color=colour)  # fmt: skip
        ax.axhline(target, color=VERMILION, ls="--", lw=1)
        ax.axvline(targets["speedup"], color=VERMILION, ls="--", lw=1)
        ax.set_xlabel("raw-loop throughput (x fp32)")
        ax.set_ylabel(label)
        ax.margins(x=0.12, y=0.1)
    return fig


# --- Writing --------------------------------------------------------------------------

# Per benchmark (the name of its JSON file): each chart's file name and its drawing.
CHARTS: dict[str, tuple[tuple[str, Callable[[Mapping[str, Any]], Figure | None]], ...]] = {
    "core": (("core-latency.svg", latency_throughput), ("core-memory.svg", memory_formula)),
    "gateway": (("gateway-stages.svg", stage_split),),
    "int8": (("int8-frontier.svg", int8_frontier),),
    "peers": (("peers-throughput.svg", peers_throughput), ("peers-latency.svg", peers_latency)),
}


def render_charts(name: str, data: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write every chart of benchmark ``name`` that ``data`` has numbers for."""
    written = []
    with _style():
        for file_name, draw in CHARTS.get(name, ()):
            fig = draw(data)
            if fig is None:
                continue
            path = out_dir / file_name
            fig.savefig(path, format="svg", metadata={"Date": None})
            written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=REPO / "docs" / "benchmarks")
    args = parser.parse_args()
    for name in CHARTS:
        results = args.results_dir / f"{name}.json"
        if not results.exists():
            print(f"{results}: missing, no charts")
            continue
        for path in render_charts(name, json.loads(results.read_text()), args.results_dir):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
