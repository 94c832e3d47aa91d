"""The gRPC edge against a real core (real model, real port on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from support import RunningCore, core_settings

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def channel(core: RunningCore) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(core.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.EmbeddingServiceStub:
    return pb_grpc.EmbeddingServiceStub(channel)


def _error(call: Any) -> tuple[grpc.StatusCode, int | None, str | None]:
    """(code, ErrorInfo.reason as an ErrorReason, BadRequest field) of a failed call.

    Also checks what every error must hold: an ErrorInfo in the service's
    domain whose reason is an ErrorReason name, and a violation description
    that does not repeat the field (the status message does).
    """
    status = rpc_status.from_call(call)
    reason = field = None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "tandem.contract.v1.EmbeddingService", info
            reason = pb.ErrorReason.Value(info.reason)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violation = bad.field_violations[0]
            field = violation.field
            assert not violation.description.startswith(field), violation
            assert call.details() == f"{field} {violation.description}"
    return call.code(), reason, field


def test_embed_matches_reference(
    stub: pb_grpc.EmbeddingServiceStub, reference: dict[str, Any]
) -> None:
    items = reference["items"]
    reply = stub.Embed(pb.EmbedRequest(texts=[i["text"] for i in items]), timeout=30)
    assert reply.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(reply.embeddings) == len(items)
    for item, emb in zip(items, reply.embeddings, strict=True):
        got = np.array(emb.values)
        want = np.array(item["embedding"])
        assert got @ want / np.linalg.norm(want) >= 0.9999
        assert emb.token_count == item["tokens_after_truncation"]
        assert emb.truncated == (item["tokens_after_truncation"] == 256)
    assert reply.total_tokens == sum(i["tokens_after_truncation"] for i in items)


def test_normalize_false_returns_the_raw_mean(stub: pb_grpc.EmbeddingServiceStub) -> None:
    raw = stub.Embed(pb.EmbedRequest(texts=["hello"], normalize=False), timeout=10)
    unit = stub.Embed(pb.EmbedRequest(texts=["hello"]), timeout=10)
    raw_vec, unit_vec = np.array(raw.embeddings[0].values), np.array(unit.embeddings[0].values)
    assert abs(np.linalg.norm(unit_vec) - 1) < 1e-5
    assert abs(np.linalg.norm(raw_vec) - 1) > 0.01
    assert np.allclose(raw_vec / np.linalg.norm(raw_vec), unit_vec, atol=1e-5)


def test_model_info_and_alias(stub: pb_grpc.EmbeddingServiceStub) -> None:
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5)
    assert (info.dimension, info.max_tokens, info.precision) == (384, 256, "fp32")
    assert stub.Embed(pb.EmbedRequest(texts=["x"], model=info.aliases[0]), timeout=10).embeddings


def test_an_int8_core_reports_and_accepts_only_its_own_names(model_dir: Path) -> None:
    """One model per precision: what the gateway's pools route by (docs/gateway.md)."""
    core = RunningCore(core_settings(model_dir, precision="int8", workers=1)).start()
    try:
        with grpc.insecure_channel(core.grpc_target) as ch:
            int8 = pb_grpc.EmbeddingServiceStub(ch)
            info = int8.GetModelInfo(pb.GetModelInfoRequest(), timeout=5)
            assert (info.model_id, tuple(info.aliases), info.precision) == (
                "sentence-transformers/all-MiniLM-L6-v2-int8",
                ("all-MiniLM-L6-v2-int8",),
                "int8",
            )
            reply = int8.Embed(
                pb.EmbedRequest(texts=["x"], model="all-MiniLM-L6-v2-int8"), timeout=10
            )
            assert reply.model == info.model_id
            with pytest.raises(grpc.RpcError) as err:
                int8.Embed(pb.EmbedRequest(texts=["x"], model="all-MiniLM-L6-v2"), timeout=10)
            assert _error(err.value)[:2] == (
                grpc.StatusCode.NOT_FOUND,
                pb.ERROR_REASON_MODEL_NOT_FOUND,
            )
        http_info = httpx.get(f"{core.http_url}/v1/model", timeout=5).json()
        assert (http_info["model_id"], http_info["aliases"]) == (
            info.model_id,
            ["all-MiniLM-L6-v2-int8"],
        )
    finally:
        core.stop()


def test_server_timing_trailer(stub: pb_grpc.EmbeddingServiceStub) -> None:
    _, call = stub.Embed.with_call(pb.EmbedRequest(texts=["timing"]), timeout=10)
    timing = dict(call.trailing_metadata())["server-timing"]
    for stage in ("tokenize", "queue", "inference"):
        assert f"{stage};dur=" in timing


@pytest.mark.parametrize(
    ("request_kwargs", "code", "reason", "field"),
    [
        ({"texts": []}, grpc.StatusCode.INVALID_ARGUMENT, pb.ERROR_REASON_INVALID_INPUT, "texts"),
        (
            {"texts": ["ok", ""]},
            grpc.StatusCode.INVALID_ARGUMENT,
            pb.ERROR_REASON_INVALID_INPUT,
            "texts[1]",
        ),
        (
            {"texts": ["x"] * 257},
            grpc.StatusCode.INVALID_ARGUMENT,
            pb.ERROR_REASON_TOO_MANY_TEXTS,
            "texts",
        ),
        (
            {"texts": ["ab" * 5000]},
            grpc.StatusCode.INVALID_ARGUMENT,
            pb.ERROR_REASON_TEXT_TOO_LARGE,
            "texts[0]",
        ),
        (
            {"texts": ["fine", "word " * 300], "truncation": pb.TRUNCATION_POLICY_REJECT},
            grpc.StatusCode.INVALID_ARGUMENT,
            pb.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED,
            "texts[1]",
        ),
        (
            {"texts": ["x"], "model": "gpt-4"},
            grpc.StatusCode.NOT_FOUND,
            pb.ERROR_REASON_MODEL_NOT_FOUND,
            "model",
        ),
    ],
)
def test_bad_input_gets_a_precise_error_and_the_next_call_works(
    stub: pb_grpc.EmbeddingServiceStub,
    request_kwargs: dict[str, Any],
    code: grpc.StatusCode,
    reason: int,
    field: str,
) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        stub.Embed(pb.EmbedRequest(**request_kwargs), timeout=10)
    assert _error(failed.value) == (code, reason, field)
    assert stub.Embed(pb.EmbedRequest(texts=["still fine"]), timeout=10).embeddings


def test_truncation_is_reported(stub: pb_grpc.EmbeddingServiceStub) -> None:
    reply = stub.Embed(pb.EmbedRequest(texts=["word " * 300, "short"]), timeout=10)
    assert [e.truncated for e in reply.embeddings] == [True, False]
    assert [e.token_count for e in reply.embeddings] == [256, 3]


def test_message_over_the_size_limit_is_refused(stub: pb_grpc.EmbeddingServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        stub.Embed(pb.EmbedRequest(texts=["y" * 8000] * 600), timeout=10)
    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.Embed(pb.EmbedRequest(texts=["after"]), timeout=10).embeddings


def test_an_already_tiny_deadline_is_answered_deadline_exceeded(
    stub: pb_grpc.EmbeddingServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        stub.Embed(pb.EmbedRequest(texts=["late"] * 200), timeout=0.001)
    # Passed before admission: DEADLINE_EXCEEDED. Still a fraction of a
    # millisecond left, against a measured rate that needs more for 200
    # texts: refused at once as RESOURCE_EXHAUSTED (admission.py). Never run.
    assert failed.value.code() in (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )


@pytest.mark.parametrize("service", ["", "tandem.contract.v1.EmbeddingService", "liveness"])
def test_health_services_report_serving(channel: grpc.Channel, service: str) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_unknown_health_service_is_not_found(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as failed:
        health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND


def _raw_embed(channel: grpc.Channel) -> Any:
    """Embed with a hand-encoded request: lets a test put any bytes on the wire."""
    return channel.unary_unary(
        "/tandem.contract.v1.EmbeddingService/Embed",
        request_serializer=lambda raw: raw,
        response_deserializer=pb.EmbedResponse.FromString,
    )


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field (payloads under 128 bytes)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (_field(1, b"ok") + _field(1, b"abc\xff\xfe"), "texts[1]"),
        (_field(1, b"\xc3"), "texts[0]"),  # a truncated two-byte sequence
        (_field(1, b"\xed\xa0\x80"), "texts[0]"),  # an encoded surrogate (CESU-8)
        (_field(1, b"ok") + _field(2, b"mini\xffLM"), "model"),
    ],
)
def test_invalid_utf8_is_invalid_argument_naming_the_field(
    channel: grpc.Channel, stub: pb_grpc.EmbeddingServiceStub, raw: bytes, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        _raw_embed(channel)(raw, timeout=10)
    assert _error(failed.value) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        pb.ERROR_REASON_INVALID_UTF8,
        field,
    )
    assert "UTF-8" in str(failed.value.details())
    assert stub.Embed(pb.EmbedRequest(texts=["after"]), timeout=10).embeddings


def test_a_message_that_is_not_protobuf_is_invalid_argument(
    channel: grpc.Channel, stub: pb_grpc.EmbeddingServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        _raw_embed(channel)(b"\x0a\x7fshort", timeout=10)  # a length past the end
    assert _error(failed.value) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        pb.ERROR_REASON_INVALID_MESSAGE,
        None,
    )
    assert stub.Embed(pb.EmbedRequest(texts=["after"]), timeout=10).embeddings


def test_hand_encoded_valid_request_is_served(channel: grpc.Channel) -> None:
    # The raw path above is the real wire format: the same bytes, valid, embed.
    reply = _raw_embed(channel)(_field(1, "naïve café".encode()), timeout=10)
    assert len(reply.embeddings) == 1
