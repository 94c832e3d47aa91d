"""The worst inputs the chart's limits allow, sent inside the cluster: bounds hold, pods stay up.

The local suite (tests/e2e/test_abuse.py) proves each bound against processes;
here the same attacks run against the release as installed, through the
gateway's Service, with the memory limits the chart derived from its formulas
(docs/threat-model.md). Pass: only the answers the bound promises (200, 429,
or the 400 of a refused flood), no container restarted or OOM-killed, each
pod's working set under its limit, and a normal request served right after.
"""

from __future__ import annotations

import httpx

from .kube import LoadRun, PeakMemory, PortForward, Release

MODEL = "all-MiniLM-L6-v2"


def _memory_limit(release: Release, component: str) -> int:
    limits = release.pods(component)[0].spec.containers[0].resources.limits
    value = limits["memory"]
    assert value.endswith("Mi"), f"{component} memory limit {value}: expected Mi from the chart"
    return int(value[:-2]) << 20


def _assert_unharmed(release: Release, component: str, peaks: dict[str, int], limit: int) -> None:
    for pod in release.pods(component):
        status = pod.status.container_statuses[0]
        assert status.restart_count == 0, f"{pod.metadata.name} restarted"
        last = status.last_state.terminated if status.last_state else None
        assert last is None, f"{pod.metadata.name} was terminated: {last}"
    assert peaks, f"no memory samples of the {component} pods from the kubelet"
    for pod, peak in peaks.items():
        assert peak < limit, f"{pod} peaked at {peak >> 20} MiB, limit {limit >> 20} MiB"


def _served_after(gateway: PortForward) -> None:
    reply = httpx.post(
        f"{gateway.url}/v1/embeddings",
        json={"model": MODEL, "input": "still serving after the attack"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text


def test_item_flood_at_max_in_flight_keeps_the_gateway_in_its_limit(
    settled: Release, gateway: PortForward
) -> None:
    """maxInFlight concurrent 4 MiB bodies of ~1.4 million empty strings each: 400 or 429."""
    release = settled
    in_flight = int(release.values()["gateway"]["settings"]["maxInFlight"])
    limit = _memory_limit(release, "gateway")
    with (
        PeakMemory(release, "gateway") as memory,
        LoadRun(
            release,
            duration=25,
            concurrency=in_flight,
            shape="flood",
            timeout=30,
            max_requests=2000,
        ) as load,
    ):
        result = load.result()
    print(
        f"gateway item flood x {in_flight}: {result.outcomes}, peak working set "
        f"{ {p: v >> 20 for p, v in memory.peaks.items()} } MiB of {limit >> 20} MiB"
    )
    refused = result.outcomes.get("http_400_too_many_inputs", 0)
    unexpected = {
        k: v
        for k, v in result.outcomes.items()
        if k != "http_400_too_many_inputs" and not k.startswith("http_429")
    }
    assert not unexpected, f"{unexpected}; samples: {result.summary['failures'][:5]}"
    assert refused >= in_flight, f"the flood was not sent: {result.outcomes}"
    _assert_unharmed(release, "gateway", memory.peaks, limit)
    _served_after(gateway)


def test_largest_requests_keep_the_cores_in_their_limit_and_get_200_or_429(
    settled: Release, gateway: PortForward
) -> None:
    """256 texts of ~8 KB each, from 12 callers at once: admitted or refused at once, never 504."""
    release = settled
    limit = _memory_limit(release, "core")
    with (
        PeakMemory(release, "core") as memory,
        LoadRun(
            release,
            duration=30,
            concurrency=12,
            texts=256,
            words=1000,
            timeout=60,
            max_requests=500,
        ) as load,
    ):
        result = load.result()
    print(
        f"core worst case (12 x 256 x ~8 KB): {result.outcomes}, latency "
        f"{result.summary['latency_ms']}, peak working set "
        f"{ {p: v >> 20 for p, v in memory.peaks.items()} } MiB of {limit >> 20} MiB"
    )
    unexpected = {
        k: v for k, v in result.outcomes.items() if k != "ok" and not k.startswith("http_429")
    }
    assert not unexpected, f"{unexpected}; samples: {result.summary['failures'][:5]}"
    assert any(k.startswith("http_429") for k in result.outcomes), (
        f"12 callers of the largest request never met the admission bound: {result.outcomes}"
    )
    _assert_unharmed(release, "core", memory.peaks, limit)
    _served_after(gateway)
