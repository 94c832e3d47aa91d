"""NOTES.txt tells a user how to reach the gateway and prints a curl that works.

The curl itself is run against real containers by `make images-smoke`.
"""

from __future__ import annotations

import re
import shlex

from tests.chart.helm import NAMESPACE, notes


def curl_command(text: str) -> list[str]:
    start = text.index("curl ")
    end = text.index("\n\n", start)
    return shlex.split(text[start:end].replace("\\\n", " "))


def test_port_forward_and_curl() -> None:
    text = notes()
    assert f"kubectl -n {NAMESPACE} port-forward service/tandem-gateway 8080:8080" in text
    curl = curl_command(text)
    assert "http://127.0.0.1:8080/v1/embeddings" in curl
    body = curl[curl.index("-d") + 1]
    assert re.search(r'"model": "all-MiniLM-L6-v2"', body)
    assert "Content-Type: application/json" in curl
    assert f"helm test tandem -n {NAMESPACE} --logs" in text
    assert "Jaeger" not in text


def test_curl_sends_the_api_key_when_auth_is_on() -> None:
    text = notes({"gateway": {"apiKeys": {"existingSecret": "keys", "secretKey": "api-keys"}}})
    curl = " ".join(curl_command(text))
    assert "Authorization: Bearer $(kubectl -n inference get secret keys" in curl
    assert "{.data.api-keys}" in curl


def test_jaeger_ui_port_forward_when_jaeger_runs() -> None:
    text = notes({"tracing": {"enabled": True, "jaeger": {"enabled": True}}})
    assert f"kubectl -n {NAMESPACE} port-forward service/tandem-jaeger 16686:16686" in text
    assert "http://127.0.0.1:16686" in text


def test_shows_the_capacity_plan() -> None:
    text = notes({"core": {"capacity": {"cpus": 4, "workers": 2}}})
    assert "2 worker(s) x 2 thread(s) per pod, 4000m CPU" in text
