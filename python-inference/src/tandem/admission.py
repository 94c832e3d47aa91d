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
  scheduler), the tokens already queued or running and the request's own
  tokens, its finish time is estimated; a request that would finish after
  its deadline is refused now instead of queuing and failing with
  DEADLINE_EXCEEDED later. That includes a request that alone needs longer
  than its deadline on an idle core (256 long texts on a throttled core).
  Before the first batch there is no rate, and everything is admitted.

Everything here runs on the event loop: no locks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from tandem.errors import DeadlineExceeded, Overloaded
from tandem.ops.metrics import CoreMetrics

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

    @property
    def tokens_per_second(self) -> float:
        """The pool's measured rate (0 before the first batch)."""
        ...

    def wait_estimate_s(self, tokens: int) -> float | None:
        """Seconds until ``tokens`` more would be computed (the work ahead included);
        None when unmeasured, or when there is no work at all."""
        ...


def _si(value: float) -> str:
    """1900.0 -> "1.9k": rates in messages people read."""
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def retry_after(seconds: float | None) -> float:
    """A Retry-After hint within [MIN, MAX] seconds (UNKNOWN when nothing is measured)."""
    if seconds is None:
        return UNKNOWN_RETRY_AFTER_S
    return min(max(seconds, MIN_RETRY_AFTER_S), MAX_RETRY_AFTER_S)


# Why admission refuses a request: the label of tandem_core_admission_refused_requests_total.
REFUSAL_REASONS = ("requests_in_flight", "bytes_in_flight", "deadline")


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
        metrics.admission_limit.labels("requests").set(limits.max_requests)
        metrics.admission_limit.labels("bytes").set(limits.max_bytes)
        # Every reason's series exists from the start, at 0: a dashboard's
        # refusal rate reads 0 instead of "no data", and an alert's ratio works.
        for reason in REFUSAL_REASONS:
            metrics.admission_refused.labels(reason)
        self._publish()

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

        The estimate is the work ahead plus this request's own tokens at the
        measured rate, so a request too big for its deadline is refused even
        on an idle core: it would only fail with DEADLINE_EXCEEDED after
        holding a worker. An unmeasured pool (no batch yet) admits anything.
        """
        wait_s = self._rate.wait_estimate_s(tokens)
        if wait_s is None:
            return
        budget_s = deadline - self._clock()
        if wait_s <= budget_s:
            return
        if budget_s <= 0:
            # Not an overload: the deadline is gone, whatever the core's load.
            raise DeadlineExceeded("the deadline passed before the request was admitted")
        left_s = budget_s
        self._refuse(
            "deadline",
            f"this request needs about {wait_s:.1f} s ({tokens} tokens"
            f"{self._ahead_note(tokens, wait_s)}) at this core's measured rate of "
            f"{_si(self._rate.tokens_per_second)} tokens/s; the deadline leaves {left_s:.1f} s",
            retry_after_s=wait_s - left_s,
        )

    def _ahead_note(self, tokens: int, wait_s: float) -> str:
        """ ", after N tokens ahead of it" when other work is queued or running."""
        rate = self._rate.tokens_per_second
        ahead = round(wait_s * rate) - tokens if rate else 0
        return f" after {ahead} tokens ahead of it" if ahead > 0 else ""

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
