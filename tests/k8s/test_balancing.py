"""One gateway spreads each model's calls over that model's core pool.

gRPC keeps one long-lived HTTP/2 connection per backend, so a ClusterIP
Service would pin a gateway to one core. The chart points the gateway at each
pool's headless Service (every core pod's address in DNS) with round_robin,
one channel per pool; each core pod's own request counter shows whether that
works, and that no call for one model lands on the other model's pool.
"""

from __future__ import annotations

import time

import httpx
import pytest

from .kube import Pool, PortForward, Release, metric

REQUESTS = 120


def _embeds(release: Release, pod: str) -> float:
    text = release.pod_get(pod, int(release.values()["core"]["ports"]["metrics"]), "/metrics")
    return metric(
        text, "tandem_core_requests_total", transport="grpc", method="Embed", outcome="ok"
    )


def _pool(release: Release, index: int) -> Pool:
    pools = release.pools()
    if index >= len(pools):
        pytest.skip(f"the release has {len(pools)} pool(s)")
    return pools[index]


@pytest.mark.parametrize("index", [0, 1], ids=["first-pool", "second-pool"])
def test_one_gateway_spreads_each_models_requests_over_its_pool(
    settled: Release, gateway: PortForward, index: int
) -> None:
    release = settled
    pool = _pool(release, index)
    assert len(release.pods("gateway")) == 1
    cores = [p.metadata.name for p in release.pods("core", pool=pool.name)]
    assert len(cores) == 2, f"pool {pool.name}: {cores}"
    others = [
        p.metadata.name
        for other in release.pools()
        if other != pool
        for p in release.pods("core", pool=other.name)
    ]
    body = {"model": pool.model, "input": ["spread"]}
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        # The gateway learns about a core it has not seen (one that replaced
        # another, as in the readiness test) when it next resolves the
        # headless Service, which publishes cores before they are ready; the
        # answer may be up to 30 s old (cluster DNS cache). Give it that
        # long and more, with requests flowing, before measuring.
        start = {pod: _embeds(release, pod) for pod in cores}
        began = time.monotonic()
        deadline = began + 60
        while not all(_embeds(release, pod) > start[pod] for pod in cores):
            assert time.monotonic() < deadline, (
                f"after 60 s of requests the gateway still calls only some {pool.name} cores "
                f"({ {pod: _embeds(release, pod) - start[pod] for pod in cores} }): a core it "
                "does not call is one it has not resolved (ci/cluster/README.md, "
                "'What the suite found')"
            )
            for _ in range(10):
                assert client.post("/v1/embeddings", json=body).status_code == 200
            time.sleep(1)
        print(
            f"the gateway called every {pool.name} core "
            f"{time.monotonic() - began:.1f} s into the traffic"
        )

        before = {pod: _embeds(release, pod) for pod in cores + others}
        for i in range(REQUESTS):
            reply = client.post(
                "/v1/embeddings", json={"model": pool.model, "input": [f"spread {i}"]}
            )
            assert reply.status_code == 200, reply.text
    served = {pod: _embeds(release, pod) - before[pod] for pod in cores}
    assert sum(served.values()) == REQUESTS, served
    # round_robin alternates: each core gets about half; a pinned connection would give one all.
    for pod, n in served.items():
        assert n >= REQUESTS * 0.3, f"{pod} served {n:.0f} of {REQUESTS}: {served}"
    # And the model's requests went to its own pool only.
    strays = {pod: _embeds(release, pod) - before[pod] for pod in others}
    assert not any(strays.values()), f"{pool.model} requests reached other pools: {strays}"
