"""Pure ASGI middleware for transport concerns: request id, body size, content type.

Pure ASGI (not BaseHTTPMiddleware) so nothing buffers or copies bodies and the
limits apply before FastAPI reads a byte.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.http_api.errors import error_response
from tandem.ops.logs import accept_request_id, request_id_var

REQUEST_ID_HEADER = "x-request-id"


class RequestIdMiddleware:
    """Takes the caller's X-Request-Id (or makes one), logs with it, echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


class JsonBodyMiddleware:
    """For requests with a body: require application/json and at most ``max_bytes``.

    Oversized bodies get 413 before being read when Content-Length says so,
    and are cut off while streaming when it does not (chunked uploads).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            shown = media_type or "none"
            response = error_response(
                415,
                f"Content-Type must be application/json (got {shown})",
                reason=pb.ERROR_REASON_UNSUPPORTED_MEDIA_TYPE,
            )
            await response(scope, receive, send)
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return

        received = 0
        answered = False

        async def counting_receive() -> Message:
            # FastAPI turns any exception raised while it reads the body into a
            # 400, so answer 413 here and tell the app the client went away.
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not answered:
                    answered = True
                    await self._too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not answered:
                raise

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"the body exceeds {self.max_bytes} bytes", reason=pb.ERROR_REASON_BODY_TOO_LARGE
        )
        await response(scope, receive, send)
