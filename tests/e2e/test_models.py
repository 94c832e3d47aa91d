"""Two models through one gateway: each answered by its own core pool.

The session's stack serves all-MiniLM-L6-v2 (fp32) and all-MiniLM-L6-v2-int8
(int8), one core each, the gateway configured with one pool per model (what
`make run` starts). The last test stops the int8 core with SIGTERM: only
int8 requests fail, with 503, while fp32 keeps serving; then it starts the
int8 core again, so the stack ends as it began and exits cleanly.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tandem_devkit.stack import precision_core

from .conftest import Stack

# int8's agreement with the sentence-transformers reference vectors, measured
# through the gateway on the reference set (docs/your-model.md records the
# figures): min 0.9786, mean 0.9911 over the 20 texts. The bounds sit just
# below, so a change that degrades the quantised model fails here.
INT8_MIN_COSINE = 0.978
INT8_MEAN_COSINE = 0.990


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.gateway_url, timeout=30)


def _embed(client: httpx.Client, model: str, texts: list[str]) -> httpx.Response:
    return client.post("/v1/embeddings", json={"model": model, "input": texts})


def _cosines(body: dict[str, Any], items: list[dict[str, Any]]) -> np.ndarray:
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float64)
    want = np.array([i["embedding"] for i in items], dtype=np.float64)
    return np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))


def test_each_model_answers_with_its_own_vectors(
    client: httpx.Client, stack: Stack, reference: dict[str, Any]
) -> None:
    items = reference["items"]
    texts = [i["text"] for i in items]
    fp32 = _embed(client, stack.models["fp32"], texts)
    int8 = _embed(client, stack.models["int8"], texts)
    assert fp32.status_code == 200, fp32.text
    assert int8.status_code == 200, int8.text
    # Each answer names the model that made it: the cores' own ids differ.
    assert fp32.json()["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert int8.json()["model"] == "sentence-transformers/all-MiniLM-L6-v2-int8"

    fp32_cos, int8_cos = _cosines(fp32.json(), items), _cosines(int8.json(), items)
    print(
        f"cosine to the reference over {len(items)} texts: fp32 min {fp32_cos.min():.5f}, "
        f"int8 min {int8_cos.min():.4f} mean {int8_cos.mean():.4f}"
    )
    assert fp32_cos.min() >= 0.9999
    assert int8_cos.min() >= INT8_MIN_COSINE
    assert int8_cos.mean() >= INT8_MEAN_COSINE
    # Different graphs: had both names reached one pool, the vectors would be equal.
    assert not np.allclose(
        [d["embedding"] for d in fp32.json()["data"]],
        [d["embedding"] for d in int8.json()["data"]],
        atol=1e-4,
    )
    # Same tokenizer, so the same token counts.
    assert fp32.json()["usage"] == int8.json()["usage"]


def test_models_lists_both_with_dimension_and_limits(client: httpx.Client, stack: Stack) -> None:
    reply = client.get("/v1/models")
    assert reply.status_code == 200, reply.text
    listed = {m["id"]: m for m in reply.json()["data"]}
    assert set(listed) == set(stack.models.values())
    for precision, model in stack.models.items():
        entry = listed[model]
        assert (entry["dimension"], entry["max_tokens"], entry["precision"]) == (
            384,
            256,
            precision,
        )
        assert entry["max_inputs"] > 0
        assert entry["max_text_bytes"] > 0
        assert entry["ready"] is True
        # The core's full id routes too, and is listed as an alias.
        assert entry["aliases"]
        for alias in entry["aliases"]:
            assert _embed(client, alias, ["alias"]).status_code == 200


def test_an_unknown_model_is_404(client: httpx.Client) -> None:
    start = time.monotonic()
    reply = _embed(client, "all-MiniLM-L6-v2-fp16", ["x"])
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"]["code"] == "model_not_found"
    assert reply.json()["error"]["param"] == "model"
    assert time.monotonic() - start < 2
    assert client.get("/v1/models/all-MiniLM-L6-v2-fp16").status_code == 404


def test_readiness_reports_each_model(client: httpx.Client, stack: Stack) -> None:
    reply = client.get("/readyz")
    assert reply.status_code == 200
    assert reply.json()["models"] == [
        {"model": stack.models[p], "status": "ready"} for p in ("fp32", "int8")
    ]


def _ready_gauge(stack: Stack, model: str) -> float | None:
    text = httpx.get(f"http://127.0.0.1:{stack.ports.gateway_admin}/metrics", timeout=5).text
    match = re.search(
        rf'^tandem_gateway_upstream_ready\{{model="{re.escape(model)}"\}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else None


def test_stopping_one_models_core_fails_only_that_model(
    client: httpx.Client, stack: Stack, log_dir: Path
) -> None:
    fp32, int8 = stack.models["fp32"], stack.models["int8"]
    core = stack.cores["int8"]
    assert core.process is not None
    core.terminate()  # SIGTERM: the core drains, then exits

    # Bounded: until int8 is refused (at most 60 s, 600 rounds), fp32 must keep answering.
    deadline, rounds, int8_status = time.monotonic() + 60, 0, 200
    while int8_status != 503 and time.monotonic() < deadline and rounds < 600:
        rounds += 1
        assert _embed(client, fp32, ["still here"]).status_code == 200
        int8_status = _embed(client, int8, ["gone?"]).status_code
        assert int8_status in {200, 503}, f"int8 during its core's drain: {int8_status}"
        time.sleep(0.1)
    assert int8_status == 503, f"int8 still answered {int8_status} after {rounds} rounds"
    assert core.wait(60) == 0, f"the int8 core did not exit cleanly:\n{core.tail()}"

    # Now down for good: every int8 request is a 503 in the error shape, every fp32 one a 200.
    for _ in range(5):
        refused = _embed(client, int8, ["gone"])
        assert refused.status_code == 503, refused.text
        assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
        assert _embed(client, fp32, ["here"]).status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == [
        {"model": fp32, "status": "ready"},
        {"model": int8, "status": "not_ready"},
    ]
    assert (_ready_gauge(stack, fp32), _ready_gauge(stack, int8)) == (1.0, 0.0)
    listed = {m["id"]: m["ready"] for m in client.get("/v1/models").json()["data"]}
    assert listed == {fp32: True, int8: False}

    # Start it again on the same ports: the gateway finds it without a restart.
    stack.cores["int8"] = precision_core("int8", stack.core_ports["int8"], log_dir, env={}).start()
    stack.cores["int8"].wait_ready(180)
    deadline, rounds, int8_status = time.monotonic() + 30, 0, 503
    while int8_status != 200 and time.monotonic() < deadline and rounds < 300:
        rounds += 1
        int8_status = _embed(client, int8, ["back"]).status_code
        time.sleep(0.1)
    assert int8_status == 200, f"int8 not served again after {rounds} rounds"
