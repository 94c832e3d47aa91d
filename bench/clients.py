"""Request callables for the load generator: gRPC to the core, HTTP to the core or gateway."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import httpx

from loadgen import Call
from tandem.inference.v1 import inference_pb2 as pb
from tandem.inference.v1 import inference_pb2_grpc as pb_grpc


def grpc_embed(
    channel: grpc.aio.Channel, corpus: Sequence[str], texts_per_request: int, timeout_s: float = 30
) -> Call:
    """Embed calls on one long-lived channel (one HTTP/2 connection), as the gateway does."""
    stub = pb_grpc.EmbeddingServiceStub(channel)  # type: ignore[no-untyped-call]

    async def call(index: int) -> int:
        start = (index * texts_per_request) % len(corpus)
        texts = [corpus[(start + k) % len(corpus)] for k in range(texts_per_request)]
        reply = await stub.Embed(pb.EmbedRequest(texts=texts), timeout=timeout_s)
        return len(reply.embeddings)

    return call


def http_embed(
    client: httpx.AsyncClient, path: str, corpus: Sequence[str], texts_per_request: int, *, openai: bool
) -> Call:
    """POST calls: the core's /v1/embed, the naive app's, or the gateway's /v1/embeddings."""

    async def call(index: int) -> int:
        start = (index * texts_per_request) % len(corpus)
        texts = [corpus[(start + k) % len(corpus)] for k in range(texts_per_request)]
        body = {"model": "all-MiniLM-L6-v2", "input": texts} if openai else {"texts": texts}
        reply = await client.post(path, json=body)
        reply.raise_for_status()
        return texts_per_request

    return call
