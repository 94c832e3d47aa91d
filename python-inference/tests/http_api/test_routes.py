"""The HTTP edge against a real core (real model, real port on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from support import RunningCore


@pytest.fixture(scope="module")
def client(core: RunningCore) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=core.http_url, timeout=30) as c:
        yield c


def _embed_ok(client: httpx.Client) -> None:
    reply = client.post("/v1/embed", json={"texts": ["the next request works"]})
    assert reply.status_code == 200, reply.text


def test_embed_matches_reference(client: httpx.Client, reference: dict[str, Any]) -> None:
    items = reference["items"]
    reply = client.post("/v1/embed", json={"texts": [i["text"] for i in items]})
    assert reply.status_code == 200
    body = reply.json()
    for item, emb in zip(items, body["embeddings"], strict=True):
        want = np.array(item["embedding"])
        assert np.array(emb["values"]) @ want / np.linalg.norm(want) >= 0.9999
        assert emb["token_count"] == item["tokens_after_truncation"]
    assert "inference;dur=" in reply.headers["server-timing"]


def test_request_id_is_taken_from_the_caller(client: httpx.Client) -> None:
    reply = client.post("/v1/embed", json={"texts": ["id"]}, headers={"X-Request-Id": "req-42"})
    assert reply.headers["x-request-id"] == "req-42"
    generated = client.post(
        "/v1/embed", json={"texts": ["id"]}, headers={"X-Request-Id": "bad id!"}
    )
    assert generated.headers["x-request-id"] != "bad id!"


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"texts": []}, 400, "invalid_input", "texts"),
        ({"texts": [""]}, 400, "invalid_input", "texts[0]"),
        ({"texts": ["ok", 3]}, 400, "invalid_input", "texts[1]"),
        ({"texts": "not a list"}, 400, "invalid_input", "texts"),
        ({"texts": ["x"] * 257}, 400, "too_many_texts", "texts"),
        ({"texts": ["é" * 5000]}, 400, "text_too_large", "texts[0]"),
        ({"texts": ["word " * 300], "truncate": False}, 400, "context_length_exceeded", "texts[0]"),
        ({"texts": ["x"], "model": "text-embedding-3-small"}, 404, "model_not_found", "model"),
        ({"texts": ["x"], "normalise": True}, 400, "invalid_input", "normalise"),
        ({"texts": ["x"], "normalize": "yes"}, 400, "invalid_input", "normalize"),
        ({}, 400, "invalid_input", "texts"),
    ],
)
def test_bad_json_input(
    client: httpx.Client, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    reply = client.post("/v1/embed", json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert error["message"]
    assert error["type"] == "invalid_request_error"
    _embed_ok(client)


def test_lone_surrogate_is_rejected(client: httpx.Client) -> None:
    reply = client.post(
        "/v1/embed",
        content=b'{"texts": ["ok", "\\ud800"]}',
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "texts[1]"
    _embed_ok(client)


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        (b'{"texts": ["abc\xff\xfe"]}', "invalid_utf8", "texts[0]"),
        (b'{"texts": ["ok", "caf\xc3"]}', "invalid_utf8", "texts[1]"),  # truncated sequence
        (b'{"texts": ["ok"], "model": "mini\xffLM"}', "invalid_utf8", "model"),
        (b'{"texts": ["ok"], "mod\xffel": "x"}', "invalid_utf8", "body"),  # in a key
        (b'{"texts": ["ok"]}\xff', "invalid_utf8", None),  # outside any string
        # An encoded surrogate: Python's json decodes it ("surrogatepass") to
        # a lone surrogate, which the service refuses as not valid Unicode.
        (b'{"texts": ["ok", "\xed\xa0\x80"]}', "invalid_input", "texts[1]"),
    ],
)
def test_invalid_utf8_is_refused_naming_the_field(
    client: httpx.Client, content: bytes, code: str, param: str | None
) -> None:
    # Never replaced by U+FFFD and embedded: a different text than was sent.
    reply = client.post("/v1/embed", content=content, headers={"content-type": "application/json"})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    assert "UTF-8" in error["message"] or "Unicode" in error["message"]
    _embed_ok(client)


def test_the_largest_body_with_invalid_utf8_is_refused_quickly(client: httpx.Client) -> None:
    # The attacker's version: a body at the size limit, 256 texts of 8 KiB,
    # the bad byte in the last one (the whole body is searched for it).
    texts = [b'"' + b"a" * 8191 + b'"'] * 255 + [b'"' + b"a" * 8190 + b'\xff"']
    content = b'{"texts": [' + b",".join(texts) + b"]}"
    assert len(content) < 4 << 20
    reply = client.post(
        "/v1/embed", content=content, headers={"content-type": "application/json"}, timeout=30
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == "texts[255]"
    assert reply.elapsed.total_seconds() < 5
    _embed_ok(client)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"texts": ["a"', "application/json", 400, "invalid_json"),
        (b'{"texts": ["a"]} trailing', "application/json", 400, "invalid_json"),
        (b'{"texts": ["a"]}', "text/plain", 415, "unsupported_media_type"),
        (b'{"texts": ["a"]}', "", 415, "unsupported_media_type"),
        (b'{"texts": ["' + b"a" * (5 << 20) + b'"]}', "application/json", 413, "body_too_large"),
    ],
)
def test_malformed_bodies(
    client: httpx.Client, content: bytes, content_type: str, status: int, code: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    reply = client.post("/v1/embed", content=content, headers=headers)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code
    _embed_ok(client)


def test_streamed_body_over_the_limit_is_cut_off(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(80):
            yield b"b" * 65536
        yield b'"]}'

    reply = client.post("/v1/embed", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413
    _embed_ok(client)


def test_unknown_route_and_method_use_the_error_shape(client: httpx.Client) -> None:
    assert client.get("/v2/nothing").json()["error"]["code"] == "not_found"
    reply = client.get("/v1/embed")
    assert reply.status_code == 405
    assert reply.json()["error"]["code"] == "method_not_allowed"


def test_health_readiness_model_and_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "reason": None}
    assert client.get("/readyz").json()["status"] == "ready"
    model = client.get("/v1/model").json()
    assert (model["dimension"], model["max_tokens"]) == (384, 256)
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/embed", "/healthz", "/readyz"} <= set(paths)


def test_metrics_expose_the_time_split(client: httpx.Client, core: RunningCore) -> None:
    _embed_ok(client)
    text = httpx.get(core.metrics_url, timeout=5).text
    for name in (
        "tandem_core_requests_total",
        "tandem_core_queue_wait_seconds_bucket",
        "tandem_core_tokenize_seconds_bucket",
        "tandem_core_inference_seconds_bucket",
        "tandem_core_batch_texts_bucket",
        "tandem_core_event_loop_lag_seconds_bucket",
        "tandem_core_model_info",
        "tandem_core_ready 1.0",
    ):
        assert name in text, name
