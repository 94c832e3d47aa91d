"""The release as installed: every pod Ready, nothing restarted, `helm test` passes."""

from __future__ import annotations

from .kube import ALL_POOLS, Release, is_ready


def test_every_pool_is_installed(release: Release) -> None:
    """values-e2e.yaml's two models, each in a pool of its own, both routed by the gateway."""
    pools = release.pools()
    assert [(p.name, p.model) for p in pools] == [
        ("fp32", "all-MiniLM-L6-v2"),
        ("int8", "all-MiniLM-L6-v2-int8"),
    ]
    precisions = {m["name"]: m["precision"] for m in release.values()["models"]}
    for pool in pools:
        deployment = release.deployment_name("core", pool.name)
        env = release.core.read_namespaced_config_map(deployment, release.namespace).data
        assert env["TANDEM_CORE_PRECISION"] == precisions[pool.name], (pool, env)


def test_every_pod_is_ready_and_never_restarted(release: Release) -> None:
    wanted = [("gateway", None, 1)] + [("core", p.name, 2) for p in release.pools()]
    for component, pool, want in wanted:
        pods = release.pods(component, pool=pool)
        assert len(pods) == want, f"{component} {pool}: {[p.metadata.name for p in pods]}"
        for pod in pods:
            assert pod.status.phase == "Running", (pod.metadata.name, pod.status.phase)
            assert is_ready(pod), f"{pod.metadata.name} is not Ready: {pod.status.conditions}"
            for c in pod.status.container_statuses:
                assert c.ready, (pod.metadata.name, c.name)
                assert c.started, (pod.metadata.name, c.name)
                assert c.restart_count == 0, (
                    f"{pod.metadata.name}/{c.name} restarted {c.restart_count} times"
                )


def test_images_come_from_the_node_never_a_registry(release: Release) -> None:
    """IfNotPresent and a fixed tag: the images imported into the node are used as they are."""
    for component in ("core", "gateway"):
        for pod in release.pods(component, pool=ALL_POOLS):
            for c in pod.spec.containers:
                assert c.image_pull_policy == "IfNotPresent", (c.name, c.image_pull_policy)
                assert ":" in c.image.rsplit("/", 1)[-1], c.image
                assert not c.image.endswith(":latest"), c.image


def test_helm_test_passes(release: Release) -> None:
    out = release.run_helm("test", release.name, "--logs", "--timeout", "5m")
    assert "Phase:          Succeeded" in out or "Succeeded" in out, out
    # One checked answer per model: the test pod asks every pool's.
    for pool in release.pools():
        assert f"ok: {pool.model} " in out, out
