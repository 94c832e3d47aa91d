"""routes/health.py: /healthz and /readyz answer from the lifecycle alone, with a reason when not.

In-process (no model): the lifecycle is driven through its phases and the
workers' verdicts, as process.py and the watchdog drive it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tandem.http_api.app import ApiLimits, create_app
from tandem.http_api.deps import AppContext
from tandem.lifecycle import Lifecycle
from tandem.ops.metrics import CoreMetrics
from tandem.worker_health import Verdict

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def probes() -> AsyncIterator[tuple[httpx.AsyncClient, Lifecycle]]:
    metrics = CoreMetrics()
    lifecycle = Lifecycle(metrics)
    app = create_app(
        AppContext(lifecycle, metrics, 1.0, access_log=False, max_body_bytes=1024),
        ApiLimits(1024, 4, 100),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
        yield c, lifecycle


Probes = tuple[httpx.AsyncClient, Lifecycle]


async def _both(client: httpx.AsyncClient) -> tuple[tuple[int, object], tuple[int, object]]:
    live, ready = await client.get("/healthz"), await client.get("/readyz")
    assert live.headers["content-type"] == ready.headers["content-type"] == "application/json"
    return (live.status_code, live.json()), (ready.status_code, ready.json())


async def test_each_phase_answers_with_its_reason(probes: Probes) -> None:
    client, lifecycle = probes
    live = (200, {"status": "ok", "reason": None})
    assert await _both(client) == (
        live, (503, {"status": "not_ready", "reason": "the model is loading and warming up"})
    )  # fmt: skip
    lifecycle.attach(object())  # type: ignore[arg-type]
    await lifecycle.set_ready()
    assert await _both(client) == (live, (200, {"status": "ready", "reason": None}))
    await lifecycle.begin_drain()
    assert await _both(client) == (
        live, (503, {"status": "not_ready", "reason": "the core is draining for shutdown"})
    )  # fmt: skip
    await lifecycle.stop_accepting()
    assert await _both(client) == (
        live, (503, {"status": "not_ready", "reason": "the core is shutting down"})
    )  # fmt: skip


async def test_sick_workers_fail_readiness_and_dead_ones_liveness(probes: Probes) -> None:
    client, lifecycle = probes
    lifecycle.attach(object())  # type: ignore[arg-type]
    await lifecycle.set_ready()
    failing = Verdict(live=True, ready=False, reason="5 batches in a row failed")
    await lifecycle.set_worker_health(failing)
    (live_status, _), ready = await _both(client)
    assert live_status == 200  # failing batches are not a reason to restart the pod
    assert ready == (503, {"status": "not_ready", "reason": "5 batches in a row failed"})

    dead = Verdict(live=False, ready=False, reason="worker 1 died")
    await lifecycle.set_worker_health(dead)
    live, ready = await _both(client)
    assert live == (503, {"status": "not_live", "reason": "worker 1 died"})
    assert ready[0] == 503

    await lifecycle.set_worker_health(Verdict.healthy())
    assert await _both(client) == ((200, {"status": "ok", "reason": None}),
                                   (200, {"status": "ready", "reason": None}))  # fmt: skip
