"""grpc_api/server.py: the server's channel policy and the health it publishes, without a model.

The lifecycle is driven as process.py and the watchdog drive it; a real
grpc.aio server on a free loopback port answers health checks and Embed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import core_settings

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc
from tandem.grpc_api.server import EMBEDDING_SERVICE, LIVENESS_SERVICE, GrpcEdge, channel_options
from tandem.lifecycle import Lifecycle
from tandem.ops.metrics import CoreMetrics
from tandem.worker_health import Verdict

pytestmark = pytest.mark.anyio
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_channel_policy(tmp_path: object) -> None:
    settings = core_settings(tmp_path, max_request_bytes=5 << 20, grpc_max_connection_age_s=12.5)  # type: ignore[arg-type]
    options = dict(channel_options(settings))
    assert options["grpc.max_receive_message_length"] == 5 << 20
    assert options["grpc.max_connection_age_ms"] == 12_500
    # The gateway pings every 20 s: the server must allow it (the default is 5 minutes).
    assert options["grpc.http2.min_recv_ping_interval_without_data_ms"] <= 20_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.so_reuseport"] == 0


@pytest.fixture
async def edge(tmp_path: object) -> AsyncIterator[tuple[GrpcEdge, Lifecycle, grpc.aio.Channel]]:
    metrics = CoreMetrics()
    lifecycle = Lifecycle(metrics)
    grpc_edge = GrpcEdge(core_settings(tmp_path), lifecycle, metrics)  # type: ignore[arg-type]
    await grpc_edge.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_edge.port}") as channel:
        yield grpc_edge, lifecycle, channel
    await grpc_edge.stop(0)


Edge = tuple[GrpcEdge, Lifecycle, grpc.aio.Channel]


async def _statuses(channel: grpc.aio.Channel) -> dict[str, int]:
    stub = health_pb2_grpc.HealthStub(channel)
    out = {}
    for service in ("", EMBEDDING_SERVICE, LIVENESS_SERVICE):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        out[service] = reply.status
    return out


def _expect(ready: bool, live: bool = True) -> dict[str, int]:
    state = SERVING if ready else NOT_SERVING
    return {"": state, EMBEDDING_SERVICE: state, LIVENESS_SERVICE: SERVING if live else NOT_SERVING}


async def test_health_follows_the_lifecycle(edge: Edge) -> None:
    _, lifecycle, channel = edge
    assert await _statuses(channel) == _expect(ready=False)  # bound, model not loaded
    lifecycle.attach(object())  # type: ignore[arg-type]
    await lifecycle.set_ready()
    assert await _statuses(channel) == _expect(ready=True)
    await lifecycle.set_worker_health(Verdict(ready=False, live=False, reason="worker died"))
    assert await _statuses(channel) == _expect(ready=False, live=False)
    await lifecycle.set_worker_health(Verdict.healthy())
    assert await _statuses(channel) == _expect(ready=True)
    await lifecycle.begin_drain()
    assert await _statuses(channel) == _expect(ready=False)


async def test_embed_before_the_model_is_loaded_is_unavailable(edge: Edge) -> None:
    _, _, channel = edge
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pb_grpc.EmbeddingServiceStub(channel).Embed(pb.EmbedRequest(texts=["x"]), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "loading" in (refused.value.details() or "")


async def test_quiesce_waits_until_calls_stop_arriving(edge: Edge) -> None:
    grpc_edge, _, channel = edge
    loop = asyncio.get_running_loop()
    stub = pb_grpc.EmbeddingServiceStub(channel)

    async def refused_calls(until: float) -> None:
        while loop.time() < until:
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Embed(pb.EmbedRequest(texts=["x"]), timeout=5)
            await asyncio.sleep(0.05)

    started = loop.time()
    calls = asyncio.create_task(refused_calls(started + 0.5))
    await asyncio.sleep(0.1)
    await grpc_edge.quiesce(quiet_s=0.25, until=started + 10)
    waited = loop.time() - started
    await calls
    assert 0.5 + 0.2 <= waited < 2.0, waited  # the last call, then a quiet 0.25 s
    # ... but never past ``until``, however busy.
    busy = asyncio.create_task(refused_calls(loop.time() + 1.5))
    await asyncio.sleep(0.1)
    before = loop.time()
    await grpc_edge.quiesce(quiet_s=5.0, until=before + 0.3)
    assert loop.time() - before < 0.6
    await busy


async def test_a_taken_port_is_refused(edge: Edge, tmp_path: object) -> None:
    grpc_edge, _, _ = edge
    metrics = CoreMetrics()
    with pytest.raises((OSError, RuntimeError)):
        GrpcEdge(core_settings(tmp_path, grpc_port=grpc_edge.port), Lifecycle(metrics), metrics)  # type: ignore[arg-type]
