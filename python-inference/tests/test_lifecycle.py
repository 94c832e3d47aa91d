from __future__ import annotations

import pytest

from tandem.errors import Unavailable
from tandem.lifecycle import Lifecycle, Phase
from tandem.ops.metrics import CoreMetrics
from tandem.service import EmbeddingService

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_not_ready_until_set_ready_and_again_once_draining() -> None:
    lifecycle = Lifecycle(CoreMetrics())
    seen: list[bool] = []

    async def listener(ready: bool) -> None:
        seen.append(ready)

    lifecycle.on_readiness_change(listener)
    assert not lifecycle.ready
    with pytest.raises(Unavailable, match="loading"):
        lifecycle.service()

    service = object.__new__(EmbeddingService)
    lifecycle.attach(service)
    await lifecycle.set_ready()
    assert lifecycle.ready
    assert lifecycle.service() is service

    await lifecycle.begin_drain()
    assert not lifecycle.ready
    assert lifecycle.service() is service  # still accepting during the drain delay

    await lifecycle.stop_accepting()
    assert lifecycle.phase is Phase.STOPPING
    with pytest.raises(Unavailable, match="shutting down"):
        lifecycle.service()
    assert seen == [True, False]
