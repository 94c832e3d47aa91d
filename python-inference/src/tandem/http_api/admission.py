"""Admission before the body is read: a refused request costs no body, no JSON, no strings.

FastAPI reads and parses a route's body before the route (or any of its
dependencies) runs, so admission inside the route would come after the
memory is spent. ``AdmittedRoute`` enters the service's admission gate
(service.reserve) with the body's declared size before the handler reads a
byte, and holds the place until the response is built. A body without
Content-Length (chunked) reserves the largest body allowed, which
JsonBodyMiddleware enforces while it streams. Meanwhile uvicorn buffers at
most its flow-control high-water mark (64 KiB) of a body nobody reads.

Only POST routes are admitted (the ones with a body); GET /v1/model and the
health routes (another router) are never refused for capacity.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response

from tandem.http_api.decoding import Utf8CheckedRoute
from tandem.http_api.deps import get_context


class AdmittedRoute(Utf8CheckedRoute):
    """POST requests hold an admission place, sized by the body, from before it is read.

    The endpoint must then call ``service.embed(..., reserved=True)``.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_admitted(request: Request) -> Response:
            if request.method != "POST":
                return await handle(request)
            context = get_context(request)
            service = context.lifecycle.service()
            with service.reserve(body_reservation(request, context.max_body_bytes)):
                return await handle(request)

        return handle_admitted


def body_reservation(request: Request, max_body_bytes: int) -> int:
    """Bytes to reserve: the declared Content-Length, or the largest body when none is declared."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        return min(int(declared), max_body_bytes)
    return max_body_bytes
