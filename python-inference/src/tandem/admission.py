"""Admission: refuse at once what the core cannot hold in memory or finish in time.

Both edges call ``EmbeddingService.embed``, which enters this gate right after
validation and before any work that costs memory or CPU (tokenization, token
arrays, vectors, the response). Two checks, both answered at once with
Overloaded (gRPC RESOURCE_EXHAUSTED + RetryInfo, HTTP 429 + Retry-After):

- memory: at most ``max_requests`` requests and ``max_bytes`` bytes of text
  (UTF-8) are admitted at a time. What an admitted request can hold is
  proportional to these (capacity.py turns them into the memory formula's
  in-flight term), so the core's memory does not depend on how many callers
  there are. A lone request is always admitted: its size is already bounded
  by the request limits.
- time: from the pool's measured service rate (tokens per second, kept by the
  scheduler) and the tokens already queued or running, the wait of a new
  request is estimated; a request that would finish after its deadline is
  refused now instead of queuing and failing with DEADLINE_EXCEEDED later.

Everything here runs on the event loop: no locks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from tandem.errors import Overloaded
from tandem.metrics import CoreMetrics

# Retry-After bounds: never "retry now" (a tight retry loop), never longer
# than a caller would sensibly wait.
MIN_RETRY_AFTER_S = 0.05
MAX_RETRY_AFTER_S = 30.0
# Before the pool has run anything there is no rate to estimate a drain time from.
UNKNOWN_RETRY_AFTER_S = 1.0


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_requests: int  # requests admitted at once (both edges together)
    max_bytes: int  # UTF-8 bytes of text admitted at once


class ServiceRate(Protocol):
    """What the deadline check needs from the scheduler."""

    def wait_estimate_s(self, tokens: int) -> float | None:
        """Seconds until ``tokens`` more would be computed; None when idle or unmeasured."""
        ...


def retry_after(seconds: float | None) -> float:
    """A Retry-After hint within [MIN, MAX] seconds (UNKNOWN when nothing is measured)."""
    if seconds is None:
        return UNKNOWN_RETRY_AFTER_S
    return min(max(seconds, MIN_RETRY_AFTER_S), MAX_RETRY_AFTER_S)


class AdmissionGate:
    """Counts admitted requests and bytes; refuses those that would break the bounds."""

    def __init__(
        self,
        limits: AdmissionLimits,
        rate: ServiceRate,
        metrics: CoreMetrics,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.limits = limits
        self._rate = rate
        self._metrics = metrics
        self._clock = clock  # the event loop's time, the clock deadlines are in
        self.requests = 0
        self.bytes = 0

    @contextlib.contextmanager
    def admit(self, request_bytes: int) -> Iterator[None]:
        """Hold a place for one request until the block exits, however it exits."""
        limits = self.limits
        if self.requests >= limits.max_requests:
            self._refuse(
                "requests_in_flight",
                f"{self.requests} requests are being served (the limit is {limits.max_requests})",
            )
        if self.requests and self.bytes + request_bytes > limits.max_bytes:
            self._refuse(
                "bytes_in_flight",
                f"{self.bytes} bytes of text are being served and this request adds "
                f"{request_bytes} (the limit is {limits.max_bytes})",
            )
        self.requests += 1
        self.bytes += request_bytes
        self._publish()
        try:
            yield
        finally:
            self.requests -= 1
            self.bytes -= request_bytes
            self._publish()

    def check_deadline(self, tokens: int, deadline: float) -> None:
        """Refuse when ``tokens`` cannot be computed before ``deadline`` (loop time).

        An idle or unmeasured pool admits anything: the estimate needs a rate,
        and a lone request must never be refused only for being big.
        """
        wait_s = self._rate.wait_estimate_s(tokens)
        if wait_s is None:
            return
        budget_s = deadline - self._clock()
        if wait_s <= budget_s:
            return
        self._refuse(
            "deadline",
            f"this request would finish in about {wait_s:.2f} s, after its deadline "
            f"({max(budget_s, 0.0):.2f} s from now)",
            retry_after_s=wait_s - max(budget_s, 0.0),
        )

    def _refuse(self, reason: str, why: str, *, retry_after_s: float | None = None) -> None:
        self._metrics.admission_refused.labels(reason).inc()
        if retry_after_s is None:
            retry_after_s = self._rate.wait_estimate_s(0)
        raise Overloaded(
            f"the core is at capacity: {why}; retry later", retry_after_s=retry_after(retry_after_s)
        )

    def _publish(self) -> None:
        self._metrics.admitted_requests.set(self.requests)
        self._metrics.admitted_bytes.set(self.bytes)
