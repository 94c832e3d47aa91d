"""Readiness and shutdown phases, shared by the gRPC and HTTP edges.

Liveness and readiness mean different things:
- live: the process and its event loop answer (a busy core is still live),
  and no inference worker has died or stalled (worker_health.py);
- ready: the model is loaded, a warm-up inference has run, the process is
  not draining, and the workers are healthy (alive, not stalled, batches not
  all failing). Only then do load balancers send it work.

On SIGTERM the core turns not-ready at once, keeps accepting work for the
drain delay (while load balancers notice), then refuses new work, finishes
what it has within the grace period, and exits 0.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable

from tandem.errors import Unavailable
from tandem.ops.metrics import CoreMetrics
from tandem.service import EmbeddingService
from tandem.worker_health import Verdict

log = logging.getLogger(__name__)

ReadinessListener = Callable[[bool], Awaitable[None]]


class Phase(enum.Enum):
    STARTING = "starting"  # loading and warming the model
    READY = "ready"
    DRAINING = "draining"  # not ready, still accepting work
    STOPPING = "stopping"  # refusing new work, finishing in-flight work


class Lifecycle:
    """Which phase the process is in, and the service once it exists."""

    def __init__(self, metrics: CoreMetrics) -> None:
        self.phase = Phase.STARTING
        self._service: EmbeddingService | None = None
        self._metrics = metrics
        self._listeners: list[ReadinessListener] = []
        self._liveness_listeners: list[ReadinessListener] = []
        self._workers = Verdict.healthy()

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY and self._workers.ready

    @property
    def live(self) -> bool:
        return self._workers.live

    @property
    def not_ready_reason(self) -> str:
        if self.phase is Phase.READY:
            return self._workers.reason
        return {
            Phase.STARTING: "the model is loading and warming up",
            Phase.DRAINING: "the core is draining for shutdown",
            Phase.STOPPING: "the core is shutting down",
        }[self.phase]

    @property
    def not_live_reason(self) -> str:
        return "" if self.live else self._workers.reason

    def on_readiness_change(self, listener: ReadinessListener) -> None:
        self._listeners.append(listener)

    def on_liveness_change(self, listener: ReadinessListener) -> None:
        self._liveness_listeners.append(listener)

    async def set_worker_health(self, verdict: Verdict) -> None:
        """The watchdog's latest verdict on the inference workers."""
        was_ready, was_live = self.ready, self.live
        self._workers = verdict
        self._metrics.ready.set(1 if self.ready else 0)
        if self.ready != was_ready:
            for listener in self._listeners:
                await listener(self.ready)
        if self.live != was_live:
            for listener in self._liveness_listeners:
                await listener(self.live)

    def service(self) -> EmbeddingService:
        """The service, or Unavailable while starting or once new work is refused."""
        if self._service is None or self.phase in (Phase.STARTING, Phase.STOPPING):
            raise Unavailable(f"not accepting work: {self.not_ready_reason}")
        return self._service

    def attach(self, service: EmbeddingService) -> None:
        self._service = service

    async def set_ready(self) -> None:
        await self._enter(Phase.READY)

    async def begin_drain(self) -> None:
        await self._enter(Phase.DRAINING)

    async def stop_accepting(self) -> None:
        await self._enter(Phase.STOPPING)

    async def _enter(self, phase: Phase) -> None:
        was_ready = self.ready
        self.phase = phase
        log.info("lifecycle phase changed", extra={"phase": phase.value})
        self._metrics.ready.set(1 if self.ready else 0)
        if self.ready != was_ready:
            for listener in self._listeners:
                await listener(self.ready)
