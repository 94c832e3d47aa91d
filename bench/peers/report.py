"""The peers page (docs/benchmarks/peers.md): the table, Tandem's ratio to the best
peer for each target of issue 15, and a paragraph for each target missed."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Server = Mapping[str, Any]


def health_p99(server: Server) -> float | None:
    """The slowest of a server's health probes' p99 (Tandem has three); None when
    every probe of one endpoint failed (timed out behind the model)."""
    values = []
    for summary in server["health"].values():
        if summary["p99_ms"] is None:
            return None
        values.append(summary["p99_ms"])
    return max(values) if values else None


@dataclass(frozen=True)
class Target:
    """One target of the issue: how to read the figure, and what meets it."""

    key: str
    name: str
    read: Callable[[Server], float | None]
    higher_is_better: bool
    ratio_bound: float | None = None  # Tandem / best peer must be >= (or <=) this
    absolute_bound: float | None = None  # Tandem's own figure must be <= this
    unit: str = ""

    def goal(self) -> str:
        if self.ratio_bound is not None:
            sign = ">=" if self.higher_is_better else "<="
            return f"{sign} {self.ratio_bound:g}x the best peer"
        if self.absolute_bound is not None:
            return f"<= {self.absolute_bound:g} {self.unit}"
        return "no target (for reference)"


TARGETS: tuple[Target, ...] = (
    Target("single_tps", "1 text, concurrency 32: texts/s",
           lambda s: s["single"]["texts_per_s"], True, ratio_bound=1.5),
    Target("batch_tps", "32 texts, concurrency 4: texts/s",
           lambda s: s["batch"]["texts_per_s"], True, ratio_bound=1.5),
    Target("single_p99", "1 text, concurrency 32: p99 ms",
           lambda s: s["single"]["p99_ms"], False, ratio_bound=1.0),
    Target("lone_p50", "1 text, concurrency 1: p50 ms",
           lambda s: s["lone"]["p50_ms"], False, ratio_bound=0.7),
    Target("health_p99", "health p99 while saturated, ms",
           health_p99, False, absolute_bound=10, unit="ms"),
    Target("rss", "RSS after load, MiB",
           lambda s: s["rss_after_load_mib"], False, absolute_bound=400, unit="MiB"),
    Target("first_embedding", "start to first embedding, s",
           lambda s: s["first_embedding_s"], False, absolute_bound=2, unit="s"),
    Target("single_cpu", "CPU-s per 1,000 texts (1 text, c=32)",
           lambda s: s["single"]["cpu_s_per_1000_texts"], False),
    Target("batch_cpu", "CPU-s per 1,000 texts (32 texts, c=4)",
           lambda s: s["batch"]["cpu_s_per_1000_texts"], False),
)  # fmt: skip

# Why a target is missed, as far as this benchmark can tell; printed under the
# figures of each missed target. The profiles behind these are on core.md and
# gateway.md.
WHY: dict[str, str] = {
    "single_tps": (
        "Tandem serves less than the model's raw loop on the same CPUs (core.md §2: served/raw "
        "about 0.8 for single texts): the event loop, gRPC framing, the tokenizer, the gateway "
        "and the load generator share the two CPUs with inference, and 32 callers give the "
        "batcher at most 32 short texts to choose from. core.md's CPU section and profiles show "
        "where that CPU goes."
    ),
    "batch_tps": (
        "With 32 texts per request the per-request work is amortised and every server spends "
        "nearly all of its CPU in the model's kernels (ONNX Runtime in Tandem and infinity's "
        "ONNX engine, PyTorch in the others), so the ratio is close to the ratio of CPU per "
        "text: compare the CPU-seconds per 1,000 texts column. 1.5x a server running the same "
        "kernels needs less work per text, not less overhead per request (fewer padded tokens "
        "per batch, or the int8 model)."
    ),
    "single_p99": (
        "At saturation p99 is set by the queue: a server that admits every caller at once "
        "(and serves fewer texts/s) and one that batches more (and serves more) trade tail "
        "latency against throughput; compare the p99 with the texts/s beside it."
    ),
    "lone_p50": (
        "A lone text through Tandem crosses two hops (HTTP to the gateway, gRPC to the core) "
        "and the core's batching window before the model runs it; the model alone answers one "
        "text in about 7 ms on 2 threads (core.md §1), so 0.7x infinity's ONNX engine leaves "
        "about 3 ms for everything around the model. gateway.md splits a request's time by "
        "stage."
    ),
    "health_p99": (
        "Each probe shares the two CPUs with inference and with the load generator: with both "
        "CPUs busy, a health answer waits for a time slice, and the core answers its probes on "
        "the same event loop as its gRPC and HTTP traffic. The figure is the slowest of "
        "Tandem's three probes; the table has each."
    ),
    "rss": "The figure is the whole tree, core and gateway (split above the charts).",
    "first_embedding": (
        "Start to first embedding includes the core's model load and warm-up, then the "
        "gateway's start and its first SERVING answer from the core, one after the other."
    ),
}

SHORT = {"tandem": "Tandem", "infinity-onnx": "infinity ONNX", "infinity-torch": "infinity torch",
         "naive": "naive"}  # fmt: skip


# Issue 15's table (one run on a 2-CPU Xeon with AVX-512/VNNI/AMX), which this
# benchmark must reproduce or explain: start s, c=1 p50 ms, c=32 texts/s and p99 ms,
# 32-text texts/s, health p99 ms (None: probes timed out), RSS MiB.
BASELINE: dict[str, tuple[float, float, float, float, float, float | None, float]] = {
    "tandem": (1.8, 17.1, 161, 369, 181, 23.6, 321),
    "infinity-onnx": (14.4, 14.9, 124, 304, 133, 14.8, 1932),
    "infinity-torch": (11.4, 27.6, 90, 393, 133, 11.1, 1107),
    "naive": (7.3, 14.9, 59, 693, 122, None, 860),
}


def baseline_table(servers: Sequence[Server]) -> list[str]:
    """Issue 15's figures beside this run's, server by server: "issue -> now"."""
    lines = [
        "| server | start s | c=1 p50 ms | c=32 texts/s | c=32 p99 ms | 32 texts texts/s "
        "| health p99 ms | RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in servers:
        base = BASELINE.get(s["key"])
        if base is None:
            continue
        now = (s["first_embedding_s"], s["lone"]["p50_ms"], s["single"]["texts_per_s"],
               s["single"]["p99_ms"], s["batch"]["texts_per_s"], health_p99(s),
               s["rss_after_load_mib"])  # fmt: skip
        cells = [
            f"{_fmt(b, 1 if i < 2 else 0) if b is not None else 'timed out'} -> "
            f"{_fmt(n, 1 if i < 2 else 0) if n is not None else 'timed out'}"
            for i, (b, n) in enumerate(zip(base, now, strict=True))
        ]
        lines.append(f"| {SHORT.get(s['key'], s['key'])} | " + " | ".join(cells) + " |")
    return lines


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def compare(servers: Sequence[Server]) -> list[dict[str, Any]]:
    """Tandem's figure, the best peer's and their ratio, for every target."""
    tandem = next(s for s in servers if s["key"] == "tandem")
    peers = [s for s in servers if s["key"] != "tandem"]
    rows = []
    for t in TARGETS:
        ours = t.read(tandem)
        measured = [(v, p) for p in peers if (v := t.read(p)) is not None and not math.isnan(v)]
        best_value, best = (max if t.higher_is_better else min)(
            measured, key=lambda x: x[0], default=(None, None)
        )
        ratio = ours / best_value if ours is not None and best_value else None
        if t.ratio_bound is not None:
            met = ratio is not None and (
                ratio >= t.ratio_bound if t.higher_is_better else ratio <= t.ratio_bound
            )
        elif t.absolute_bound is not None:
            met = ours is not None and ours <= t.absolute_bound
        else:
            met = None
        rows.append({
            "key": t.key, "name": t.name, "tandem": ours, "best_peer": best["key"] if best else None,
            "best_peer_value": best_value, "ratio": round(ratio, 3) if ratio is not None else None,
            "goal": t.goal(), "met": met,
        })  # fmt: skip
    return rows


def _health_cell(server: Server) -> str:
    parts = []
    for name, summary in server["health"].items():
        if summary["p99_ms"] is None:
            value = f"all {summary['probes']} probes timed out"
        else:
            value = f"{summary['p99_ms']:,.1f} ms"
            if summary["failed"]:
                value += f" ({summary['failed']} of {summary['probes']} timed out)"
        parts.append(f"{value} ({name})" if len(server["health"]) > 1 else value)
    return "<br>".join(parts)


# The benchmark alone keeps about every CPU busy (load average near the CPU count,
# and the previous server's load lingers in the 1-minute figure); well above that,
# something else was running.
BUSY = 1.5


def _busy_warning(servers: Sequence[Server], cpus: int) -> list[str]:
    """A warning when other work competed with the run (load average above the CPUs)."""
    busiest = max((max(s.get("load_average_before", 0), s.get("load_average_after", 0))
                   for s in servers), default=0)  # fmt: skip
    if busiest <= BUSY * cpus:
        return []
    return [
        f"**The machine was busy during this run** (load average up to {busiest:g} on {cpus} "
        "CPUs): other processes took CPU time from every server, unevenly, so these figures "
        "are not comparable with a run on a quiet machine, and the ratios below carry that "
        "noise. Run `make bench-peers` again on a quiet machine before quoting them.",
        "",
    ]


def table(servers: Sequence[Server]) -> list[str]:
    lines = [
        "| server | start to first embedding | 1 text, conc. 1: p50 (p99) | 1 text, conc. 32: "
        "texts/s (p99) | 32 texts, conc. 4: texts/s | health p99 while saturated | RSS after load "
        "| CPU-s per 1,000 texts (1 text c=32 / 32 texts c=4) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in servers:
        errors = sum(sum(s[k]["errors"].values()) for k in ("lone", "single", "batch"))
        label = s["label"] + (f" ({errors} failed requests)" if errors else "")
        lines.append(
            f"| {label} | {s['first_embedding_s']:.1f} s "
            f"| {s['lone']['p50_ms']:.1f} ms ({s['lone']['p99_ms']:.1f}) "
            f"| {s['single']['texts_per_s']:,.0f} ({s['single']['p99_ms']:,.0f} ms) "
            f"| {s['batch']['texts_per_s']:,.0f} | {_health_cell(s)} "
            f"| {s['rss_after_load_mib']:,.0f} MiB "
            f"| {_fmt(s['single']['cpu_s_per_1000_texts'], 2)} / "
            f"{_fmt(s['batch']['cpu_s_per_1000_texts'], 2)} |"
        )
    return lines


def render(data: Mapping[str, Any]) -> str:
    servers = data["servers"]
    m, corpus = data["machine"], data["corpus"]
    labels = {s["key"]: s["label"] for s in servers}
    rows = compare(servers)
    out = [
        "# Tandem and its peers, side by side",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, with",
        "",
        f"    {data['command']}",
        "",
        "One run, one machine, each server alone on 127.0.0.1, one after the other; the load "
        "generator (`tandem-load`, Go, HTTP) runs on the same CPUs as the server. "
        + (
            "**Quick run (`--quick`): short loads, for checking the script, not for quoting.** "
            if data.get("quick")
            else ""
        )
        + "Figures were taken on a shared 2-CPU machine (other work ran beside the benchmark), "
        "so differences of a few per cent are noise.",
        "",
        f"Corpus: {corpus['texts']:,} generated sentences of {corpus['min_tokens']} to "
        f"{corpus['max_tokens']} tokens (mean {corpus['mean_tokens']}), bench/corpus.py; "
        "requests take consecutive lines. Health is each server's own endpoint, probed every "
        "50 ms during the concurrency-32 run (a probe slower than 2 s counts as timed out). RSS "
        "and CPU are the whole process tree's (Tandem: core and gateway), read from /proc; CPU "
        "is read around each saturating run, so it does not include the load generator.",
        "",
        *table(servers),
        "",
        "Load average (1 min) of the machine as each server's measurement started and ended, "
        f"{m['cpus']} CPUs: "
        + "; ".join(
            f"{SHORT.get(s['key'], s['key'])} {s['load_average_before']:g} / "
            f"{s['load_average_after']:g}"
            for s in servers
            if "load_average_before" in s
        )
        + f". The benchmark alone keeps about {m['cpus']} busy; well above that (over "
        f"{BUSY:g}x), other work competed with it.",
        "",
        "RSS by process after load: "
        + "; ".join(
            f"{SHORT.get(s['key'], s['key'])}: "
            + ", ".join(f"{name} {mib:,.0f} MiB" for name, mib in s["rss_by_process_mib"].items())
            for s in servers
            if len(s.get("rss_by_process_mib", {})) > 1
        )
        + ".",
        "",
        "![Throughput of Tandem and each peer: single texts at concurrency 32 and 32-text "
        "requests at concurrency 4](peers-throughput.svg)",
        "",
        "![Latency of Tandem and each peer: a lone text's p50 and p99 at concurrency 32]"
        "(peers-latency.svg)",
        "",
        *_busy_warning(servers, m["cpus"]),
        "## Against the best peer (issue 15's targets)",
        "",
        "| target | Tandem | best peer | Tandem / best peer | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer = r["best_peer"]
        best = f"{_fmt(r['best_peer_value'], 2)} ({SHORT.get(peer, peer)})" if peer else "—"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        out.append(
            f"| {r['name']} | {_fmt(r['tandem'], 2)} | {best} | "
            f"{_fmt(r['ratio'], 2)}{'x' if r['ratio'] is not None else ''} | {r['goal']} | {met} |"
        )
    out += [
        "",
        "## Against the issue's baseline",
        "",
        "Issue 15's figures (one run on a 2-CPU Xeon with AVX-512, VNNI and AMX) -> this run's. "
        "The machine differs (this one's CPU model is named above), and Tandem's core has "
        "changed since (its RSS includes the extra full-width session for lone requests, "
        "see ../worker-math.md), so compare each server's change with the others'.",
        "",
        *baseline_table(servers),
        "",
        "## Vectors agree",
        "",
        f"Before any figure is reported every server embeds the same {data['sample_texts']} "
        "texts of the corpus, and each vector must have a cosine of at least 0.999 with Tandem's "
        "(the run stops otherwise, naming the server and the text).",
        "",
        "| server | texts | lowest cosine against Tandem |",
        "|---|---|---|",
        *(
            f"| {labels[a['server']]} | {a['texts']} | {a['min_cosine']:.6f} |"
            for a in data["agreement"]
        ),
        "",
        "## Targets missed",
        "",
    ]
    missed = [r for r in rows if r["met"] is False]
    if not missed:
        out.append("None in this run.")
    for r in missed:
        best = SHORT.get(r["best_peer"], r["best_peer"]) if r["best_peer"] else "no peer"
        out += [
            f"**{r['name']}** ({r['goal']}): Tandem {_fmt(r['tandem'], 2)}, best peer "
            f"{_fmt(r['best_peer_value'], 2)} ({best}), ratio {_fmt(r['ratio'], 2)}. "
            + WHY.get(r["key"], ""),
            "",
        ]
    out += [
        "## How the peers run",
        "",
        "`make bench-peers` installs the peers into their own virtualenv (.cache/peers-venv, "
        "pinned in bench/peers/requirements.txt; PyTorch from PyPI with its CUDA libraries: "
        "about 6 GB on disk, 1.5 to 3 minutes to install here) and builds their model "
        "directories from the same packaged weights the core is built from "
        "(bench/peers/prepare.py): a sentence-transformers copy for the torch engine and the "
        "naive server, and for infinity's ONNX engine an export plus the optimised graph "
        "infinity would build itself (its own optimisation step fails on current optimum and "
        "falls back to the plain graph). infinity runs with `--pooling-method mean`: its "
        "default, `auto`, pools with the [CLS] token on this model. Every peer keeps its own "
        "defaults otherwise (batch size 32, threads from the CPU count); Tandem runs as "
        "`make run MODELS=fp32` starts it, with the gateway's per-client rate limit off.",
        "",
    ]
    return "\n".join(out)
