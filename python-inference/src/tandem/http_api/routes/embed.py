"""POST /v1/embed and GET /v1/model."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from tandem.http_api.admission import MAX_TIMEOUT_MS, AdmittedRoute, request_deadline
from tandem.http_api.deps import ContextDep, ServiceDep
from tandem.http_api.schemas import EmbedBody, EmbedReply, ErrorReply, ModelReply
from tandem.ops.request_log import track_request
from tandem.service import EmbedCommand, EmbedResult, Truncation

# AdmittedRoute: POST /v1/embed is admitted by its body size before the body is read.
router = APIRouter(prefix="/v1", tags=["embeddings"], route_class=AdmittedRoute)

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorReply, "description": description}
    for status, description in {
        400: "Invalid input: empty, too many texts, too large, too long with truncate=false, "
        "or not valid UTF-8 (code invalid_utf8); `param` names the field.",
        404: "Unknown model.",
        408: "The body did not arrive within the request's deadline (code body_timeout).",
        413: "Body too large.",
        415: "Content-Type is not application/json.",
        429: "At capacity (requests or bytes in flight, queue, or the deadline cannot be "
        "met); retry after the Retry-After header's seconds.",
        503: "Not ready (loading the model) or shutting down.",
        504: "The deadline passed before the texts were computed.",
    }.items()
}


# X-Request-Id is read by RequestIdMiddleware (any route), so it is documented
# here rather than declared: an id outside this format is replaced, not refused.
_REQUEST_ID_PARAMETER = {
    "name": "X-Request-Id",
    "in": "header",
    "required": False,
    "description": "Your id for this request, echoed back and logged; any other value "
    "is replaced by a fresh id.",
    # The format accept_request_id (ops/logs.py) takes; tests/http_api/test_openapi.py
    # checks they agree.
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$", "maxLength": 128},
}


@router.post(
    "/embed",
    response_model=EmbedReply,
    responses=_ERRORS,
    openapi_extra={"parameters": [_REQUEST_ID_PARAMETER]},
)
async def embed(
    body: EmbedBody,
    request: Request,
    service: ServiceDep,
    context: ContextDep,
    x_timeout_ms: Annotated[
        int | None,
        Header(
            ge=1,
            le=MAX_TIMEOUT_MS,
            description="Deadline for this request, in milliseconds, counted from when its "
            "headers arrived: the body must arrive within it too (else 408).",
        ),
    ] = None,
) -> Response:
    """Embed texts with the served model (all-MiniLM-L6-v2: 384 floats per text)."""
    with track_request(context.metrics, "http", "embed", access_log=context.access_log) as record:
        timeout_s = x_timeout_ms / 1000 if x_timeout_ms else context.default_timeout_s
        # The deadline taken before the body was read (AdmittedRoute), so the
        # time the body took counts against it.
        deadline = request_deadline(request) or asyncio.get_running_loop().time() + timeout_s
        command = EmbedCommand(
            texts=body.texts,
            model=body.model,
            normalize=body.normalize,
            truncation=Truncation.TRUNCATE if body.truncate else Truncation.REJECT,
        )
        # AdmittedRoute already holds this request's place (sized by its body).
        result = await service.embed(command, deadline, reserved=True)
        record.result = result
        return Response(
            _encode(result),
            media_type="application/json",
            headers={"Server-Timing": result.timings.server_timing()},
        )


@router.get("/model", response_model=ModelReply)
async def model(service: ServiceDep) -> ModelReply:
    """The served model and the input limits this core enforces."""
    return ModelReply.model_validate(dataclasses.asdict(service.info))


def _encode(result: EmbedResult) -> bytes:
    # orjson writes numpy rows directly: no per-float Python objects, and
    # about 50x faster than FastAPI's jsonable_encoder for 256 x 384 floats.
    return orjson.dumps(
        {
            "model": result.model_id,
            "embeddings": [
                {"values": vector, "token_count": count, "truncated": truncated}
                for vector, count, truncated in zip(
                    result.vectors, result.token_counts, result.truncated, strict=True
                )
            ],
            "total_tokens": result.total_tokens,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
