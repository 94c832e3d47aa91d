"""The release as installed: every pod Ready, nothing restarted, `helm test` passes."""

from __future__ import annotations

from .kube import Release, is_ready


def test_every_pod_is_ready_and_never_restarted(release: Release) -> None:
    for component, want in (("core", 2), ("gateway", 1)):
        pods = release.pods(component)
        assert len(pods) == want, f"{component}: {[p.metadata.name for p in pods]}"
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
        for pod in release.pods(component):
            for c in pod.spec.containers:
                assert c.image_pull_policy == "IfNotPresent", (c.name, c.image_pull_policy)
                assert ":" in c.image.rsplit("/", 1)[-1], c.image
                assert not c.image.endswith(":latest"), c.image


def test_helm_test_passes(release: Release) -> None:
    out = release.run_helm("test", release.name, "--logs", "--timeout", "5m")
    assert "Phase:          Succeeded" in out or "Succeeded" in out, out
    assert "ok:" in out, out
