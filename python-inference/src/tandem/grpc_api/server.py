"""Build the grpc.aio server: EmbeddingService, health, reflection, channel policy."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.grpc_api.decoding import read_embed_request
from tandem.grpc_api.servicer import EmbeddingServicer
from tandem.grpc_api.tracing import RpcSpans
from tandem.lifecycle import Lifecycle
from tandem.ops.metrics import CoreMetrics
from tandem.settings import Settings

EMBEDDING_SERVICE = pb.DESCRIPTOR.services_by_name["EmbeddingService"].full_name
# Health service names: "" and EMBEDDING_SERVICE mean ready (readiness);
# LIVENESS means the process answers (liveness probes must not kill a busy pod).
LIVENESS_SERVICE = "liveness"
READINESS_SERVICES = ("", EMBEDDING_SERVICE)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def channel_options(settings: Settings) -> list[tuple[str, int]]:
    """Server channel arguments.

    Keepalive: clients (the gateway) ping every 20 s to detect dead
    connections; the C-core's default policy rejects pings more often than
    every 5 minutes with GOAWAY "too_many_pings", so allow one every 10 s.
    Max connection age: gRPC clients re-resolve DNS only when a connection
    ends, so long-lived HTTP/2 connections pin a client to the pods it once
    resolved. tests/k8s found a gateway that re-resolved in the second
    between a deleted core leaving DNS and its replacement arriving, and then
    called one core for minutes. Closing connections gracefully every 30 s
    (GOAWAY; in-flight calls get the grace period) bounds that. The grace
    covers the gateway's longest request (30 s).
    """
    return [
        ("grpc.max_receive_message_length", settings.max_request_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_connection_age_ms", round(settings.grpc_max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", 30_000),
        # Never share the port silently with a second process.
        ("grpc.so_reuseport", 0),
    ]


class GrpcEdge:
    """The gRPC server and the health statuses it publishes."""

    def __init__(
        self,
        settings: Settings,
        lifecycle: Lifecycle,
        metrics: CoreMetrics,
        tracer: trace.Tracer | None = None,
    ) -> None:
        # No server interceptors: any grpc.aio interceptor costs every call
        # (tracing.py says how much); the servicer starts its own spans.
        self.server = grpc.aio.server(options=channel_options(settings))
        self.health = health.aio.HealthServicer()
        self.servicer = EmbeddingServicer(
            lifecycle,
            metrics,
            default_timeout_s=settings.default_timeout_s,
            access_log=settings.access_log,
            spans=RpcSpans(tracer or trace.NoOpTracer(), EMBEDDING_SERVICE),
        )
        _add_embedding_service(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (EMBEDDING_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            # grpcio raises RuntimeError("Failed to bind ...") for a taken port.
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for gRPC on {address}: {exc}") from exc
        if self.port == 0:
            raise OSError(f"cannot listen for gRPC on {address}")
        lifecycle.on_readiness_change(self.publish_readiness)
        lifecycle.on_liveness_change(self.publish_liveness)

    async def start(self) -> None:
        await self.health.set(LIVENESS_SERVICE, _SERVING)
        await self.publish_readiness(False)
        await self.server.start()

    async def publish_liveness(self, live: bool) -> None:
        await self.health.set(LIVENESS_SERVICE, _SERVING if live else _NOT_SERVING)

    async def publish_readiness(self, ready: bool) -> None:
        for service in READINESS_SERVICES:
            await self.health.set(service, _SERVING if ready else _NOT_SERVING)

    async def quiesce(self, *, quiet_s: float, until: float) -> None:
        """Wait until no Embed call has arrived for ``quiet_s`` (or loop time ``until``)."""
        loop = asyncio.get_running_loop()
        while True:
            wake = min(self.servicer.last_call_at + quiet_s, until)
            if wake <= loop.time():
                return
            await asyncio.sleep(wake - loop.time())

    async def stop(self, grace_s: float) -> None:
        await self.server.stop(grace_s)


def _add_embedding_service(servicer: EmbeddingServicer, server: grpc.aio.Server) -> None:
    """What pb_grpc.add_EmbeddingServiceServicer_to_server does, with Embed's own decoder.

    read_embed_request parses nothing: the servicer parses after admission,
    so a refused call costs no parsed message (decoding.py), and answers a
    message with invalid UTF-8 in a string field with INVALID_ARGUMENT naming
    the field, where the generated deserializer would make grpcio answer
    INTERNAL.
    """
    handlers = {
        "Embed": grpc.unary_unary_rpc_method_handler(
            servicer.Embed,
            request_deserializer=read_embed_request,
            response_serializer=pb.EmbedResponse.SerializeToString,
        ),
        "GetModelInfo": grpc.unary_unary_rpc_method_handler(
            servicer.GetModelInfo,
            request_deserializer=pb.GetModelInfoRequest.FromString,
            response_serializer=pb.GetModelInfoResponse.SerializeToString,
        ),
    }
    generic = grpc.method_handlers_generic_handler(EMBEDDING_SERVICE, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(EMBEDDING_SERVICE, handlers)
