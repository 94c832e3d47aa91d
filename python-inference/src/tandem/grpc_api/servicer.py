"""EmbeddingService over gRPC: translate protobuf <-> service calls, nothing more."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc
from tandem.errors import CoreError, InvalidInput
from tandem.grpc_api.decoding import RawEmbedRequest, UndecodableRequest
from tandem.grpc_api.errors import to_grpc_status
from tandem.grpc_api.tracing import RpcSpans, record_failure
from tandem.lifecycle import Lifecycle
from tandem.ops.logs import accept_request_id, request_id_var
from tandem.ops.metrics import CoreMetrics
from tandem.ops.request_log import track_request
from tandem.service import EmbedCommand, EmbedResult, Truncation

REQUEST_ID_KEY = "x-request-id"
SERVER_TIMING_KEY = "server-timing"


class EmbeddingServicer(pb_grpc.EmbeddingServiceServicer):
    def __init__(
        self,
        lifecycle: Lifecycle,
        metrics: CoreMetrics,
        *,
        default_timeout_s: float,
        access_log: bool,
        spans: RpcSpans,
    ) -> None:
        self._lifecycle = lifecycle
        self._spans = spans
        self._metrics = metrics
        self._default_timeout_s = default_timeout_s
        self._access_log = access_log
        self.last_call_at = 0.0  # loop time of the latest Embed call (for shutdown)

    async def Embed(
        self, raw: RawEmbedRequest, context: grpc.aio.ServicerContext
    ) -> pb.EmbedResponse:
        self.last_call_at = asyncio.get_running_loop().time()
        request_id_var.set(accept_request_id(_metadata(context, REQUEST_ID_KEY)))
        with (
            self._spans.server_span("Embed", context) as span,
            track_request(self._metrics, "grpc", "Embed", access_log=self._access_log) as record,
        ):
            try:
                service = self._lifecycle.service()
                # Admit by the raw size before parsing (decoding.py): a refused
                # call never becomes a parsed message or Python strings.
                with service.reserve(len(raw.data)):
                    command = _command(raw.parse())
                    record.result = await service.embed(
                        command, self._deadline(context), reserved=True
                    )
            except CoreError as exc:
                record.failed(exc.code)
                status = to_grpc_status(exc)
                record_failure(span, status.code, status.details)
                await context.abort(status.code, status.details, status.trailing_metadata)
                raise AssertionError("unreachable: abort raises") from exc
            context.set_trailing_metadata(
                ((SERVER_TIMING_KEY, record.result.timings.server_timing()),)
            )
            return _response(record.result)

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
        with self._spans.server_span("GetModelInfo", context) as span:
            try:
                info = self._lifecycle.service().info
            except CoreError as exc:
                status = to_grpc_status(exc)
                record_failure(span, status.code, status.details)
                await context.abort(status.code, status.details, status.trailing_metadata)
                raise AssertionError("unreachable: abort raises") from exc
            return pb.GetModelInfoResponse(**dataclasses.asdict(info))

    def _deadline(self, context: grpc.aio.ServicerContext) -> float:
        """The caller's deadline in loop time, or the default when it sent none."""
        remaining = context.time_remaining()
        budget = self._default_timeout_s if remaining is None else float(remaining)
        return asyncio.get_running_loop().time() + budget


def _command(request: pb.EmbedRequest | UndecodableRequest) -> EmbedCommand:
    if isinstance(request, UndecodableRequest):
        raise InvalidInput(request.description, param=request.param, reason=request.reason)
    return EmbedCommand(
        texts=list(request.texts),
        model=request.model or None,
        normalize=request.normalize if request.HasField("normalize") else True,
        truncation=(
            Truncation.REJECT
            if request.truncation == pb.TRUNCATION_POLICY_REJECT
            else Truncation.TRUNCATE
        ),
    )


def _response(result: EmbedResult) -> pb.EmbedResponse:
    return pb.EmbedResponse(
        model=result.model_id,
        total_tokens=result.total_tokens,
        embeddings=[
            pb.Embedding(values=vector.tolist(), token_count=count, truncated=truncated)
            for vector, count, truncated in zip(
                result.vectors, result.token_counts, result.truncated, strict=True
            )
        ],
    )


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return str(item.value)
    return None
