"""Every kind of bad input gets a clear 4xx in OpenAI's error shape; the next request works."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import Stack

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=30)


def _assert_error(reply: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = reply.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


def _next_request_works(client: httpx.Client) -> None:
    reply = client.post("/v1/embeddings", json={"model": MODEL, "input": "still alive"})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": MODEL, "input": []}, 400, "input"),
        ({"model": MODEL, "input": ""}, 400, "input"),
        ({"model": MODEL, "input": ["ok", ""]}, 400, "input[1]"),
        ({"model": MODEL, "input": ["ok", 42]}, 400, None),
        ({"model": MODEL, "input": [[101, 2023]]}, 400, None),
        ({"model": MODEL, "input": [1, 2, 3]}, 400, None),
        ({"model": MODEL, "input": ["x"] * 257}, 400, "input"),
        ({"model": MODEL, "input": ["y" * 9000]}, 400, "input[0]"),
        ({"model": "gpt-4o", "input": "x"}, 404, "model"),
        ({"input": "x"}, 400, "model"),
        ({"model": MODEL}, 400, "input"),
        ({"model": MODEL, "input": "x", "dimensions": 512}, 400, "dimensions"),
        ({"model": MODEL, "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"model": MODEL, "input": "x", "inputs": "typo"}, 400, None),
    ],
)
def test_bad_json_bodies(
    client: httpx.Client, body: dict[str, Any], status: int, param: str | None
) -> None:
    _assert_error(client.post("/v1/embeddings", json=body), status, param)
    _next_request_works(client)


def test_too_many_tokens_when_truncation_is_refused(client: httpx.Client) -> None:
    reply = client.post(
        "/v1/embeddings",
        json={"model": MODEL, "input": ["fine", "word " * 300], "truncate": False},
    )
    error = _assert_error(reply, 400, "input[1]")
    assert error["code"] == "context_length_exceeded"
    assert "302" in error["message"]  # says how many tokens it had
    _next_request_works(client)


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"model": "all-MiniLM-L6-v2", "input": "x"', {"content-type": "application/json"}, 400),
        (b"not json at all", {"content-type": "application/json"}, 400),
        (
            b'{"model": "all-MiniLM-L6-v2", "input": "x"} {}',
            {"content-type": "application/json"},
            400,
        ),
        (b'{"model": "all-MiniLM-L6-v2", "input": "x"}', {"content-type": "text/plain"}, 415),
        (b"", {"content-type": "application/json"}, 400),
    ],
)
def test_malformed_requests(
    client: httpx.Client, content: bytes, headers: dict[str, str], status: int
) -> None:
    _assert_error(client.post("/v1/embeddings", content=content, headers=headers), status)
    _next_request_works(client)


def test_body_over_the_size_limit(client: httpx.Client) -> None:
    big = b'{"model": "all-MiniLM-L6-v2", "input": ["' + b"z" * (5 << 20) + b'"]}'
    _assert_error(
        client.post("/v1/embeddings", content=big, headers={"content-type": "application/json"}),
        413,
    )
    _next_request_works(client)


def test_wrong_method_and_unknown_route(client: httpx.Client) -> None:
    _assert_error(client.get("/v1/embeddings"), 405)
    _assert_error(client.get("/v1/nothing-here"), 404)
    _next_request_works(client)
