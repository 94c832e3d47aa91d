"""Admission before the body is read: a refused request costs no body, no JSON, no strings.

FastAPI reads and parses a route's body before the route (or any of its
dependencies) runs, so admission inside the route would come after the
memory is spent. ``AdmittedRoute`` enters the service's admission gate
(service.reserve) with the body's declared size before the handler reads a
byte, and holds the place until the response is built. A body without
Content-Length (chunked) reserves the largest body allowed, which
JsonBodyMiddleware enforces while it streams. Meanwhile uvicorn buffers at
most its flow-control high-water mark (64 KiB) of a body nobody reads.

The body must then arrive within the request's deadline (X-Timeout-Ms, or
the default timeout), counted from when the place was taken: a body that
trickles in, or never comes after its headers, would otherwise hold its
place (and the bytes reserved for it) for as long as the client likes. When
the deadline passes first, the answer is 408 body_timeout and the place is
released. The route takes the same deadline (``request_deadline``), so the
time spent reading the body counts against the request's budget.

Only POST routes are admitted (the ones with a body); GET /v1/model and the
health routes (another router) are never refused for capacity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.http_api.decoding import Utf8CheckedRoute
from tandem.http_api.deps import get_context
from tandem.http_api.errors import error_response

# X-Timeout-Ms bounds, as the route declares them (a value outside is refused
# there with 400; until then the body read uses the default timeout).
MAX_TIMEOUT_MS = 3_600_000


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
            loop = asyncio.get_running_loop()
            timeout_s = request_timeout_s(request, context.default_timeout_s)
            request.state.deadline = loop.time() + timeout_s
            with service.reserve(body_reservation(request, context.max_body_bytes)):
                try:
                    # Cached on the request: the handler's own read returns it at once.
                    await asyncio.wait_for(request.body(), timeout_s)
                except TimeoutError:
                    return error_response(
                        408,
                        f"the request body did not arrive within the request's deadline "
                        f"({timeout_s:g} s, X-Timeout-Ms or the default timeout)",
                        reason=pb.ERROR_REASON_BODY_TIMEOUT,
                        headers={"Connection": "close"},
                    )
                return await handle(request)

        return handle_admitted


def request_timeout_s(request: Request, default_s: float) -> float:
    """The request's X-Timeout-Ms in seconds when it is valid, else ``default_s``."""
    declared = request.headers.get("x-timeout-ms", "")
    if declared.isdigit() and 1 <= int(declared) <= MAX_TIMEOUT_MS:
        return int(declared) / 1000
    return default_s


def request_deadline(request: Request) -> float | None:
    """The deadline (loop time) AdmittedRoute set before reading the body, if it ran."""
    deadline: float | None = getattr(request.state, "deadline", None)
    return deadline


def body_reservation(request: Request, max_body_bytes: int) -> int:
    """Bytes to reserve: the declared Content-Length, or the largest body when none is declared."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        return min(int(declared), max_body_bytes)
    return max_body_bytes
