"""The shape every traced request must have, checked by tests/e2e and tests/k8s alike.

gateway HTTP server span -> gateway gRPC client span -> core gRPC server span
-> the core's stage spans (tokenize, queue, inference). Batches are their own
traces, linked to the server spans of the requests whose texts they carried.
"""

from __future__ import annotations

from tandem_devkit.otlp_receiver import ReceivedSpan, in_trace

CORE_SERVER_SPAN = "/tandem.contract.v1.EmbeddingService/Embed"
GATEWAY_SERVER_SPAN = "POST /v1/embeddings"
CORE_STAGES = ("tandem.tokenize", "tandem.queue", "tandem.inference")


def one_span(spans: list[ReceivedSpan], trace_id: str, service: str, name: str) -> ReceivedSpan:
    """The single span of ``service`` named ``name`` in the trace (fails on 0 or 2+)."""
    found = [s for s in in_trace(spans, trace_id) if s.service == service and s.name == name]
    assert len(found) == 1, f"{service}:{name} in {trace_id}: {found}"
    return found[0]


def assert_request_chain(spans: list[ReceivedSpan], trace_id: str) -> ReceivedSpan:
    """Check the parent/child chain across both services; return the core's server span."""
    gateway_server = one_span(spans, trace_id, "tandem-gateway", GATEWAY_SERVER_SPAN)
    assert gateway_server.kind == "server"
    clients = [
        s for s in in_trace(spans, trace_id)
        if s.service == "tandem-gateway" and s.kind == "client"
        and s.parent_span_id == gateway_server.span_id
    ]  # fmt: skip
    assert clients, "no gateway gRPC client span under the HTTP server span"
    core_server = one_span(spans, trace_id, "tandem-core", CORE_SERVER_SPAN)
    assert core_server.kind == "server"
    assert core_server.parent_span_id in {c.span_id for c in clients}
    for stage in CORE_STAGES:
        assert one_span(spans, trace_id, "tandem-core", stage).parent_span_id == core_server.span_id
    return core_server


def batches_linking(spans: list[ReceivedSpan], trace_id: str, span_id: str) -> list[ReceivedSpan]:
    """The batch spans linked to one request's server span."""
    return [s for s in spans if s.name == "tandem.batch" and (trace_id, span_id) in s.links]
