"""Liveness, readiness and metrics. Cheap, never touch the model."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tandem.http_api.deps import ContextDep
from tandem.http_api.schemas import HealthReply

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthReply)
async def healthz() -> HealthReply:
    """Liveness: the process and its event loop answer. Busy is still alive."""
    return HealthReply(status="ok")


@router.get("/readyz", response_model=HealthReply, responses={503: {"model": HealthReply}})
async def readyz(context: ContextDep) -> Response:
    """Readiness: model loaded and warmed, not draining. 503 otherwise."""
    lifecycle = context.lifecycle
    if lifecycle.ready:
        return Response(
            HealthReply(status="ready").model_dump_json(), media_type="application/json"
        )
    body = HealthReply(status="not_ready", reason=lifecycle.not_ready_reason)
    return Response(body.model_dump_json(), status_code=503, media_type="application/json")


@router.get("/metrics", include_in_schema=False)
async def metrics(context: ContextDep) -> Response:
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
