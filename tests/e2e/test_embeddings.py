"""The happy path as a user sees it: OpenAI-style requests through the gateway."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from .conftest import Stack

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=30)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_reference_vectors_through_the_gateway(
    client: httpx.Client, reference: dict[str, Any]
) -> None:
    items = reference["items"]
    reply = client.post(
        "/v1/embeddings", json={"model": MODEL, "input": [i["text"] for i in items]}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "list"
    assert body["model"] == MODEL
    assert [d["index"] for d in body["data"]] == list(range(len(items)))
    for item, data in zip(items, body["data"], strict=True):
        assert data["object"] == "embedding"
        assert _cosine(np.array(data["embedding"]), np.array(item["embedding"])) >= 0.9999
        assert data.get("truncated", False) == (item["tokens_after_truncation"] == 256)
    tokens = sum(i["tokens_after_truncation"] for i in items)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_single_string_input_and_alias(client: httpx.Client) -> None:
    reply = client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "hello"})
    assert reply.status_code == 200, reply.text
    (data,) = reply.json()["data"]
    assert len(data["embedding"]) == 384
    assert abs(np.linalg.norm(data["embedding"]) - 1) < 1e-4


def test_base64_is_little_endian_float32_of_the_same_vector(client: httpx.Client) -> None:
    texts = ["base64 please", "and another"]
    floats = client.post("/v1/embeddings", json={"model": MODEL, "input": texts}).json()
    packed = client.post(
        "/v1/embeddings", json={"model": MODEL, "input": texts, "encoding_format": "base64"}
    ).json()
    for f, p in zip(floats["data"], packed["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(p["embedding"]), dtype="<f4")
        assert np.allclose(decoded, np.array(f["embedding"], dtype=np.float32), atol=1e-7)


def test_official_openai_client(stack: Stack, reference: dict[str, Any]) -> None:
    """The official client sends encoding_format=base64 by default and decodes it."""
    client = openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key="unused", max_retries=0)
    item = reference["items"][0]
    reply = client.embeddings.create(model=MODEL, input=[item["text"], "second"], dimensions=384)
    assert len(reply.data) == 2
    assert _cosine(np.array(reply.data[0].embedding), np.array(item["embedding"])) >= 0.9999
    assert reply.usage.prompt_tokens == item["tokens_after_truncation"] + 3
    models = client.models.list()
    # Listed under its pool's name, with the core's full id among its aliases.
    assert MODEL in [
        name for m in models.data for name in [m.id, *(m.model_extra or {})["aliases"]]
    ]


def test_long_text_is_truncated_and_reported(client: httpx.Client) -> None:
    reply = client.post("/v1/embeddings", json={"model": MODEL, "input": ["word " * 400, "short"]})
    assert reply.status_code == 200
    first, second = reply.json()["data"]
    assert first["truncated"] is True
    assert "truncated" not in second or second["truncated"] is False
    assert reply.json()["usage"]["prompt_tokens"] == 256 + 3


def test_models_list(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    # Listed under its pool's name, with the core's full id among its aliases.
    assert MODEL in [name for m in body["data"] for name in [m["id"], *m["aliases"]]]


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_request_id_crosses_the_language_boundary(client: httpx.Client, stack: Stack) -> None:
    reply = client.post(
        "/v1/embeddings",
        json={"model": MODEL, "input": "trace me"},
        headers={"X-Request-Id": "e2e-request-123"},
    )
    assert reply.headers["x-request-id"] == "e2e-request-123"
    core_log = Path(stack.core.log_path).read_text()
    assert '"request_id": "e2e-request-123"' in core_log or "e2e-request-123" in core_log


def test_server_timing_splits_the_time(client: httpx.Client) -> None:
    reply = client.post("/v1/embeddings", json={"model": MODEL, "input": "where did time go"})
    timing = reply.headers["server-timing"]
    for stage in ("gateway", "tokenize", "queue", "inference"):
        assert f"{stage};dur=" in timing, timing
