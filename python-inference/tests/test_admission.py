"""Admission: bounds on requests and bytes in flight, and deadline-aware refusal.

Unit tests for the gate and the scheduler's wait estimate, then the attack
through both edges of a real in-process core: many concurrent max-size
requests get RESOURCE_EXHAUSTED / 429 at once, not DEADLINE_EXCEEDED / 504
after waiting, and the next request is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from support import RunningCore, core_settings

from tandem.admission import (
    MAX_RETRY_AFTER_S,
    MIN_RETRY_AFTER_S,
    REFUSAL_REASONS,
    UNKNOWN_RETRY_AFTER_S,
    AdmissionGate,
    AdmissionLimits,
)
from tandem.batching.planner import BatchLimits
from tandem.batching.scheduler import BatchScheduler, QueueLimits
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc
from tandem.errors import DeadlineExceeded, Overloaded
from tandem.ops.metrics import CoreMetrics


class FixedRate:
    """A service rate with a fixed answer, for the gate's unit tests."""

    def __init__(self, wait_s: float | None, tokens_per_second: float = 0.0) -> None:
        self.wait_s = wait_s
        self.tokens_per_second = tokens_per_second
        self.asked: list[int] = []

    def wait_estimate_s(self, tokens: int) -> float | None:
        self.asked.append(tokens)
        return self.wait_s


def _gate(
    max_requests: int = 2,
    max_bytes: int = 100,
    wait_s: float | None = None,
    now: float = 0.0,
    rate: float = 0.0,
) -> tuple[AdmissionGate, CoreMetrics]:
    metrics = CoreMetrics()
    gate = AdmissionGate(
        AdmissionLimits(max_requests, max_bytes),
        FixedRate(wait_s, rate),
        metrics,
        clock=lambda: now,
    )
    return gate, metrics


def _refused(metrics: CoreMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "tandem_core_admission_refused_requests_total", {"reason": reason}
    )
    return value or 0.0


# --- The gate ---------------------------------------------------------------------


def test_requests_over_the_bound_are_refused_and_counted() -> None:
    gate, metrics = _gate(max_requests=2)
    with gate.admit(1), gate.admit(1):
        with pytest.raises(Overloaded) as refused, gate.admit(1):
            pass
        assert "2 requests are being served" in refused.value.message
    assert _refused(metrics, "requests_in_flight") == 1
    assert (gate.requests, gate.bytes) == (0, 0)


def test_bytes_over_the_bound_are_refused_but_a_lone_request_always_fits() -> None:
    gate, metrics = _gate(max_requests=10, max_bytes=100)
    with gate.admit(60):
        with pytest.raises(Overloaded), gate.admit(41):
            pass
        with gate.admit(40):
            assert gate.bytes == 100
    assert _refused(metrics, "bytes_in_flight") == 1
    # Nothing in flight: a request over the byte bound is still admitted (its
    # size is bounded by the request limits), so it can never starve.
    with gate.admit(150):
        assert gate.requests == 1


def test_the_place_is_released_however_the_request_ends() -> None:
    gate, metrics = _gate(max_requests=1)
    for error in (ValueError("failed"), asyncio.CancelledError()):
        with pytest.raises(type(error)), gate.admit(10):
            raise error
    assert (gate.requests, gate.bytes) == (0, 0)
    assert metrics.registry.get_sample_value("tandem_core_admitted_requests") == 0
    with gate.admit(10):
        assert metrics.registry.get_sample_value("tandem_core_admitted_bytes") == 10


def test_the_bounds_are_exported_next_to_the_gauges_they_bound() -> None:
    # The saturation alert divides admitted by limit: both must exist from the start.
    gate, metrics = _gate(max_requests=3, max_bytes=4096)
    sample = metrics.registry.get_sample_value
    assert sample("tandem_core_admission_limit", {"resource": "requests"}) == 3
    assert sample("tandem_core_admission_limit", {"resource": "bytes"}) == 4096
    assert sample("tandem_core_admitted_requests") == 0
    assert sample("tandem_core_admitted_bytes") == 0
    with gate.admit(10), gate.admit(20):
        assert sample("tandem_core_admitted_requests") == 2
        assert sample("tandem_core_admission_limit", {"resource": "requests"}) == 3


def test_every_refusal_reason_is_exported_at_zero_before_the_first_refusal() -> None:
    # A dashboard's refusal panel reads 0, not "no data", and a renamed
    # metric still shows as missing (tests/e2e/test_observability.py).
    _, metrics = _gate()
    for reason in REFUSAL_REASONS:
        value = metrics.registry.get_sample_value(
            "tandem_core_admission_refused_requests_total", {"reason": reason}
        )
        assert value == 0, reason


def test_a_request_that_cannot_finish_before_its_deadline_is_refused_with_a_hint() -> None:
    # 12 s at 1000 tokens/s: 500 tokens of its own after 11500 ahead of it.
    gate, metrics = _gate(wait_s=12.0, now=100.0, rate=1000.0)
    with pytest.raises(Overloaded) as refused:
        gate.check_deadline(500, deadline=110.0)
    assert refused.value.message == (
        "the core is at capacity: this request needs about 12.0 s (500 tokens after 11500 "
        "tokens ahead of it) at this core's measured rate of 1.0k tokens/s; the deadline "
        "leaves 10.0 s; retry later"
    )
    assert refused.value.retry_after_s == pytest.approx(2.0)  # 12 s of work, 10 s of budget
    assert _refused(metrics, "deadline") == 1
    gate.check_deadline(500, deadline=112.5)  # fits: admitted


def test_a_request_too_big_for_its_deadline_is_refused_on_an_idle_core() -> None:
    # 256 texts x 256 tokens at 1900 tokens/s: about 34 s of its own work,
    # against the 9.8 s the gateway's upstream deadline leaves.
    tokens = 256 * 256
    gate, metrics = _gate(wait_s=tokens / 1900, now=0.0, rate=1900.0)
    with pytest.raises(Overloaded) as refused:
        gate.check_deadline(tokens, deadline=9.8)
    assert "needs about 34.5 s (65536 tokens)" in refused.value.message
    assert "measured rate of 1.9k tokens/s; the deadline leaves 9.8 s" in refused.value.message
    assert _refused(metrics, "deadline") == 1
    assert (gate.requests, gate.bytes) == (0, 0)  # refused before it held anything


def test_a_deadline_already_passed_is_deadline_exceeded_not_overload() -> None:
    gate, metrics = _gate(wait_s=0.01, now=100.0, rate=1000.0)
    with pytest.raises(DeadlineExceeded):
        gate.check_deadline(10, deadline=99.9)
    assert _refused(metrics, "deadline") == 0


def test_an_unmeasured_pool_admits_any_deadline() -> None:
    gate, metrics = _gate(wait_s=None, now=100.0)
    gate.check_deadline(1 << 20, deadline=100.001)
    assert _refused(metrics, "deadline") == 0


@pytest.mark.parametrize(
    ("estimate", "hint"),
    [(None, UNKNOWN_RETRY_AFTER_S), (0.0, MIN_RETRY_AFTER_S), (3.5, 3.5), (1e6, MAX_RETRY_AFTER_S)],
)
def test_retry_after_is_the_drain_time_within_bounds(estimate: float | None, hint: float) -> None:
    gate, _ = _gate(max_requests=1, wait_s=estimate)
    with gate.admit(1), pytest.raises(Overloaded) as refused, gate.admit(1):
        pass
    assert refused.value.retry_after_s == hint


# --- The scheduler's wait estimate -------------------------------------------------


class SlowWorker:
    """Takes ``delay_s`` per batch, or waits for ``hold`` to be set."""

    def __init__(self, delay_s: float, hold: threading.Event | None = None) -> None:
        self.delay_s = delay_s
        self.hold = hold

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        if self.hold is not None:
            self.hold.wait(10)
        time.sleep(self.delay_s)
        return np.ones((len(rows), 4), dtype=np.float32)


def _scheduler(*workers: SlowWorker) -> BatchScheduler:
    return BatchScheduler(
        list(workers), BatchLimits(8, 1024, 0.5), QueueLimits(64, 1 << 20, 0.0), CoreMetrics()
    )


def _rows(count: int, length: int) -> list[np.ndarray]:
    return [np.ones(length, dtype=np.int32) for _ in range(count)]


@pytest.mark.anyio
async def test_wait_estimate_is_work_ahead_over_the_measured_rate() -> None:
    loop = asyncio.get_running_loop()
    hold = threading.Event()
    scheduler = _scheduler(SlowWorker(0.05, hold))
    assert scheduler.wait_estimate_s(100) is None  # nothing measured, nothing ahead
    hold.set()
    await scheduler.submit(_rows(8, 100), deadline=loop.time() + 10)
    rate = scheduler.tokens_per_second
    assert 800 / 0.2 < rate < 800 / 0.05  # 800 tokens in one batch of about 50 ms
    # Idle: the request's own tokens at the measured rate; no work at all: no estimate.
    assert scheduler.wait_estimate_s(100) == pytest.approx(100 / rate)
    assert scheduler.wait_estimate_s(0) is None
    hold.clear()
    running = asyncio.ensure_future(scheduler.submit(_rows(16, 100), deadline=loop.time() + 10))
    await asyncio.sleep(0.05)  # the first batch of 8 runs (held), 8 texts are queued
    estimate = scheduler.wait_estimate_s(400)
    assert estimate == pytest.approx((1600 + 400) / rate)
    hold.set()
    await running
    assert scheduler.wait_estimate_s(400) == pytest.approx(400 / scheduler.tokens_per_second)
    await scheduler.close(5)


@pytest.mark.anyio
async def test_an_abandoned_requests_texts_leave_the_queue_at_once() -> None:
    loop = asyncio.get_running_loop()
    hold = threading.Event()
    scheduler = _scheduler(SlowWorker(0.0, hold))
    first = asyncio.ensure_future(scheduler.submit(_rows(16, 10), deadline=loop.time() + 10))
    await asyncio.sleep(0.05)
    assert scheduler.queued_texts == 8  # one batch of 8 held by the worker
    first.cancel()
    await asyncio.sleep(0)
    # Gone from the queue now, not when the (held) worker next looks.
    assert scheduler.queued_texts == 0
    hold.set()
    await scheduler.close(5)


# --- The attack, through both edges of a real core -------------------------------------

MAX_TEXT = "word " * 1638  # 8190 bytes: the largest text the default limits allow
MAX_TEXTS = 64


@pytest.fixture(scope="module")
def small_core(model_dir: Path) -> Iterator[RunningCore]:
    settings = core_settings(
        model_dir,
        max_texts_per_request=MAX_TEXTS,
        max_inflight_requests=2,
        # Two max-size requests: the gate counts their bodies and messages,
        # a little more than their texts (quotes, commas, field tags).
        max_inflight_bytes=2 * MAX_TEXTS * (8192 + 16),
        max_queue_texts=2 * MAX_TEXTS,
        max_queue_tokens=2 * MAX_TEXTS * 256,
        access_log=False,
    )
    running = RunningCore(settings).start()
    yield running
    running.stop()


ATTACKERS = 16
# Every answer comes at once or from real work: nothing waits out its deadline.
DEADLINE_S = 20.0


def test_a_served_core_exports_its_settings_as_admission_limits(small_core: RunningCore) -> None:
    text = httpx.get(small_core.metrics_url, timeout=5).text
    (family,) = [
        f for f in text_string_to_metric_families(text) if f.name == "tandem_core_admission_limit"
    ]
    limits = {sample.labels["resource"]: sample.value for sample in family.samples}
    settings = small_core.settings
    assert limits == {
        "requests": settings.max_inflight_requests,
        "bytes": settings.max_inflight_bytes,
    }


def test_http_flood_of_max_size_requests_is_429_at_once(small_core: RunningCore) -> None:
    body = {"texts": [MAX_TEXT] * MAX_TEXTS}
    with httpx.Client(base_url=small_core.http_url, timeout=60) as client:

        def send(_: int) -> tuple[int, float, httpx.Response]:
            started = time.monotonic()
            reply = client.post(
                "/v1/embed", json=body, headers={"X-Timeout-Ms": str(int(DEADLINE_S * 1000))}
            )
            return reply.status_code, time.monotonic() - started, reply

        with ThreadPoolExecutor(ATTACKERS) as pool:
            replies = list(pool.map(send, range(ATTACKERS)))
        statuses = [status for status, _, _ in replies]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(429) >= ATTACKERS // 2, statuses
        for status, seconds, reply in replies:
            if status == 429:
                assert seconds < 5, f"a refusal took {seconds:.1f} s: it should come at once"
                assert int(reply.headers["retry-after"]) >= 1
                assert reply.json()["error"]["code"] == "overloaded"
                assert reply.json()["error"]["type"] == "rate_limit_error"
        assert client.post("/v1/embed", json={"texts": ["after the flood"]}).status_code == 200


def test_grpc_flood_of_max_size_requests_is_resource_exhausted_at_once(
    small_core: RunningCore,
) -> None:
    request = pb.EmbedRequest(texts=[MAX_TEXT] * MAX_TEXTS)
    with grpc.insecure_channel(small_core.grpc_target) as channel:
        stub = pb_grpc.EmbeddingServiceStub(channel)

        def send(_: int) -> tuple[grpc.StatusCode, float]:
            started = time.monotonic()
            try:
                stub.Embed(request, timeout=DEADLINE_S)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            return code, time.monotonic() - started

        with ThreadPoolExecutor(ATTACKERS) as pool:
            replies = list(pool.map(send, range(ATTACKERS)))
        codes = [code for code, _ in replies]
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= ATTACKERS // 2, codes
        assert all(s < 5 for c, s in replies if c is grpc.StatusCode.RESOURCE_EXHAUSTED)
        reply = stub.Embed(pb.EmbedRequest(texts=["after the flood"]), timeout=30)
        assert len(reply.embeddings) == 1


def test_a_request_that_cannot_make_its_deadline_is_refused_not_timed_out(
    small_core: RunningCore,
) -> None:
    """Behind a max-size request, a 200 ms deadline is refused at once (429), not 504."""
    big = {"texts": [MAX_TEXT] * MAX_TEXTS}
    with httpx.Client(base_url=small_core.http_url, timeout=60) as client:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(client.post, "/v1/embed", json=big)
            time.sleep(0.5)  # tokenized and queued: the pool is busy with it
            started = time.monotonic()
            reply = client.post("/v1/embed", json=big, headers={"X-Timeout-Ms": "200"})
            assert reply.status_code == 429, reply.text
            assert time.monotonic() - started < 0.2
            assert "deadline" in reply.json()["error"]["message"]
            assert running.result().status_code == 200
        metrics = httpx.get(small_core.metrics_url).text
        assert 'tandem_core_admission_refused_requests_total{reason="deadline"}' in metrics


# --- Admission comes before parsing: a refused call costs its raw bytes only ------------


@contextlib.contextmanager
def _bodies_held_open(core: RunningCore, count: int) -> Iterator[None]:
    """``count`` POST /v1/embed whose bodies never arrive: each holds an admission place.

    The place is taken from Content-Length before the body is read
    (http_api/admission.py), so these fill the gate without sending a byte
    of text: the gate is full, deterministically, for as long as they stay open.
    """
    address = urlsplit(core.http_url)
    sockets = []
    try:
        for _ in range(count):
            held = socket.create_connection((address.hostname, address.port), timeout=10)
            sockets.append(held)
            held.sendall(
                b"POST /v1/embed HTTP/1.1\r\nHost: core\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            )
        deadline = time.monotonic() + 10
        while (
            "tandem_core_admitted_requests " + f"{count}.0" not in httpx.get(core.metrics_url).text
        ):
            assert time.monotonic() < deadline, "the held bodies were not admitted"
            time.sleep(0.02)
        yield
    finally:
        for held in sockets:
            held.close()


def test_at_capacity_calls_are_refused_before_they_are_parsed(small_core: RunningCore) -> None:
    """With the gate full, malformed calls get RESOURCE_EXHAUSTED / 429, not a parse error:
    refusal comes before parsing. Health and readiness are still answered."""
    not_utf8 = bytes([1 << 3 | 2, 5]) + b"abc\xff\xfe"  # texts[0] with invalid UTF-8
    with (
        grpc.insecure_channel(small_core.grpc_target) as channel,
        _bodies_held_open(small_core, small_core.settings.max_inflight_requests),
    ):
        raw_embed = channel.unary_unary(
            "/tandem.contract.v1.EmbeddingService/Embed",
            request_serializer=lambda raw: raw,
            response_deserializer=pb.EmbedResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as refused:
            raw_embed(not_utf8, timeout=10)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
        with httpx.Client(base_url=small_core.http_url, timeout=10) as client:
            reply = client.post(
                "/v1/embed", content=b'{"texts": [', headers={"Content-Type": "application/json"}
            )
            assert reply.status_code == 429, reply.text
            assert reply.json()["error"]["code"] == "overloaded"
            assert int(reply.headers["retry-after"]) >= 1
            assert client.get("/readyz").status_code == 200
            assert client.get("/healthz").status_code == 200
            assert client.get("/v1/model").status_code == 200
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    # The places are released with the connections: the same bad call is now parsed.
    deadline = time.monotonic() + 10
    while True:
        code = grpc.StatusCode.OK
        with grpc.insecure_channel(small_core.grpc_target) as channel:
            try:
                channel.unary_unary(
                    "/tandem.contract.v1.EmbeddingService/Embed",
                    request_serializer=lambda raw: raw,
                    response_deserializer=pb.EmbedResponse.FromString,
                )(not_utf8, timeout=10)
            except grpc.RpcError as exc:
                code = exc.code()
        if code is grpc.StatusCode.INVALID_ARGUMENT or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    reply = httpx.post(f"{small_core.http_url}/v1/embed", json={"texts": ["after"]}, timeout=30)
    assert reply.status_code == 200
