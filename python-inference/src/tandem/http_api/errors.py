"""Every failure -> the documented error shape, in one place.

{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}, the same
shape the gateway uses (OpenAI's), whatever went wrong: our own errors, body
validation, unknown routes, wrong methods. The ``code`` is always the
contract's ErrorReason as text (tandem.errors.json_code).
"""

from __future__ import annotations

import logging
import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import (
    CoreError,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    Overloaded,
    Unavailable,
    json_code,
)

log = logging.getLogger(__name__)

_STATUS: dict[type[CoreError], int] = {
    InvalidInput: 400,
    ModelNotFound: 404,
    Overloaded: 429,
    DeadlineExceeded: 504,
    Unavailable: 503,
}

# Routing refusals (Starlette's HTTPException) by status.
_HTTP_REASONS: dict[int, pb.ErrorReason] = {
    404: pb.ERROR_REASON_NOT_FOUND,
    405: pb.ERROR_REASON_METHOD_NOT_ALLOWED,
}


def error_response(
    status: int,
    message: str,
    *,
    reason: pb.ErrorReason,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if status == 429:
        kind = "rate_limit_error"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": json_code(reason)}}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def core_error_response(exc: CoreError) -> Response:
    headers = None
    if isinstance(exc, Overloaded):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return error_response(
        _STATUS.get(type(exc), 500),
        exc.message,
        reason=exc.reason,
        param=exc.param,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoreError)
    async def _core_error(_: Request, exc: CoreError) -> Response:
        return core_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_body(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            reason = first.get("ctx", {}).get("error", "malformed JSON")
            return error_response(
                400, f"the body is not valid JSON: {reason}", reason=pb.ERROR_REASON_INVALID_JSON
            )
        param = _param_from_location(first.get("loc", ()))
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "extra_forbidden":
            message = f"unknown field {param!r}"
        elif param:
            message = f"{param}: {message}"
        return error_response(400, message, reason=pb.ERROR_REASON_INVALID_INPUT, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        reason = _HTTP_REASONS.get(exc.status_code, pb.ERROR_REASON_HTTP_ERROR)
        return error_response(
            exc.status_code, str(exc.detail), reason=reason, headers=dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        # Details go to the log (with the request id), never to the caller.
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal error", reason=pb.ERROR_REASON_INTERNAL_ERROR)


def _param_from_location(location: tuple[object, ...] | list[object]) -> str | None:
    """("body", "texts", 3) -> "texts[3]"."""
    parts = [p for p in location if p != "body"]
    if not parts:
        return None
    out = str(parts[0])
    for part in parts[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
