"""The `helm test` pod: what it runs, and that its check can pass and fail.

The pod's script is run here against a stand-in gateway on 127.0.0.1 that
answers like the real one, then like broken ones. The real gateway and core
run it in `make images-smoke` (containers) and `make deploy` (`helm test`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import NAMESPACE, render, scenario

# The default release's models (values.yaml `models`), one per core pool.
MODELS = ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2-int8")

# (texts, request headers) -> (status, JSON body)
Answer = Callable[[list[str], dict[str, str]], tuple[int, dict[str, Any]]]


def the_pod() -> dict[str, Any]:
    pod: dict[str, Any] = render().one("Pod", "tandem-test-embeddings")
    return pod


def test_pod_is_a_test_hook_on_the_core_image() -> None:
    pod = the_pod()
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["image"] == render().container("core")["image"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert 0 < pod["spec"]["activeDeadlineSeconds"] <= 300
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GATEWAY_URL"] == f"http://tandem-gateway.{NAMESPACE}.svc:8080"
    # Every pool's model is asked, so the test goes through every pool.
    assert env["MODELS"] == ",".join(MODELS)


def test_pod_reads_the_api_key_when_auth_is_on() -> None:
    pod = render(scenario("networkpolicy")).one("Pod", "tandem-test-embeddings")
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["API_KEYS_FILE"] == "/etc/tandem/api-keys/api-keys"
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "tandem-api-keys"


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def embedding(texts: list[str], dimension: int = 384) -> list[list[float]]:
    """Vectors shaped like the model's: the two cat sentences close, the third far."""
    base = [1.0] + [0.0] * (dimension - 1)
    near = [0.9, 0.1] + [0.0] * (dimension - 2)
    far = [0.0, 0.0, 1.0] + [0.0] * (dimension - 3)
    return [unit(v) for v in (base, near, far)][: len(texts)]


def openai_answer(vectors: list[list[float]]) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": "m", "usage": {"prompt_tokens": 12}}


def good(texts: list[str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """What the real gateway answers."""
    return 200, openai_answer(embedding(texts))


@pytest.fixture
def asked() -> list[str]:
    """The models the stand-in gateways were asked for, in order."""
    return []


@pytest.fixture
def gateway(asked: list[str]) -> Iterator[Callable[[Answer], str]]:
    """A stand-in gateway on a free loopback port; returns its URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/v1/embeddings"
                asked.append(body["model"])
                status, payload = answer(body["input"], dict(self.headers))
                if body["model"] not in MODELS:
                    status, payload = 404, {"error": {"code": "model_not_found"}}
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def run_test_script(
    url: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    container = the_pod()["spec"]["containers"][0]
    assert container["command"] == ["python", "-c"]
    env = {
        "PATH": os.environ["PATH"],
        "GATEWAY_URL": url,
        **{e["name"]: e["value"] for e in container["env"] if e["name"] == "MODELS"},
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-c", container["args"][0]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_passes_against_a_gateway_that_answers_right(
    gateway: Callable[[Answer], str], asked: list[str]
) -> None:
    result = run_test_script(gateway(good))
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == list(MODELS)
    assert asked == list(MODELS), "one request per model"


def test_fails_when_one_model_answers_wrong(gateway: Callable[[Answer], str]) -> None:
    """Each model is checked on its own: the second pool failing fails the test."""
    second = MODELS[1]

    def int8_broken(texts: list[str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return 200, openai_answer([unit([1.0] * 384)] * len(texts))

    calls: list[int] = []

    def first_good_then_broken(
        texts: list[str], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        calls.append(1)
        return good(texts, headers) if len(calls) == 1 else int8_broken(texts, headers)

    result = run_test_script(gateway(first_good_then_broken))
    assert result.returncode != 0
    assert f"{second}: cos" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda texts, headers: (200, openai_answer(embedding(texts, 768))), "dimension"),
        (lambda texts, headers: (200, openai_answer([unit([1.0] * 384)] * len(texts))), "cos"),
        (lambda texts, headers: (200, openai_answer(embedding(texts)[:2])), "indices"),
        (lambda texts, headers: (200, openai_answer([[0.5] * 384] * 3)), "norm"),
        (lambda texts, headers: (401, {"error": {"code": "invalid_api_key"}}), "HTTP 401"),
        (lambda texts, headers: (500, {"error": {"code": "internal_error"}}), "HTTP 500"),
    ],
    ids=[
        "wrong-dimension",
        "same-vector-for-everything",
        "missing-item",
        "not-normalised",
        "401",
        "500",
    ],
)
def test_fails_against_a_gateway_that_answers_wrong(
    gateway: Callable[[Answer], str], answer: Answer, reason: str
) -> None:
    result = run_test_script(gateway(answer))
    assert result.returncode != 0
    assert reason in result.stderr + result.stdout


def test_sends_the_first_api_key_from_the_mounted_file(
    gateway: Callable[[Answer], str], tmp_path: Path
) -> None:
    keys = tmp_path / "api-keys"
    keys.write_text("# rotated in January\n\nkey-one\nkey-two\n")

    def needs_key(texts: list[str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if headers.get("Authorization") != "Bearer key-one":
            return 401, {"error": {"code": "invalid_api_key"}}
        return good(texts, headers)

    url = gateway(needs_key)
    assert run_test_script(url, {"API_KEYS_FILE": str(keys)}).returncode == 0
    assert run_test_script(url).returncode != 0
