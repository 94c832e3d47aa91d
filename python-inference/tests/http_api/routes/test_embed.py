"""routes/embed.py in-process, around a recording service: what the route asks and answers.

The real core behind this route is exercised in http_api/test_routes.py (the
model's vectors, every refusal); these check the route's own work: the
command it builds from the body, the deadline it passes (X-Timeout-Ms, or the
default), the reserved place, and the answer's JSON and Server-Timing header.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest

from tandem.http_api.app import ApiLimits, create_app
from tandem.http_api.deps import AppContext
from tandem.lifecycle import Lifecycle
from tandem.ops.metrics import CoreMetrics
from tandem.service import EmbedCommand, EmbedResult, ModelInfo, Timings, Truncation

pytestmark = pytest.mark.anyio
DEFAULT_TIMEOUT_S = 7.0
INFO = ModelInfo("org/model", ("model",), 3, 256, 16, 1000, "fp32")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class RecordingService:
    """Records what the route asks; answers three-float vectors."""

    info: ModelInfo = INFO
    calls: list[tuple[EmbedCommand, float, bool, float]] = field(default_factory=list)
    reserved: list[int] = field(default_factory=list)

    @contextlib.contextmanager
    def reserve(self, message_bytes: int) -> Iterator[None]:
        self.reserved.append(message_bytes)
        yield

    async def embed(
        self, command: EmbedCommand, deadline: float, *, reserved: bool = False
    ) -> EmbedResult:
        self.calls.append((command, deadline, reserved, asyncio.get_running_loop().time()))
        count = len(command.texts)
        return EmbedResult(
            model_id=self.info.model_id,
            vectors=np.arange(count * 3, dtype=np.float32).reshape(count, 3) / 4,
            token_counts=[len(t) + 2 for t in command.texts],
            truncated=[False] * (count - 1) + [True],
            timings=Timings(tokenize_s=0.001, queue_s=0.002, inference_s=0.0035),
        )


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, RecordingService, CoreMetrics]]:
    metrics = CoreMetrics()
    lifecycle = Lifecycle(metrics)
    service = RecordingService()
    lifecycle.attach(service)  # type: ignore[arg-type]
    await lifecycle.set_ready()
    app = create_app(
        AppContext(lifecycle, metrics, DEFAULT_TIMEOUT_S, access_log=False, max_body_bytes=4096),
        ApiLimits(4096, 16, 1000),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://core") as client:
        yield client, service, metrics


Served = tuple[httpx.AsyncClient, RecordingService, CoreMetrics]


async def test_the_answer_is_one_item_per_text_in_order_with_timings(served: Served) -> None:
    client, _, metrics = served
    reply = await client.post("/v1/embed", json={"texts": ["ab", "cde"]})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {
        "model": "org/model",
        "embeddings": [
            {"values": [0.0, 0.25, 0.5], "token_count": 4, "truncated": False},
            {"values": [0.75, 1.0, 1.25], "token_count": 5, "truncated": True},
        ],
        "total_tokens": 9,
    }
    assert reply.headers["server-timing"] == Timings(0.001, 0.002, 0.0035).server_timing()
    assert "inference;dur=3.5" in reply.headers["server-timing"]
    labels = {"transport": "http", "method": "embed", "outcome": "ok"}
    assert metrics.registry.get_sample_value("tandem_core_requests_total", labels) == 1


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ({"texts": ["a"]}, EmbedCommand(texts=["a"])),
        (
            {"texts": ["a", "b"], "model": "model", "normalize": False, "truncate": False},
            EmbedCommand(["a", "b"], "model", normalize=False, truncation=Truncation.REJECT),
        ),
    ],
)
async def test_the_body_becomes_the_command_on_a_reserved_place(
    served: Served, body: dict[str, Any], command: EmbedCommand
) -> None:
    client, service, _ = served
    assert (await client.post("/v1/embed", json=body)).status_code == 200
    [(sent, _, reserved, _)] = service.calls
    assert sent == command
    assert reserved  # AdmittedRoute took the place: the service must not take a second
    assert len(service.reserved) == 1


@pytest.mark.parametrize(("header", "seconds"), [(None, DEFAULT_TIMEOUT_S), ("250", 0.25)])
async def test_the_deadline_is_x_timeout_ms_or_the_default(
    served: Served, header: str | None, seconds: float
) -> None:
    client, service, _ = served
    headers = {"X-Timeout-Ms": header} if header else {}
    assert (
        await client.post("/v1/embed", json={"texts": ["a"]}, headers=headers)
    ).status_code == 200
    [(_, deadline, _, called_at)] = service.calls
    # Counted from before the body was read, so a little less remains at the call.
    assert seconds - 0.5 < deadline - called_at <= seconds


@pytest.mark.parametrize("header", ["0", "3600001", "soon"])
async def test_an_invalid_timeout_is_refused_before_the_service(
    served: Served, header: str
) -> None:
    client, service, _ = served
    reply = await client.post("/v1/embed", json={"texts": ["a"]}, headers={"X-Timeout-Ms": header})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "header.x-timeout-ms"
    assert service.calls == []


async def test_model_answers_the_services_info(served: Served) -> None:
    client, _, _ = served
    reply = await client.get("/v1/model")
    assert reply.status_code == 200
    assert reply.json() == {
        "model_id": "org/model", "aliases": ["model"], "dimension": 3, "max_tokens": 256,
        "max_texts_per_request": 16, "max_text_bytes": 1000, "precision": "fp32",
    }  # fmt: skip


async def test_while_loading_both_routes_are_503_unavailable() -> None:
    metrics = CoreMetrics()
    app = create_app(
        AppContext(Lifecycle(metrics), metrics, 1.0, access_log=False, max_body_bytes=4096),
        ApiLimits(4096, 16, 1000),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        for reply in (await c.post("/v1/embed", json={"texts": ["a"]}), await c.get("/v1/model")):
            assert reply.status_code == 503
            assert reply.json()["error"]["code"] == "unavailable"
            assert "loading" in reply.json()["error"]["message"]
