"""The pure ASGI middleware, driven message by message: request id, content type, body size.

http_api/test_routes.py sends a few refused bodies to the real core; these
drive the middleware with exact ASGI messages to check what reaches the app
(nothing, the whole body, or a disconnect), what reaches the client (one
answer, in the error shape), and the limits' edges.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.http_api.middleware import REQUEST_ID_HEADER, JsonBodyMiddleware, RequestIdMiddleware
from tandem.ops.logs import request_id_var

pytestmark = pytest.mark.anyio

LIMIT = 100
JSON = [(b"content-type", b"application/json")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class App:
    """The app behind the middleware: reads the whole body, answers 200 (or raises)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0
        self.body = b""
        self.disconnected = False
        self.request_id: str | None = None
        self.scope_type = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.scope_type = scope["type"]
        self.request_id = request_id_var.get()
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                break
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if self.fail:
            raise RuntimeError("the app failed")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": b"ok"})


class Exchange:
    """One request driven through an ASGI app: the messages sent back, the reads made."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.reads = 0

    @property
    def starts(self) -> list[Message]:
        return [m for m in self.sent if m["type"] == "http.response.start"]

    @property
    def status(self) -> int:
        (start,) = self.starts  # exactly one answer
        return int(start["status"])

    @property
    def headers(self) -> dict[str, str]:
        (start,) = self.starts
        return {k.decode(): v.decode() for k, v in start["headers"]}

    def error(self) -> dict[str, Any]:
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        error: dict[str, Any] = orjson.loads(body)["error"]
        return error


async def drive(
    app: ASGIApp,
    *,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = JSON,
    chunks: Sequence[bytes] = (b"{}",),
    scope_type: str = "http",
) -> Exchange:
    exchange = Exchange()
    pending = list(chunks)

    async def receive() -> Message:
        exchange.reads += 1
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        exchange.sent.append(message)

    scope = {"type": scope_type, "method": method, "headers": list(headers), "path": "/"}
    await app(scope, receive, send)
    return exchange


# --- Content type -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", [b"application/json", b"application/json; charset=utf-8", b"Application/JSON"]
)
async def test_json_in_any_spelling_reaches_the_app(content_type: bytes) -> None:
    app = App()
    exchange = await drive(
        JsonBodyMiddleware(app, LIMIT), headers=[(b"content-type", content_type)]
    )
    assert exchange.status == 200
    assert app.body == b"{}"


@pytest.mark.parametrize(
    ("method", "content_type", "shown"),
    [
        ("POST", b"application/json-patch+json", "application/json-patch+json"),
        ("POST", b"text/json", "text/json"),
        ("PUT", b"application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("PATCH", None, "none"),
    ],
)
async def test_bodies_that_are_not_json_get_415_and_never_reach_the_app(
    method: str, content_type: bytes | None, shown: str
) -> None:
    app = App()
    headers = [(b"content-type", content_type)] if content_type else []
    exchange = await drive(JsonBodyMiddleware(app, LIMIT), method=method, headers=headers)
    assert exchange.status == 415
    assert exchange.error() == {
        "message": f"Content-Type must be application/json (got {shown})",
        "type": "invalid_request_error",
        "param": None,
        "code": "unsupported_media_type",
    }
    assert (app.calls, exchange.reads) == (0, 0)


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS"])
async def test_methods_without_a_body_pass_whatever_their_headers(method: str) -> None:
    app = App()
    exchange = await drive(JsonBodyMiddleware(app, LIMIT), method=method, headers=[])
    assert exchange.status == 200
    assert app.calls == 1


async def test_other_scopes_pass_untouched() -> None:
    app = App()
    await drive(JsonBodyMiddleware(app, LIMIT), scope_type="lifespan", headers=[])
    assert (app.calls, app.scope_type) == (1, "lifespan")


# --- Body size ----------------------------------------------------------------------


def _length(value: bytes) -> list[tuple[bytes, bytes]]:
    return [*JSON, (b"content-length", value)]


async def test_a_declared_length_at_the_limit_is_served() -> None:
    app = App()
    body = b"x" * LIMIT
    exchange = await drive(JsonBodyMiddleware(app, LIMIT), headers=_length(b"100"), chunks=[body])
    assert exchange.status == 200
    assert app.body == body


async def test_a_declared_length_over_the_limit_is_413_before_a_byte_is_read() -> None:
    app = App()
    exchange = await drive(JsonBodyMiddleware(app, LIMIT), headers=_length(b"101"), chunks=[b"x"])
    assert exchange.status == 413
    assert exchange.error() == {
        "message": f"the body exceeds {LIMIT} bytes",
        "type": "invalid_request_error",
        "param": None,
        "code": "body_too_large",
    }
    assert (app.calls, exchange.reads) == (0, 0)


@pytest.mark.parametrize(
    ("chunks", "served"),
    [
        ([b"x" * 40, b"x" * 40, b"x" * 20], True),  # exactly the limit, streamed
        ([b"x" * 40, b"x" * 40, b"x" * 21], False),  # one byte over, in the last chunk
        ([b"x" * 101, b"never read"], False),  # over in the first chunk
    ],
)
@pytest.mark.parametrize("declared", [None, b"12abc", b"-5"])  # chunked, or a length to ignore
async def test_a_streamed_body_is_counted_and_cut_off_past_the_limit(
    chunks: list[bytes], served: bool, declared: bytes | None
) -> None:
    app = App()
    headers = _length(declared) if declared is not None else JSON
    exchange = await drive(JsonBodyMiddleware(app, LIMIT), headers=headers, chunks=chunks)
    if served:
        assert exchange.status == 200
        assert app.body == b"".join(chunks)
        return
    # One answer, 413; the app is told the client left and its own answer is dropped.
    assert exchange.status == 413
    assert exchange.error()["code"] == "body_too_large"
    assert app.disconnected
    assert "x-app" not in exchange.headers
    # Reading stopped at the chunk that crossed the limit.
    over = next(i for i in range(len(chunks)) if sum(map(len, chunks[: i + 1])) > LIMIT)
    assert exchange.reads == over + 1


async def test_an_app_failure_after_the_413_is_not_a_second_error() -> None:
    app = App(fail=True)
    exchange = await drive(JsonBodyMiddleware(app, LIMIT), headers=JSON, chunks=[b"x" * 200])
    assert exchange.status == 413


async def test_an_app_failure_without_a_413_propagates() -> None:
    app = App(fail=True)
    with pytest.raises(RuntimeError, match="the app failed"):
        await drive(JsonBodyMiddleware(app, LIMIT), headers=JSON, chunks=[b"{}"])


# --- Request id ---------------------------------------------------------------------


async def test_the_callers_request_id_is_used_while_serving_and_echoed_once() -> None:
    app = App()
    headers = [*JSON, (b"x-request-id", b"gw-0af3.b:7")]
    exchange = await drive(RequestIdMiddleware(app), headers=headers)
    assert app.request_id == "gw-0af3.b:7"  # what the app's log lines carry
    (start,) = exchange.starts
    ids = [v for k, v in start["headers"] if k == REQUEST_ID_HEADER.encode()]
    assert ids == [b"gw-0af3.b:7"]
    assert exchange.headers["x-app"] == "1"  # the app's own headers are kept


@pytest.mark.parametrize(
    "candidate", [None, b"", b"has space", b"x" * 129, b"semi;colon", "é".encode()]
)
async def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(
    candidate: bytes | None,
) -> None:
    app = App()
    headers = [*JSON, (b"x-request-id", candidate)] if candidate is not None else JSON
    first = await drive(RequestIdMiddleware(app), headers=headers)
    generated = first.headers[REQUEST_ID_HEADER]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert app.request_id == generated  # the app logs with the id the caller gets back
    second = await drive(RequestIdMiddleware(app), headers=headers)
    assert second.headers[REQUEST_ID_HEADER] != generated  # one per request


async def test_the_longest_safe_request_id_is_kept() -> None:
    app = App()
    longest = b"A" * 128
    exchange = await drive(RequestIdMiddleware(app), headers=[*JSON, (b"x-request-id", longest)])
    assert exchange.headers[REQUEST_ID_HEADER] == longest.decode()


async def test_refusals_of_the_body_middleware_carry_the_request_id() -> None:
    """Stacked as app.py stacks them: the id is set before the body checks answer."""
    app = App()
    stack = RequestIdMiddleware(JsonBodyMiddleware(app, LIMIT))
    with_id = (b"x-request-id", b"req-1")
    refused = await drive(stack, headers=[(b"content-type", b"text/plain"), with_id])
    assert (refused.status, refused.headers[REQUEST_ID_HEADER]) == (415, "req-1")
    too_large = await drive(stack, headers=[*JSON, with_id], chunks=[b"x" * 101])
    assert (too_large.status, too_large.headers[REQUEST_ID_HEADER]) == (413, "req-1")
    assert app.calls == 1  # only the streamed one reached it, and was cut off
