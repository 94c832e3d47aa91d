"""The local e2e suite's request and bad-input tests, through the gateway in the cluster.

The test functions are the very ones of tests/e2e (test_embeddings.py and
test_bad_input.py); here their `stack` and `client` fixtures point at the
gateway's Service, forwarded to 127.0.0.1, instead of local processes. The
one local test that reads the core's log file has a cluster version below
that reads the core pods' logs through the API.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e import test_bad_input as local_bad_input
from tests.e2e import test_embeddings as local_embeddings

from .kube import PortForward, Release, wait_for


@dataclass
class ClusterStack:
    gateway_url: str


@pytest.fixture(scope="module")
def stack(gateway: PortForward) -> ClusterStack:
    return ClusterStack(gateway.url)


@pytest.fixture(scope="module")
def client(stack: ClusterStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
        yield c


# From tests/e2e/test_embeddings.py
test_reference_vectors_through_the_gateway = (
    local_embeddings.test_reference_vectors_through_the_gateway
)
test_single_string_input_and_alias = local_embeddings.test_single_string_input_and_alias
test_base64_is_little_endian_float32_of_the_same_vector = (
    local_embeddings.test_base64_is_little_endian_float32_of_the_same_vector
)
test_official_openai_client = local_embeddings.test_official_openai_client
test_long_text_is_truncated_and_reported = local_embeddings.test_long_text_is_truncated_and_reported
test_models_list = local_embeddings.test_models_list
test_health_and_readiness = local_embeddings.test_health_and_readiness
test_server_timing_splits_the_time = local_embeddings.test_server_timing_splits_the_time

# From tests/e2e/test_bad_input.py
test_bad_json_bodies = local_bad_input.test_bad_json_bodies
test_too_many_tokens_when_truncation_is_refused = (
    local_bad_input.test_too_many_tokens_when_truncation_is_refused
)
test_malformed_requests = local_bad_input.test_malformed_requests
test_body_over_the_size_limit = local_bad_input.test_body_over_the_size_limit
test_wrong_method_and_unknown_route = local_bad_input.test_wrong_method_and_unknown_route


def test_request_id_crosses_the_language_boundary(client: httpx.Client, release: Release) -> None:
    """The cluster version of the local test: the id shows up in a core pod's log."""
    request_id = f"e2e-k8s-{secrets.token_hex(6)}"
    reply = client.post(
        "/v1/embeddings",
        json={"model": "all-MiniLM-L6-v2", "input": "trace me"},
        headers={"X-Request-Id": request_id},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-request-id"] == request_id

    def logged() -> bool:
        return any(
            request_id
            in release.core.read_namespaced_pod_log(
                p.metadata.name, release.namespace, tail_lines=2000
            )
            for p in release.pods("core")
        )

    wait_for(f"{request_id} in a core pod's log", logged, 30)
