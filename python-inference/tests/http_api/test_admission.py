"""http_api/admission.py: the place is taken from the declared size before the body is read.

In-process around a recording service (what AdmittedRoute reserves, and
when), then the attacker's case against the real core: bodies that never
arrive hold their places only until the request's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from support import RunningCore

from tandem.errors import InvalidInput
from tandem.http_api.admission import (
    MAX_TIMEOUT_MS,
    body_reservation,
    request_deadline,
    request_timeout_s,
)
from tandem.http_api.app import ApiLimits, create_app
from tandem.http_api.deps import AppContext
from tandem.lifecycle import Lifecycle
from tandem.ops.metrics import CoreMetrics
from tandem.service import ModelInfo

MAX_BODY = 4096


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("declared", "seconds"),
    [
        (None, 30.0),
        ("1", 0.001),
        ("2500", 2.5),
        (str(MAX_TIMEOUT_MS), MAX_TIMEOUT_MS / 1000),
        (str(MAX_TIMEOUT_MS + 1), 30.0),
        ("0", 30.0),
        ("-5", 30.0),
        ("1e3", 30.0),
        ("", 30.0),
    ],
)
def test_the_body_read_uses_a_valid_x_timeout_ms_else_the_default(
    declared: str | None, seconds: float
) -> None:
    headers = {"X-Timeout-Ms": declared} if declared is not None else {}
    assert request_timeout_s(_request(headers), 30.0) == seconds


@pytest.mark.parametrize(
    ("declared", "reserved"),
    [("100", 100), ("0", 0), (str(MAX_BODY), MAX_BODY), (str(10 * MAX_BODY), MAX_BODY),
     (None, MAX_BODY), ("-1", MAX_BODY), ("12abc", MAX_BODY)],
)  # fmt: skip
def test_the_reservation_is_the_declared_length_capped_or_the_largest_body(
    declared: str | None, reserved: int
) -> None:
    headers = {"Content-Length": declared} if declared is not None else {}
    assert body_reservation(_request(headers), MAX_BODY) == reserved


def test_no_deadline_until_admission_sets_one() -> None:
    request = _request({})
    assert request_deadline(request) is None
    request.state.deadline = 12.5
    assert request_deadline(request) == 12.5


class ReservingService:
    """Records each reservation and whether it was held when embed ran."""

    info = ModelInfo("m", (), 3, 8, 4, 100, "fp32")

    def __init__(self) -> None:
        self.reserved: list[int] = []
        self.holding = 0
        self.held_at_embed: list[int] = []

    @contextlib.contextmanager
    def reserve(self, message_bytes: int) -> Iterator[None]:
        self.reserved.append(message_bytes)
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1

    async def embed(self, *_: Any, **__: Any) -> None:
        self.held_at_embed.append(self.holding)
        raise InvalidInput("is refused by the test", param="texts")


@pytest.fixture
async def admitted() -> AsyncIterator[tuple[httpx.AsyncClient, ReservingService]]:
    metrics = CoreMetrics()
    lifecycle = Lifecycle(metrics)
    service = ReservingService()
    lifecycle.attach(service)  # type: ignore[arg-type]
    await lifecycle.set_ready()
    app = create_app(
        AppContext(lifecycle, metrics, 5.0, access_log=False, max_body_bytes=MAX_BODY),
        ApiLimits(MAX_BODY, 4, 100),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        yield c, service


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_post_holds_its_place_until_answered_and_gets_are_not_admitted(
    admitted: tuple[httpx.AsyncClient, ReservingService], anyio_backend: str
) -> None:
    client, service = admitted
    body = b'{"texts": ["abc"]}'
    reply = await client.post(
        "/v1/embed", content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 400  # the recording service refuses, after admission
    assert service.reserved == [len(body)]
    assert service.held_at_embed == [1]  # the place was held while the service ran
    assert service.holding == 0  # and released with the answer

    async def chunked() -> AsyncIterator[bytes]:
        yield body

    await client.post("/v1/embed", content=chunked(), headers={"Content-Type": "application/json"})
    assert service.reserved[-1] == MAX_BODY  # no Content-Length: the largest body

    assert (await client.get("/v1/model")).status_code == 200
    assert len(service.reserved) == 2
    assert service.holding == 0
    await asyncio.sleep(0)


# --- Against the real core: bodies that never come --------------------------------------


def _admitted(core: RunningCore) -> float:
    for line in httpx.get(core.metrics_url, timeout=5).text.splitlines():
        if line.startswith("tandem_core_admitted_requests "):
            return float(line.split()[1])
    raise AssertionError("tandem_core_admitted_requests is not exported")


def test_bodies_that_never_arrive_release_their_places_at_the_deadline(core: RunningCore) -> None:
    """Clients that send headers declaring a body, then nothing: each holds
    an admission place only until its X-Timeout-Ms, then gets 408 in the error shape."""
    assert core.ports is not None
    head = (
        b"POST /v1/embed HTTP/1.1\r\nHost: core\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\nX-Timeout-Ms: 700\r\n\r\n"
    )
    address = ("127.0.0.1", core.ports.http)
    silent = [socket.create_connection(address, timeout=10) for _ in range(6)]
    try:
        started = time.monotonic()
        for sock in silent:
            sock.sendall(head)
        time.sleep(0.3)
        assert _admitted(core) == 6  # the places are held while the bodies are awaited
        for sock in silent:
            reply = _read_reply(sock)
            status = int(reply.split(b" ", 2)[1])
            assert status == 408, reply[:200]
            error = json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
            assert error["code"] == "body_timeout", error
            assert error["type"] == "invalid_request_error"
        assert time.monotonic() - started < 5  # the deadline, not the 30 s default
    finally:
        for sock in silent:
            sock.close()
    assert _admitted(core) == 0
    reply = httpx.post(f"{core.http_url}/v1/embed", json={"texts": ["next"]}, timeout=30)
    assert reply.status_code == 200


def _read_reply(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body, read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, body
        body += chunk
    return head + b"\r\n\r\n" + body
