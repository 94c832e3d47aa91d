"""Pods come and go under steady load, and requests do not fail.

The load comes from a pod in the namespace (kube.LoadRun) through the
gateway's Service, a new connection per request, as clients reach a real
deployment. Every run is bounded in time and requests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from .kube import LoadResult, LoadRun, Release, is_ready, wait_for, watching_pods


def _report(name: str, result: LoadResult) -> None:
    latency = result.summary["latency_ms"]
    print(f"{name}: {result.requests} requests, outcomes {result.outcomes}, latency {latency}")
    if len(result.summary.get("models", {})) > 1:
        print(f"  by model: {result.summary['models']}")
    failing = {
        t["second"]: sum(n for k, n in t["outcomes"].items() if k != "ok")
        for t in result.ticks
        if any(k != "ok" for k in t["outcomes"])
    }
    if failing:
        print(f"  failures by second of the run: {failing}")
    for f in result.summary["failures"][:5]:
        print(f"  failure: {f}")


def test_deleting_a_core_pod_under_load(settled: Release) -> None:
    """At most 0.1% of requests fail (target: none), and throughput recovers."""
    release = settled
    old = {p.metadata.name for p in release.pods("core")}
    victim = min(old)
    # Long enough for the replacement to start and for the gateway to find it
    # through cluster DNS, whose answers may be 30 s old.
    with LoadRun(release, duration=100, concurrency=4) as load:
        steady = load.wait_steady(seconds=5)
        time.sleep(10)
        deleted_at = time.time()
        release.core.delete_namespaced_pod(victim, release.namespace)
        wait_for(
            "the replacement core to be Ready",
            lambda: len([p for p in release.pods("core") if is_ready(p)]) == 2,
            180,
        )
        result = load.result()
    _report("core pod deleted", result)

    assert result.requests >= 200, result.summary
    assert result.failed <= result.requests * 0.001, (
        f"{result.failed} of {result.requests} failed: {result.outcomes}"
    )
    before = result.ok_rate(steady, deleted_at)
    end = result.ticks[-1]["ts"]
    after = result.ok_rate(end - 15, end)
    assert before > 0
    assert after >= 0.7 * before, (
        f"throughput {before:.1f}/s before the deletion, {after:.1f}/s at the end"
    )
    assert result.zero_ok_seconds(deleted_at, end) <= 2, "the load stalled after the deletion"


@pytest.mark.parametrize("index", [0, 1], ids=["first-pool", "second-pool"])
def test_rolling_restart_of_one_pool_under_load_fails_no_request_of_any_model(
    settled: Release, index: int
) -> None:
    """Pools roll independently: while one pool's cores are replaced one by one,
    neither its own model's requests nor the other model's fail, and the other
    pool's cores are left alone."""
    release = settled
    pools = release.pools()
    if index >= len(pools):
        pytest.skip(f"the release has {len(pools)} pool(s)")
    pool = pools[index]
    others = {
        p.metadata.name for o in pools if o != pool for p in release.pods("core", pool=o.name)
    }
    deployment = release.deployment_name("core", pool.name)
    old = {p.metadata.name for p in release.pods("core", pool=pool.name)}
    # One load pod cycling through every model: the CPU budget of the 2-CPU
    # node has room for one (values-e2e.yaml).
    models = [p.model for p in pools]
    with LoadRun(release, duration=240, concurrency=4, models=models) as load:
        load.wait_steady(seconds=5)
        time.sleep(5)
        restarted_at = datetime.now(UTC).isoformat()
        release.apps.patch_namespaced_deployment(
            deployment,
            release.namespace,
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {"kubectl.kubernetes.io/restartedAt": restarted_at}
                        }
                    }
                }
            },
        )

        def rolled() -> bool:
            pods = release.pods("core", include_terminating=True, pool=pool.name)
            return (
                len(pods) == 2
                and not ({p.metadata.name for p in pods} & old)
                and all(is_ready(p) for p in pods)
            )

        wait_for(f"the {pool.name} pool's rolling restart", rolled, 200)
        time.sleep(10)  # load on the new pods for a while before stopping
        load.stop()
        result = load.result()
    _report(f"{pool.name} pool rolling restart", result)

    assert result.requests >= 200, result.summary
    for model in models:
        outcomes = result.model_outcomes(model)
        assert outcomes.get("ok", 0) >= 100, f"{model}: {outcomes}"
        assert result.model_failed(model) == 0, f"{model}: {outcomes}"
    assert result.failed == 0, f"{result.failed} of {result.requests} failed: {result.outcomes}"
    # The other pools were not touched.
    after = {p.metadata.name for o in pools if o != pool for p in release.pods("core", pool=o.name)}
    assert after == others, f"other pools' cores changed: {others} -> {after}"


def test_gateway_scale_down_under_load_drops_no_request(settled: Release) -> None:
    """SIGTERM drain: the removed gateway leaves the Service, finishes what it has, exits 0."""
    release = settled
    release.scale("gateway", 2)
    release.settled()
    admin_port = int(release.values()["gateway"]["metricsService"]["port"])
    gateways = [p.metadata.name for p in release.pods("gateway")]
    with (
        watching_pods(release, "gateway") as events,
        LoadRun(release, duration=120, concurrency=4) as load,
    ):
        load.wait_steady(seconds=5)
        time.sleep(5)
        # Both gateways are taking requests, so the one that goes has some to drop.
        for g in gateways:
            text = release.pod_get(g, admin_port, "/metrics")
            assert 'route="embeddings"' in text, f"{g} served no requests before the scale-down"
        release.scale("gateway", 1)
        victim = wait_for(
            "a gateway to be chosen for removal",
            lambda: next(
                (
                    p.metadata.name
                    for p in release.pods("gateway", include_terminating=True)
                    if p.metadata.deletion_timestamp is not None
                ),
                None,
            ),
            30,
        )
        wait_for(
            f"{victim} to be gone",
            lambda: (
                victim
                not in [p.metadata.name for p in release.pods("gateway", include_terminating=True)]
            ),
            120,
        )
        time.sleep(5)
        load.stop()
        result = load.result()
    _report("gateway scale-down", result)

    assert result.requests >= 200, result.summary
    assert result.failed == 0, f"{result.failed} of {result.requests} failed: {result.outcomes}"
    # It drained and exited by itself (0), not by SIGKILL (137) at the grace period's end.
    finals = [
        c.state.terminated
        for _, _, pod in events
        if pod.metadata.name == victim
        for c in (pod.status.container_statuses or [])
        if c.state and c.state.terminated
    ]
    assert finals, f"never saw {victim}'s container terminate"
    assert finals[-1].exit_code == 0, (
        f"{victim} exited {finals[-1].exit_code} ({finals[-1].reason})"
    )
