"""Per-request bookkeeping shared by both edges: metrics and one access-log line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import CoreError, json_code
from tandem.ops.exemplars import current_trace_exemplar
from tandem.ops.metrics import CoreMetrics
from tandem.service import EmbedResult

log = logging.getLogger("tandem.access")


@dataclass
class RequestRecord:
    outcome: str = "ok"
    result: EmbedResult | None = None

    def failed(self, code: str) -> None:
        if self.outcome == "ok":
            self.outcome = code


@contextlib.contextmanager
def track_request(
    metrics: CoreMetrics, transport: str, method: str, *, access_log: bool
) -> Iterator[RequestRecord]:
    """Count, time and (optionally) log one request; the caller fills in the record."""
    started = time.perf_counter()
    record = RequestRecord()
    metrics.inflight.inc()
    try:
        yield record
    except CoreError as exc:
        record.failed(exc.code)
        raise
    except asyncio.CancelledError:
        record.failed("cancelled")
        raise
    except BaseException:
        record.failed(json_code(pb.ERROR_REASON_INTERNAL_ERROR))
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics.inflight.dec()
        metrics.requests.labels(transport, method, record.outcome).inc()
        # The server span is still current here (it ends after this block).
        metrics.request_seconds.labels(transport, method).observe(
            elapsed, exemplar=current_trace_exemplar()
        )
        if access_log:
            fields: dict[str, object] = {
                "transport": transport,
                "method": method,
                "outcome": record.outcome,
                "duration_ms": round(elapsed * 1e3, 3),
            }
            if record.result is not None:
                timings = record.result.timings
                fields.update(
                    texts=len(record.result.token_counts),
                    tokens=record.result.total_tokens,
                    tokenize_ms=round(timings.tokenize_s * 1e3, 3),
                    queue_ms=round(timings.queue_s * 1e3, 3),
                    inference_ms=round(timings.inference_s * 1e3, 3),
                )
            log.info("request", extra=fields)
