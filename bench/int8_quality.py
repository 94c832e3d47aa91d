"""`make bench-int8`: int8 quality as search users feel it, beside its speed, per variant.

Quality (no timing, so it need not run on a quiet machine): a generated corpus
of 5,000 varied sentences and 300 queries (bench/int8/corpus.py) embedded with
fp32 and with each int8 variant; per variant the top-10 neighbour overlap of
every query's corpus neighbours with fp32's, the Spearman correlation of
200,000 fixed pairwise similarities, the cosine of each vector to its fp32
vector, and the cosine to the official pipeline's reference vectors. A per-node
sensitivity search (quantise one MatMul at a time) ranks the nodes that the
selective variants keep in fp32.

Speed: the raw loop of bench/core_bench.py (tokenizer + ONNX Runtime, sorted
batches of 32 of its 1,024-text corpus, one single-thread session per CPU, as
the core runs them), fp32 and every variant in turn, in alternating rounds;
each variant's ratio to the fp32 of its own round, median over rounds.

Results: docs/benchmarks/int8.md, int8.json and int8-frontier.svg. `--only
quality` or `--only speed` measures one section again and keeps the other, so
the timed part alone can run under a benchmark lock; `--only render` writes
the page again from int8.json (after the shipped recipe changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from core_bench import CORPUS_SIZE, raw_threads, sorted_batches
from corpus import make_corpus
from harness import bench_main, machine
from int8 import quality as q
from int8.corpus import make_queries, make_varied_corpus
from int8.variants import fixed_variants, selective_variants, sensitivity
from tandem.model.manifest import ModelManifest
from tandem.model.measure import initializer_bytes
from tandem.model.quantize import SHIPPED, Int8Recipe, quantize
from tandem.model.runtime import OnnxEncoder
from tandem.model.tokenizer import TextTokenizer
from tandem.ops.cpu_features import read_cpu_features

CORPUS_TEXTS = 5_000
QUERY_TEXTS = 300
SENSITIVITY_TEXTS = 1_000  # the first corpus sentences, plus every query
SELECTIVE_COUNTS = (1, 2, 3, 4, 6, 8)
ROUNDS = {"full": 3, "quick": 1}
TARGETS = {"min_cosine": 0.99, "top10_overlap": 0.97, "speedup": 1.8}
BATCH = 32


@dataclasses.dataclass
class Texts:
    """Token ids of the texts to embed, and the order that sorts them by length."""

    ids: list[np.ndarray]
    order: list[int]

    @classmethod
    def of(cls, tokenizer: TextTokenizer, texts: list[str]) -> Texts:
        ids = [t.ids for t in tokenizer.encode(texts)]
        return cls(ids, sorted(range(len(ids)), key=lambda i: len(ids[i])))

    def embed(self, graph: Path, threads: int) -> np.ndarray:
        """Normalised vectors, in the texts' order; length-sorted batches (as the core pads)."""
        encoder = OnnxEncoder(graph, threads)
        out = np.zeros((len(self.ids), 0))
        for start in range(0, len(self.order), BATCH):
            rows = self.order[start : start + BATCH]
            got = encoder.encode([self.ids[i] for i in rows])
            if out.shape[1] == 0:
                out = np.zeros((len(self.ids), got.shape[1]))
            out[rows] = got
        return q.normalise(out)


class Judge:
    """fp32's answers on the corpus, and each variant's distance from them."""

    def __init__(self, fp32: np.ndarray, corpus: int, queries: int, reference: np.ndarray) -> None:
        self.fp32, self.corpus, self.queries = fp32, corpus, queries
        self.reference = reference
        self.want = q.top_k(self._queries(fp32), fp32[:corpus])
        self.pairs = q.sample_pairs(corpus)
        self.similarities = q.pair_similarities(fp32[:corpus], self.pairs)

    def _queries(self, vectors: np.ndarray) -> np.ndarray:
        return vectors[self.corpus : self.corpus + self.queries]

    def score(self, vectors: np.ndarray) -> dict[str, float]:
        to_fp32 = q.rowwise_cosines(vectors, self.fp32)
        to_reference = q.rowwise_cosines(vectors[self.corpus + self.queries :], self.reference)
        overlap = q.neighbour_overlap(
            self.want, q.top_k(self._queries(vectors), vectors[: self.corpus])
        )
        spearman = q.spearman(
            self.similarities, q.pair_similarities(vectors[: self.corpus], self.pairs)
        )
        return {
            "cosine_fp32_min": round(float(to_fp32.min()), 4),
            "cosine_fp32_mean": round(float(to_fp32.mean()), 5),
            "cosine_reference_min": round(float(to_reference.min()), 4),
            "cosine_reference_mean": round(float(to_reference.mean()), 5),
            "top10_overlap_mean": round(float(overlap.mean()), 4),
            "top10_overlap_min": round(float(overlap.min()), 2),
            "spearman": round(spearman, 5),
        }  # fmt: skip

    def near_ties(self, margin: float = 0.005) -> float:
        """Share of queries whose 10th and 11th fp32 neighbours are within ``margin`` cosine."""
        scores = np.sort(self._queries(self.fp32) @ self.fp32[: self.corpus].T, axis=1)[:, ::-1]
        return round(float(np.mean(scores[:, q.TOP_K - 1] - scores[:, q.TOP_K] < margin)), 3)


def _recipe(data: dict[str, Any]) -> Int8Recipe:
    return Int8Recipe(
        **{**data, "op_types": tuple(data["op_types"]), "keep_fp32": tuple(data["keep_fp32"])}
    )


def _graph(work: Path, fp32: Path, recipe: Int8Recipe) -> Path:
    """The variant's graph, built once per run into the work directory."""
    slug = "".join(c if c.isalnum() else "-" for c in recipe.name.lower()).strip("-")
    path = work / f"{slug}.onnx"
    if not path.exists():
        quantize(fp32, path, recipe)
    return path


def _mark_shipped(data: dict[str, Any]) -> None:
    """Flag the variant the build writes now (model/quantize.py), whichever section ran."""
    for variant in data["quality"]["variants"]:
        variant["shipped"] = _same_settings(_recipe(variant["recipe"]), SHIPPED)


def _same_settings(a: Int8Recipe, b: Int8Recipe) -> bool:
    return dataclasses.replace(a, name="") == dataclasses.replace(b, name="")


def measure_quality(
    model_dir: Path, reference_file: Path, work: Path, threads: int
) -> dict[str, Any]:
    manifest = ModelManifest.read(model_dir)
    tokenizer = TextTokenizer(model_dir / manifest.tokenizer, manifest.max_tokens)
    fp32 = manifest.graph_path(model_dir, "fp32")
    count = lambda text: tokenizer.encode([text])[0].token_count  # noqa: E731
    corpus = make_varied_corpus(CORPUS_TEXTS, count)
    queries = make_queries(QUERY_TEXTS)
    reference = json.loads(reference_file.read_text())["items"]
    texts = Texts.of(tokenizer, corpus + queries + [item["text"] for item in reference])
    reference_vectors = q.normalise(np.array([item["embedding"] for item in reference]))

    print(f"fp32: {len(texts.ids)} texts ...", flush=True)
    fp32_vectors = texts.embed(fp32, threads)
    judge = Judge(fp32_vectors, len(corpus), len(queries), reference_vectors)
    fp32_reference = q.rowwise_cosines(
        fp32_vectors[len(corpus) + len(queries) :], reference_vectors
    )

    # Sensitivity on a sample: the first sentences and every query (and the
    # reference texts), 1 - mean cosine to fp32 with only that node quantised.
    sample = list(range(SENSITIVITY_TEXTS)) + list(range(len(corpus), len(texts.ids)))
    sample_texts = Texts(
        [texts.ids[i] for i in sample],
        sorted(range(len(sample)), key=lambda i: len(texts.ids[sample[i]])),
    )
    sample_fp32 = fp32_vectors[sample]

    def loss(graph: Path) -> float:
        return round(
            1.0 - float(q.rowwise_cosines(sample_texts.embed(graph, threads), sample_fp32).mean()),
            6,
        )

    print("sensitivity, one node at a time ...", flush=True)
    ranking = sensitivity(fp32, work, loss)

    recipes = fixed_variants(fp32) + selective_variants(ranking, SELECTIVE_COUNTS)
    if not any(_same_settings(r, SHIPPED) for r in recipes):
        recipes.append(SHIPPED)
    rows = []
    for recipe in recipes:
        print(f"{recipe.name} ...", flush=True)
        graph = _graph(work, fp32, recipe)
        rows.append({
            "name": recipe.name,
            "recipe": dataclasses.asdict(recipe),
            "weights_bytes": initializer_bytes(graph),
            **judge.score(texts.embed(graph, threads)),
        })  # fmt: skip
    return {
        "corpus": {
            "texts": len(corpus),
            "queries": len(queries),
            "reference_items": len(reference),
            "mean_tokens": round(statistics.mean(len(texts.ids[i]) for i in range(len(corpus))), 1),
            "fp32_near_ties": judge.near_ties(),
        },
        "fp32": {
            "weights_bytes": initializer_bytes(fp32),
            "cosine_reference_min": round(float(fp32_reference.min()), 6),
        },
        "sensitivity": [{"node": node, "loss": value} for node, value in ranking],
        "variants": rows,
    }


def measure_speed(
    model_dir: Path, variants: list[dict[str, Any]], work: Path, rounds: int
) -> dict[str, Any]:
    manifest = ModelManifest.read(model_dir)
    tokenizer = TextTokenizer(model_dir / manifest.tokenizer, manifest.max_tokens)
    fp32 = manifest.graph_path(model_dir, "fp32")
    corpus = make_corpus(CORPUS_SIZE, lambda text: tokenizer.encode([text])[0].token_count)
    batches = sorted_batches(corpus, tokenizer, BATCH)
    cpus = os.cpu_count() or 1
    graphs = {v["name"]: _graph(work, fp32, _recipe(v["recipe"])) for v in variants}
    consistency = {
        name: batch_consistency(tokenizer, graph, corpus)
        for name, graph in {"fp32": fp32, **graphs}.items()
    }
    per_round: list[dict[str, float]] = []
    for number in range(rounds):
        print(f"speed, round {number + 1} of {rounds} ...", flush=True)
        measured = {"fp32": raw_threads(tokenizer, fp32, cpus, batches, 1)}
        for name, graph in graphs.items():
            measured[name] = raw_threads(tokenizer, graph, cpus, batches, 1)
        per_round.append(measured)
    return {
        "method": f"{cpus} sessions x 1 thread, sorted batches of {BATCH}, {CORPUS_SIZE} texts (bench/corpus.py)",
        "rounds": rounds,
        "batch_consistency": consistency,
        "fp32_texts_per_s": round(statistics.median(r["fp32"] for r in per_round), 1),
        "variants": {
            name: {
                "texts_per_s": round(statistics.median(r[name] for r in per_round), 1),
                "speedup": round(statistics.median(r[name] / r["fp32"] for r in per_round), 2),
            }
            for name in graphs
        },
    }


def batch_consistency(
    tokenizer: TextTokenizer, graph: Path, corpus: list[str], texts: int = 64
) -> float:
    """Minimum cosine between a text embedded alone and the same text inside a batch of 32.

    Dynamic quantisation takes one activation scale per tensor, over the whole
    padded batch, so a text's int8 vector depends on its batch-mates; fp32's
    does not (1.0). Not timed.
    """
    encoder = OnnxEncoder(graph, 1)
    ids = [t.ids for t in tokenizer.encode(corpus[:texts])]
    alone = q.normalise(np.array([encoder.encode([row])[0] for row in ids]))
    batched = q.normalise(
        np.concatenate([encoder.encode(ids[i : i + BATCH]) for i in range(0, texts, BATCH)])
    )
    return round(float(q.rowwise_cosines(alone, batched).min()), 4)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = args.log_dir / "int8"
    work.mkdir(parents=True, exist_ok=True)
    previous_file = args.out.with_suffix(".json")
    data: dict[str, Any] = {}
    if args.only is not None:
        if args.only not in ("quality", "speed", "render"):
            raise SystemExit(
                f"--only {args.only}: quality, speed or render (the page, no measuring)"
            )
        if previous_file.exists():
            data = json.loads(previous_file.read_text())
        elif args.only != "quality":
            raise SystemExit(f"--only {args.only} needs a quality run's results in {previous_file}")
    if args.only == "render":
        _mark_shipped(data)
        return data
    cpus = os.cpu_count() or 1
    features = read_cpu_features()
    data.update({
        "command": args.command if args.only is None else f'{args.command} BENCH_ARGS="--only {args.only}"',
        "machine": machine(),
        "onnxruntime": ort.__version__,
        "cpu_features": {"present": sorted(features.present or ()), "int8_gemm": features.int8_gemm},
        "targets": TARGETS,
    })  # fmt: skip
    started = time.monotonic()
    if args.only in (None, "quality"):
        data["quality"] = measure_quality(args.model_dir, args.reference, work, cpus)
        data["quality_measured"] = {"date": data["machine"]["date"], "command": data["command"]}
    if args.only in (None, "speed"):
        rounds = ROUNDS["quick" if args.quick else "full"]
        data["speed"] = measure_speed(args.model_dir, data["quality"]["variants"], work, rounds)
        data["speed_measured"] = {"date": data["machine"]["date"], "command": data["command"]}
    _mark_shipped(data)
    print(f"measured in {time.monotonic() - started:.0f} s", flush=True)
    return data


# --- Report ---------------------------------------------------------------------------


def rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each variant's quality and speed in one row, with whether it meets every target."""
    speed = data.get("speed", {}).get("variants", {})
    out = []
    for v in data["quality"]["variants"]:
        s = speed.get(v["name"], {})
        merged = {**v, "texts_per_s": s.get("texts_per_s"), "speedup": s.get("speedup")}
        merged["meets_targets"] = meets_targets(merged, data["targets"])
        out.append(merged)
    return out


def meets_targets(row: dict[str, Any], targets: dict[str, float]) -> bool:
    return bool(
        min(row["cosine_reference_min"], row["cosine_fp32_min"]) >= targets["min_cosine"]
        and row["top10_overlap_mean"] >= targets["top10_overlap"]
        and (row["speedup"] or 0) >= targets["speedup"]
    )


def frontier_takeaway(table: list[dict[str, Any]], targets: dict[str, float]) -> str:
    """The table in one sentence: the best variant that meets every target, or what each misses."""
    timed = [r for r in table if r["speedup"] is not None]
    if not timed:
        return 'Speed not measured yet: `make bench-int8 BENCH_ARGS="--only speed"`.'
    passing = [r for r in timed if r["meets_targets"]]
    if passing:
        best = max(passing, key=lambda r: (r["top10_overlap_mean"], r["speedup"]))
        return (f"{len(passing)} of {len(timed)} variants meet every target; the best overlap among them: "
                f"{best['name']} ({best['top10_overlap_mean']:.3f} at {best['speedup']}x).")  # fmt: skip
    fast = [r for r in timed if r["speedup"] >= targets["speedup"]]
    best = max(fast or timed, key=lambda r: (r["top10_overlap_mean"], r["speedup"]))
    misses = []
    if min(best["cosine_reference_min"], best["cosine_fp32_min"]) < targets["min_cosine"]:
        misses.append(
            f"minimum cosine {min(best['cosine_reference_min'], best['cosine_fp32_min']):.4f}"
        )
    if best["top10_overlap_mean"] < targets["top10_overlap"]:
        misses.append(f"top-10 overlap {best['top10_overlap_mean']:.3f}")
    if best["speedup"] < targets["speedup"]:
        misses.append(f"speed {best['speedup']}x")
    return (f"No variant meets every target. The best top-10 overlap at >= {targets['speedup']}x fp32 is "
            f"{best['name']}'s; it misses on {', '.join(misses)}.")  # fmt: skip


def _mb(value: int) -> str:
    return f"{value / 1e6:.1f}"


def render(data: dict[str, Any]) -> str:
    m, quality, targets = data["machine"], data["quality"], data["targets"]
    corpus, speed = quality["corpus"], data.get("speed", {})
    consistency = speed.get("batch_consistency", {})
    table = rows(data)
    shipped = next((r for r in table if r["shipped"]), None)
    previous = table[0]
    lines = [
        "# int8: quality as users feel it, against speed",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu_model']}), ONNX Runtime {data['onnxruntime']},",
        "Python {python}, with".format(python=m["python"]),
        "",
        f"    {data['command']}",
        "",
        "The quality figures do not depend on the machine's load; the speed ratios are taken side",
        "by side (each variant against the fp32 of its own round, median of rounds) and are the",
        "figures to compare; absolute texts/s move with whatever else shares the CPUs.",
        *(
            [
                f"Quality measured {data['quality_measured']['date']} with `{data['quality_measured']['command']}`; "
                f"speed {data['speed_measured']['date']} with `{data['speed_measured']['command']}`."
            ]
            if "quality_measured" in data and "speed_measured" in data
            else []
        ),
        "",
        "## What is measured",
        "",
        f"- Corpus: {corpus['texts']:,} generated sentences (mean {corpus['mean_tokens']} tokens) over a dozen",
        f"  unrelated topics and {corpus['queries']} short queries (bench/int8/corpus.py; seeded, no download).",
        "- **top-10 overlap**: for each query, the share of fp32's 10 nearest corpus sentences that the",
        "  variant's 10 nearest also hold (mean over queries, and the worst query).",
        "- **Spearman**: rank correlation of 200,000 fixed pairwise corpus similarities, variant against fp32.",
        "- **cosine to fp32**: each of the corpus, query and reference texts against its fp32 vector.",
        f"- **cosine to reference**: the {corpus['reference_items']} vectors of the official",
        "  sentence-transformers pipeline (the same check as the core's tests; fp32 reaches "
        f"{quality['fp32']['cosine_reference_min']}).",
        f"- **speed**: the raw loop, {speed.get('method', 'not measured')}; ratio to fp32 "
        f"({speed.get('fp32_texts_per_s', '—')} texts/s).",
        "- **alone vs batched**: the minimum cosine between a text embedded alone and the same text",
        "  inside a batch of 32 (64 texts, corpus order, padded to the longest): dynamic quantisation",
        "  takes one activation scale over the whole padded batch, so an int8 vector depends on its",
        "  batch-mates.",
        f"- Targets: minimum cosine >= {targets['min_cosine']} (to the reference and to fp32), top-10 overlap",
        f"  >= {targets['top10_overlap']}, speed >= {targets['speedup']}x fp32.",
        "",
        "## Variants",
        "",
        "| # | variant | weights MB | cos to ref, min | cos to fp32, min / mean | top-10 overlap, mean / worst | Spearman | alone vs batched, min cos | texts/s | x fp32 | all targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| | fp32 | {_mb(quality['fp32']['weights_bytes'])} | {quality['fp32']['cosine_reference_min']:.4f} | 1 / 1 | 1 / 1 | 1 | "
        f"{consistency.get('fp32', '—')} | {speed.get('fp32_texts_per_s', '—')} | 1.00 | — |",
    ]
    for number, r in enumerate(table, start=1):
        name = f"**{r['name']} (shipped)**" if r["shipped"] else r["name"]
        lines.append(
            f"| {number} | {name} | {_mb(r['weights_bytes'])} | {r['cosine_reference_min']:.4f} | "
            f"{r['cosine_fp32_min']:.4f} / {r['cosine_fp32_mean']:.4f} | "
            f"{r['top10_overlap_mean']:.3f} / {r['top10_overlap_min']:.1f} | {r['spearman']:.4f} | "
            f"{consistency.get(r['name'], '—')} | "
            f"{r['texts_per_s'] if r['texts_per_s'] is not None else '—'} | "
            f"{r['speedup'] if r['speedup'] is not None else '—'} | {'yes' if r['meets_targets'] else 'no'} |"
        )
    lines += [
        "",
        "![int8 variants: quality against speed, each relative to fp32](int8-frontier.svg)",
        "",
        frontier_takeaway(table, targets),
        "",
        f"{corpus['fp32_near_ties'] * 100:.0f} % of the queries have their 10th and 11th fp32 neighbours within",
        "0.005 cosine of each other: there any rounding can swap which one is in the top 10, so top-10",
        "overlap is the strictest of these measures.",
        "",
        "## What stands in the way",
        "",
        "- **Activation scales per tensor.** ONNX Runtime's dynamic quantisation",
        "  (DynamicQuantizeLinear before MatMulInteger / QAttention) takes one uint8 scale for a whole",
        "  activation tensor: every token of every text in the padded batch. A few large channels (the",
        "  GELU output before the FFN down projections above all, the top of the sensitivity list) set",
        "  that scale and leave the other channels a handful of levels, and a text's vector depends on",
        "  its batch-mates (the alone-vs-batched column). Per-channel weights (row 1 against row 2)",
        "  already fixed the weight side; the activation side is what is left.",
        "- **What each fp32 node costs.** Keeping the most sensitive nodes in fp32 buys quality at",
        "  speed (rows 10-15): the cosine target needs about 6 nodes back in fp32, which is below",
        "  1.8x. The speed target allows 3, which is what ships.",
        "- **Top-10 overlap is mostly ties.** Even quantising only the embedding table (row 6, no",
        "  MatMul in int8, cosine 0.999) keeps 0.97 of fp32's top 10, because most queries' 10th and",
        "  11th neighbours are near-ties on this corpus. Every int8 MatMul adds to that.",
        "- **Blockwise activation scales, tried outside this table.** Weights in 8-bit blocks of 32",
        "  with the `MatMulNBits` contrib operator at `accuracy_level=4` (activations quantised per",
        "  block of each row) reached minimum cosine 0.9994 and top-10 overlap 0.988 on 1,500 of these",
        "  sentences, but ONNX Runtime 1.31's CPU kernels ran it at 0.97x fp32 (one run, under the",
        "  bench lock): no int8 speed-up for 8-bit blockwise weights on this CPU. With a kernel that",
        "  has one, it would meet every target; it is not a recipe here until then.",
        "",
        "## Which MatMuls are sensitive",
        "",
        f"Each of the {len(quality['sensitivity'])} quantisable nodes quantised alone (every other one fp32), on the",
        f"first {SENSITIVITY_TEXTS:,} corpus sentences, the queries and the reference texts; loss = 1 - mean cosine to fp32.",
        "The selective variants above keep the first k of this list in fp32.",
        "",
        "| rank | node | loss |",
        "|---|---|---|",
        *[
            f"| {i + 1} | `{s['node']}` | {s['loss']:.6f} |"
            for i, s in enumerate(quality["sensitivity"])
        ],
        "",
        "## CPU features and the int8 kernels",
        "",
        f"This CPU offers: {', '.join(data['cpu_features']['present']) or 'unknown'}. ONNX Runtime's MLAS",
        f"picks its u8 x s8 GEMM at load time from CPUID; here that is **{data['cpu_features']['int8_gemm']}**",
        "(the core logs the same at start-up, `cpu features`, and exports `tandem_core_cpu_features_info`).",
        "",
        "From onnxruntime/core/mlas/lib/platform.cpp: the u8 x s8 GEMM (uint8 activations, int8 weights:",
        "MatMulInteger and QAttention in these graphs) runs AVX2, then AVX-VNNI, AVX-512 core or AVX-512",
        "VNNI (`vpdpbusd`) kernels as the CPU allows, and AMX tiles when the CPU has AMX-TILE and AMX-INT8",
        "and the kernel grants tile state. The u8 x u8 GEMM (QUInt8 weights) has no AVX-512 VNNI kernel",
        "(AVX-512 core at best, or AVX-VNNI-INT8), which is why QUInt8 weights are slower here. fp32",
        "MatMuls use the AVX-512F SGEMM.",
        "",
    ]
    if shipped is not None:
        lines += [
            "## Shipped",
            "",
            f"`tandem build-model` writes **{shipped['name']}** "
            "(python-inference/src/tandem/model/quantize.py, `SHIPPED`). Before issue 15 it wrote "
            f"*{previous['name']}*: minimum cosine to the reference {previous['cosine_reference_min']:.4f} -> "
            f"{shipped['cosine_reference_min']:.4f}, to fp32 {previous['cosine_fp32_min']:.4f} -> "
            f"{shipped['cosine_fp32_min']:.4f}, top-10 overlap {previous['top10_overlap_mean']:.3f} -> "
            f"{shipped['top10_overlap_mean']:.3f}, Spearman {previous['spearman']:.4f} -> {shipped['spearman']:.4f}, "
            f"speed {previous['speedup']}x -> {shipped['speedup']}x fp32.",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    return bench_main("int8", __doc__.splitlines()[0], main_async, render)


if __name__ == "__main__":
    raise SystemExit(main())
