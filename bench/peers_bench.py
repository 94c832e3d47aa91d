"""`make bench-peers`: Tandem against infinity-emb (ONNX and torch engines) and the
naive `async def` + sentence-transformers server, one at a time, on one corpus,
through one load generator.

The peers run from their own virtualenv (.cache/peers-venv) on model
directories built ahead of time (bench/peers/prepare.py); the Makefile target
prepares both. For each server: start to first embedding, the vectors of a
sample of the corpus (which must agree with Tandem's, cosine >= 0.999, or the
run stops before it reports), one text at concurrency 1, one text at
concurrency 32 with the server's health endpoints probed, 32 texts at
concurrency 4, RSS after load and CPU per 1,000 texts of the process tree.

Results: docs/benchmarks/peers.md (raw: peers.json, charts peers-*.svg).
Loopback only; every load run is bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import httpx
from charts import render_charts
from harness import REPO, machine, write_corpus
from loadgen import LoadGenerator
from peers.agreement import check_agreement
from peers.measure import Plan, embed_all, measure_server
from peers.report import render
from peers.servers import PEERS, PeersSetup, Running, start_peer, start_tandem
from tandem.model.manifest import ModelManifest
from tandem.model.tokenizer import TextTokenizer

CORPUS_SIZE = 2000
SAMPLE_SIZE = 64  # texts whose vectors every server must agree on


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="Tandem's built model")
    parser.add_argument(
        "--gateway-bin", type=Path, default=REPO / "go-gateway" / "bin" / "tandem-gateway"
    )
    parser.add_argument(
        "--load-bin", type=Path, default=REPO / "go-gateway" / "bin" / "tandem-load"
    )
    parser.add_argument("--peers-venv", type=Path, default=REPO / ".cache" / "peers-venv")
    parser.add_argument(
        "--peers-models", type=Path, default=REPO / ".cache" / "peers", help="prepare.py's output"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "peers.md")
    parser.add_argument("--log-dir", type=Path, default=REPO / ".cache" / "bench")
    parser.add_argument("--quick", action="store_true", help="short loads, to check the script")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated servers to run (tandem is always run: it is the reference)",
    )
    parser.add_argument("--command", default="make bench-peers")
    return parser.parse_args()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    manifest = ModelManifest.read(args.model_dir)
    tokenizer = TextTokenizer(args.model_dir / manifest.tokenizer, manifest.max_tokens)
    corpus_file = args.log_dir / "peers-corpus.txt"
    corpus = write_corpus(tokenizer, corpus_file, CORPUS_SIZE)
    tokens = [e.token_count for e in tokenizer.encode(corpus)]
    load = LoadGenerator(args.load_bin, corpus_file)
    sample = corpus[:: len(corpus) // SAMPLE_SIZE][:SAMPLE_SIZE]
    plan = Plan.quick() if args.quick else Plan.full()
    setup = PeersSetup(args.peers_venv, args.peers_models)
    wanted = set(args.only.split(",")) if args.only else {p.key for p in PEERS}
    unknown = wanted - {p.key for p in PEERS} - {"tandem"}
    if unknown:
        raise SystemExit(f"--only: unknown servers {sorted(unknown)}")

    servers, agreement = [], []
    reference: list[list[float]] = []
    async with httpx.AsyncClient() as client:
        starters = [
            ("tandem", lambda: start_tandem(client, args.model_dir, args.gateway_bin, args.log_dir))
        ]
        starters += [(p.key, lambda p=p: start_peer(client, p, setup, args.log_dir))
                     for p in PEERS if p.key in wanted]  # fmt: skip
        for key, start in starters:
            print(f"{key}: starting ...", flush=True)
            running: Running = await start()
            try:
                vectors = await embed_all(client, running.endpoint, sample)
                if key == "tandem":
                    reference = vectors
                else:
                    agreed = check_agreement(key, sample, reference, vectors)
                    agreement.append(agreed.__dict__)
                    print(f"{key}: vectors agree, lowest cosine {agreed.min_cosine}", flush=True)
                servers.append(await measure_server(running, load, plan))
            finally:
                await running.stop()
            print(f"{key}: {json.dumps(servers[-1])}", flush=True)
    return {
        "command": args.command,
        "machine": machine(),
        "quick": args.quick,
        "corpus": {
            "texts": len(corpus),
            "min_tokens": min(tokens),
            "max_tokens": max(tokens),
            "mean_tokens": round(statistics.mean(tokens), 1),
        },
        "sample_texts": len(sample),
        "agreement": agreement,
        "servers": servers,
    }


def main() -> int:
    args = parse_args()
    data = asyncio.run(measure(args))
    report = render(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    args.out.write_text(report)
    for chart in render_charts("peers", data, args.out.parent):
        print(f"wrote {chart}")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
