"""Liveness and readiness. Cheap, never touch the model (metrics: metrics_app.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from tandem.http_api.deps import ContextDep
from tandem.http_api.schemas import HealthReply

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthReply, responses={503: {"model": HealthReply}})
async def healthz(context: ContextDep) -> Response:
    """Liveness: the event loop answers and no inference worker died or stalled.

    Busy is still alive: only a dead worker thread or a batch running past
    the stall bound (TANDEM_CORE_WORKER_STALL_S) fails it, so the kubelet
    restarts a core that can no longer serve, never one that is merely full.
    """
    lifecycle = context.lifecycle
    if lifecycle.live:
        return Response(HealthReply(status="ok").model_dump_json(), media_type="application/json")
    body = HealthReply(status="not_live", reason=lifecycle.not_live_reason)
    return Response(body.model_dump_json(), status_code=503, media_type="application/json")


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
