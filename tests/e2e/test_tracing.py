"""One trace from the gateway's HTTP span to the core's batch inference.

A real gateway and a real core export over OTLP/gRPC to a real receiver; the
tests check the shape of what arrives: span names, parent/child edges across
the language boundary, the batch spans' links to every request they carried,
and that health checks make no spans.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc
from tandem_devkit.otlp_receiver import OtlpReceiver, ReceivedSpan, in_trace
from tandem_devkit.stack import ManagedProcess, StackPorts, core_process, gateway_process
from tandem_devkit.trace_shape import (
    CORE_SERVER_SPAN,
    GATEWAY_SERVER_SPAN,
    assert_request_chain,
    batches_linking,
    one_span,
)

MODEL = "all-MiniLM-L6-v2"


class TracedStack:
    def __init__(
        self,
        receiver: OtlpReceiver,
        ports: StackPorts,
        core: ManagedProcess,
        gateway: ManagedProcess,
    ) -> None:
        self.receiver = receiver
        self.ports = ports
        self.core = core
        self.gateway = gateway
        self.gateway_url = f"http://127.0.0.1:{ports.gateway_http}"
        self.core_url = f"http://127.0.0.1:{ports.core_http}"


@pytest.fixture(scope="module")
def traced(gateway_bin: Path, log_dir: Path) -> Iterator[TracedStack]:
    with OtlpReceiver() as receiver:
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # flush every 100 ms, so tests wait little
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e",
        }
        ports = StackPorts.free()
        core = core_process(ports, log_dir / "traced", env=otel).start()
        gateway = None
        try:
            core.wait_ready(120)
            gateway = gateway_process(gateway_bin, ports, log_dir / "traced", env=otel).start()
            gateway.wait_ready(60)
            yield TracedStack(receiver, ports, core, gateway)
        finally:
            if gateway is not None:
                gateway.stop()
            core.stop()


def _embed(
    stack: TracedStack, texts: list[str] | str, headers: dict[str, str] | None = None
) -> httpx.Response:
    reply = httpx.post(
        f"{stack.gateway_url}/v1/embeddings",
        json={"model": MODEL, "input": texts},
        headers=headers or {},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply


def _trace_id(reply: httpx.Response) -> str:
    trace_id = reply.headers["x-trace-id"]
    assert len(trace_id) == 32
    return trace_id


def _complete(trace_id: str, batches: int = 1) -> callable:  # type: ignore[valid-type]
    """A trace is complete when both server spans and the core's stage spans arrived."""

    def done(spans: list[ReceivedSpan]) -> bool:
        names = [s.name for s in in_trace(spans, trace_id)]
        linked = [
            s for s in spans if s.name == "tandem.batch" and any(t == trace_id for t, _ in s.links)
        ]
        return (
            GATEWAY_SERVER_SPAN in names
            and CORE_SERVER_SPAN in names
            and "tandem.inference" in names
            and len(linked) >= batches
        )

    return done


def test_single_request_is_one_trace_across_both_services(traced: TracedStack) -> None:
    reply = _embed(traced, "trace one sentence")
    trace_id = _trace_id(reply)
    spans = traced.receiver.wait_for(_complete(trace_id))
    core_server = assert_request_chain(spans, trace_id)
    (batch,) = batches_linking(spans, trace_id, core_server.span_id)
    assert batch.trace_id != trace_id  # a batch is its own trace, linked to its requests
    assert batch.attributes["tandem.batch.texts"] >= 1
    assert batch.attributes["tandem.model"] == "sentence-transformers/all-MiniLM-L6-v2"
    for key in (
        "tandem.batch.real_tokens",
        "tandem.batch.padded_tokens",
        "tandem.batch.padding_ratio",
    ):
        assert key in batch.attributes
    assert core_server.attributes["tandem.texts"] == 1
    gateway_server = one_span(spans, trace_id, "tandem-gateway", GATEWAY_SERVER_SPAN)
    assert gateway_server.parent_span_id == ""  # the client sent no traceparent


def test_multi_text_request_links_every_batch_it_used(traced: TracedStack) -> None:
    texts = [
        f"sentence {i} " + "word " * (i * 7) for i in range(40)
    ]  # lengths spread: several batches
    trace_id = _trace_id(_embed(traced, texts))
    spans = traced.receiver.wait_for(_complete(trace_id))
    core_server = assert_request_chain(spans, trace_id)
    batches = batches_linking(spans, trace_id, core_server.span_id)
    assert len(batches) >= 2
    assert sum(int(b.attributes["tandem.batch.texts"]) for b in batches) == 40
    assert core_server.attributes["tandem.texts"] == 40


def test_concurrent_requests_share_batches_and_keep_their_own_traces(traced: TracedStack) -> None:
    # Whether two requests meet in one batch depends on timing: on a loaded
    # 2-CPU machine the 16 client threads can arrive one by one and each find a
    # free worker. Up to three bursts (bounded) give the batcher the chance;
    # every burst must still keep one trace per request, linked to its batches.
    shared: list[ReceivedSpan] = []
    for _ in range(3):
        with ThreadPoolExecutor(16) as pool:
            replies = list(
                pool.map(lambda i: _embed(traced, f"concurrent request number {i}"), range(32))
            )
        trace_ids = [_trace_id(r) for r in replies]
        assert len(set(trace_ids)) == 32  # one trace per request

        def all_arrived(spans: list[ReceivedSpan], ids: list[str] = trace_ids) -> bool:
            return all(_complete(t)(spans) for t in ids)

        spans = traced.receiver.wait_for(all_arrived, timeout_s=30)
        core_spans = {t: assert_request_chain(spans, t) for t in trace_ids}
        for trace_id, core_server in core_spans.items():
            assert batches_linking(spans, trace_id, core_server.span_id), trace_id
        shared = [
            b for b in spans
            if b.name == "tandem.batch" and len({t for t, _ in b.links} & set(trace_ids)) >= 2
        ]  # fmt: skip
        if shared:
            break
    assert shared, "in three bursts of 32 concurrent requests no batch carried texts of two"


def test_client_traceparent_is_continued(traced: TracedStack) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    reply = _embed(
        traced, "continue my trace", headers={"traceparent": f"00-{trace_id}-{parent}-01"}
    )
    assert _trace_id(reply) == trace_id
    spans = traced.receiver.wait_for(_complete(trace_id))
    assert_request_chain(spans, trace_id)
    assert one_span(spans, trace_id, "tandem-gateway", GATEWAY_SERVER_SPAN).parent_span_id == parent


def test_core_continues_a_grpc_callers_trace(traced: TracedStack) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    with grpc.insecure_channel(f"127.0.0.1:{traced.ports.core_grpc}") as channel:
        pb_grpc.EmbeddingServiceStub(channel).Embed(
            pb.EmbedRequest(texts=["direct to the core"]),
            metadata=(("traceparent", f"00-{trace_id}-{parent}-01"),),
            timeout=10,
        )

    def arrived(spans: list[ReceivedSpan]) -> bool:
        return any(s.name == "tandem.inference" for s in in_trace(spans, trace_id))

    spans = traced.receiver.wait_for(arrived)
    core_server = one_span(spans, trace_id, "tandem-core", CORE_SERVER_SPAN)
    assert core_server.parent_span_id == parent


def test_health_checks_make_no_spans(traced: TracedStack) -> None:
    for url in (traced.gateway_url, traced.core_url):
        for path in ("/healthz", "/readyz"):
            assert httpx.get(url + path, timeout=5).status_code == 200
    httpx.get(f"http://127.0.0.1:{traced.ports.core_metrics}/metrics", timeout=5)
    # A request after the probes, so the exporters have flushed past them.
    trace_id = _trace_id(_embed(traced, "after the probes"))
    spans = traced.receiver.wait_for(_complete(trace_id))
    noisy = [
        s for s in spans if any(word in s.name.lower() for word in ("health", "readyz", "metrics"))
    ]
    assert not noisy, noisy


def test_log_lines_carry_the_trace(traced: TracedStack) -> None:
    trace_id = _trace_id(
        _embed(traced, "find me in the logs", headers={"X-Request-Id": "trace-log-1"})
    )
    traced.receiver.wait_for(_complete(trace_id))
    for process in (traced.core, traced.gateway):
        lines = [
            json.loads(line)
            for line in process.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        mine = [line for line in lines if line.get("trace_id") == trace_id]
        assert mine, f"no {process.name} log line with trace_id {trace_id}"
        assert all(len(str(line.get("span_id", ""))) == 16 for line in mine)
