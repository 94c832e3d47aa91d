"""The servers of the peers benchmark and how each is started, one at a time.

Tandem runs as `make run` starts it (one fp32 core, then the Go gateway in
front of it; requests go through the gateway). The peers run from their own
virtualenv (.cache/peers-venv) on the model directories prepare.py built:
infinity-emb's ONNX engine on the optimised graph, its torch engine, and the
naive `async def` server (bench/naive_app.py) calling sentence-transformers.
Everything listens on 127.0.0.1 only, on a free port.

"Start to first embedding" is measured the same way for all of them: from
just before the first process is spawned until an embedding request first
answers 200.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import start_core, start_gateway
from tandem_devkit.stack import ManagedProcess, free_port

MODEL_NAME = "all-MiniLM-L6-v2"  # what tandem-load sends; the peers serve it under this name
PROBE_TIMEOUT_S = 2.0  # a health answer slower than this counts as failed
PEER_ENV = {
    # No model hub is reachable, and nothing should phone home during a benchmark.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "INFINITY_ANONYMOUS_USAGE_STATS": "0",
}

Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """Where a server takes embedding requests, and in which body shape."""

    base_url: str
    path: str
    # OpenAI's shape, {"model", "input"} -> {"data": [{"embedding"}]}; else the
    # core's, {"texts"} -> {"embeddings"}.
    openai: bool

    def body(self, texts: Sequence[str]) -> dict[str, Any]:
        return (
            {"model": MODEL_NAME, "input": list(texts)} if self.openai else {"texts": list(texts)}
        )

    def vectors(self, reply: dict[str, Any]) -> list[list[float]]:
        if self.openai:
            return [d["embedding"] for d in sorted(reply["data"], key=lambda d: d["index"])]
        return list(reply["embeddings"])


@dataclass
class Running:
    """A started server: its processes, endpoint and health probes."""

    key: str
    label: str
    endpoint: Endpoint
    processes: list[ManagedProcess]
    probes: dict[str, Probe]
    first_embedding_s: float = float("nan")
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.process.pid for p in self.processes if p.process is not None]

    async def stop(self) -> None:
        for close in self.closers:
            await close()
        for process in reversed(self.processes):  # the edge first, as make run stops
            process.stop()


@dataclass(frozen=True)
class PeersSetup:
    """The peers' virtualenv and the model directories prepare.py wrote."""

    venv: Path
    models: Path  # holds st/ and onnx/

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


@dataclass(frozen=True)
class Peer:
    """A peer server: its command line (given a port), endpoint path and health path."""

    key: str
    label: str
    argv: Callable[[PeersSetup, int], list[str]]
    env: Callable[[PeersSetup], dict[str, str]]
    path: str
    openai: bool
    health: str


def _infinity(engine: str, model: str, *extra: str) -> Callable[[PeersSetup, int], list[str]]:
    def argv(setup: PeersSetup, port: int) -> list[str]:
        return [str(setup.venv / "bin" / "infinity_emb"), "v2", "--model-id", str(setup.models / model),
                "--engine", engine, "--device", "cpu", "--served-model-name", MODEL_NAME,
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra]  # fmt: skip

    return argv


# bench/ goes at the END of the naive server's import path: uvicorn's --app-dir
# would put it first, where any benchmark module named like a standard one
# (a bench/profile.py once shadowed the stdlib's, which torch imports) would
# break the server.
_NAIVE_LAUNCH = "import sys, uvicorn; sys.path.append(sys.argv.pop(1)); uvicorn.main()"


def _naive(setup: PeersSetup, port: int) -> list[str]:
    bench = Path(__file__).resolve().parent.parent
    return [str(setup.python), "-P", "-c", _NAIVE_LAUNCH, str(bench), "naive_app:app",
            "--app-dir", str(setup.models), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--log-level", "warning"]  # fmt: skip


PEERS: tuple[Peer, ...] = (
    Peer(
        key="infinity-onnx",
        label="infinity-emb 0.0.78, ONNX engine, optimised graph",
        # Mean pooling, as the model was trained: infinity's "auto" pools with [CLS] here.
        argv=_infinity("optimum", "onnx", "--pooling-method", "mean"),
        env=lambda setup: {},
        path="/embeddings",
        openai=True,
        health="/health",
    ),
    Peer(
        key="infinity-torch",
        label="infinity-emb 0.0.78, torch engine",
        argv=_infinity("torch", "st"),  # pooling from the model's own modules.json
        env=lambda setup: {},
        path="/embeddings",
        openai=True,
        health="/health",
    ),
    Peer(
        key="naive",
        label="naive FastAPI (`async def` calls sentence-transformers)",
        argv=_naive,
        env=lambda setup: {
            "TANDEM_NAIVE_BACKEND": "sentence-transformers",
            "TANDEM_NAIVE_MODEL_DIR": str(setup.models / "st"),
        },
        path="/v1/embed",
        openai=False,
        health="/healthz",
    ),
)


def http_probe(client: httpx.AsyncClient, url: str) -> Probe:
    async def get() -> None:
        (await client.get(url, timeout=PROBE_TIMEOUT_S)).raise_for_status()

    return get


async def wait_first_embedding(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    processes: Sequence[ManagedProcess],
    started: float,
    timeout_s: float = 300.0,
) -> float:
    """Seconds from ``started`` until one embedding request answers 200."""
    url = endpoint.base_url + endpoint.path
    while time.monotonic() - started < timeout_s:
        for p in processes:
            if p.process is not None and p.process.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.process.returncode}:\n{p.tail()}")
        try:
            reply = await client.post(url, json=endpoint.body(["first"]), timeout=10)
            if reply.status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass  # not listening yet
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no embedding from {url} within {timeout_s:.0f} s")


async def start_tandem(
    client: httpx.AsyncClient, model_dir: Path, gateway_bin: Path, log_dir: Path
) -> Running:
    """The core, then the gateway once the core is ready, as `make run MODELS=fp32` does."""
    started = time.monotonic()
    core, ports = start_core(model_dir, log_dir, "peers-tandem-core")
    processes = [core]
    try:
        processes.append(start_gateway(gateway_bin, ports, log_dir, "peers-tandem-gateway"))
        endpoint = Endpoint(f"http://127.0.0.1:{ports.gateway_http}", "/v1/embeddings", True)
        first = await wait_first_embedding(client, endpoint, processes, started)
    except BaseException:
        for p in reversed(processes):
            p.stop()
        raise
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports.core_grpc}")
    health = health_pb2_grpc.HealthStub(channel)

    async def grpc_health() -> None:
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_S)
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"gRPC health: {reply.status}")

    async def close() -> None:
        await channel.close()

    return Running(
        key="tandem",
        label="Tandem (`make run`, through the gateway)",
        endpoint=endpoint,
        processes=processes,
        probes={
            "core /healthz": http_probe(client, f"http://127.0.0.1:{ports.core_http}/healthz"),
            "core gRPC health": grpc_health,
            "gateway /readyz": http_probe(client, f"http://127.0.0.1:{ports.gateway_http}/readyz"),
        },
        first_embedding_s=first,
        closers=[close],
    )


async def start_peer(
    client: httpx.AsyncClient, peer: Peer, setup: PeersSetup, log_dir: Path
) -> Running:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        name=peer.key,
        argv=peer.argv(setup, port),
        env={**PEER_ENV, **peer.env(setup)},
        ready_url=base + peer.health,
        log_path=log_dir / "peers" / f"{peer.key}.log",
    )
    endpoint = Endpoint(base, peer.path, peer.openai)
    started = time.monotonic()
    process.start()
    try:
        first = await wait_first_embedding(client, endpoint, [process], started)
    except BaseException:
        process.stop()
        raise
    return Running(
        key=peer.key,
        label=peer.label,
        endpoint=endpoint,
        processes=[process],
        probes={peer.health: http_probe(client, base + peer.health)},
        first_embedding_s=first,
    )
