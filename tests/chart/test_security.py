"""Every pod the chart can create meets Pod Security "restricted", and more.

The checks follow the restricted profile's rules
(https://kubernetes.io/docs/concepts/security/pod-security-standards/), for
every scenario, including the helm test pod and the optional tracing pods.
On a cluster, `make deploy` installs into a namespace that enforces the
profile, so the API server checks the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import SCENARIOS, render, render_error

# Volume types the restricted profile allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def effective(pod: dict[str, Any], container: dict[str, Any], key: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    return container.get("securityContext", {}).get(key, pod.get("securityContext", {}).get(key))


def all_pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for values_file in SCENARIOS:
        for name, spec in render(values_file).pod_specs():
            specs.append((f"{values_file.name}:{name}", spec))
    return specs


POD_SPECS = all_pod_specs()


def test_every_kind_of_pod_is_covered() -> None:
    names = {name.split(":", 1)[1] for name, _ in POD_SPECS}
    assert {
        "Deployment/tandem-gateway",
        "Deployment/tandem-core",
        "Pod/tandem-test-embeddings",
        "Deployment/tandem-otel-collector",
        "Deployment/tandem-jaeger",
    } <= names


@pytest.mark.parametrize(("name", "pod"), POD_SPECS, ids=[n for n, _ in POD_SPECS])
def test_pod_meets_restricted(name: str, pod: dict[str, Any]) -> None:
    for flag in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        assert pod.get(flag) in (None, False) or (flag == "hostUsers"), flag
    for volume in pod.get("volumes", []):
        kind = next(k for k in volume if k != "name")
        assert kind in RESTRICTED_VOLUMES, f"volume {volume['name']} of type {kind}"
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container.get("securityContext", {})
        assert effective(pod, container, "runAsNonRoot") is True
        assert effective(pod, container, "runAsUser") not in (0, None), "a numeric non-root user"
        seccomp = effective(pod, container, "seccompProfile") or {}
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost")
        assert sc.get("allowPrivilegeEscalation") is False
        assert sc.get("privileged") in (None, False)
        assert "ALL" in sc.get("capabilities", {}).get("drop", [])
        assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}
        # Beyond restricted: nothing writes to the image's filesystem.
        assert sc.get("readOnlyRootFilesystem") is True
        assert "hostPort" not in str(container.get("ports", []))


@pytest.mark.parametrize(("name", "pod"), POD_SPECS, ids=[n for n, _ in POD_SPECS])
def test_pod_has_no_api_token_and_no_service_links(name: str, pod: dict[str, Any]) -> None:
    assert pod["automountServiceAccountToken"] is False
    # Service links would put TANDEM_CORE_PORT=tcp://... into the core's own
    # TANDEM_CORE_* settings namespace.
    assert pod["enableServiceLinks"] is False


@pytest.mark.parametrize(("name", "pod"), POD_SPECS, ids=[n for n, _ in POD_SPECS])
def test_images_are_pinned_and_never_pulled_needlessly(name: str, pod: dict[str, Any]) -> None:
    for container in pod["containers"]:
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, f"{image} has no tag"
        assert not image.endswith(":latest")
        assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(("name", "pod"), POD_SPECS, ids=[n for n, _ in POD_SPECS])
def test_containers_have_requests_and_memory_limits(name: str, pod: dict[str, Any]) -> None:
    for container in pod["containers"]:
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
        assert "memory" in resources["limits"], container["name"]


def test_service_accounts_mount_no_token() -> None:
    accounts = render().all("ServiceAccount")
    assert {a["metadata"]["name"] for a in accounts} == {"tandem-gateway", "tandem-core"}
    assert all(a["automountServiceAccountToken"] is False for a in accounts)
    rendered = render()
    for component in ("gateway", "core"):
        spec = rendered.deployment(component)["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == f"tandem-{component}"


def test_latest_tag_is_refused() -> None:
    assert "pin a version" in render_error(values={"core": {"image": {"tag": "latest"}}})
    assert "pin a version" in render_error(
        values={"tracing": {"collector": {"enabled": True, "image": {"tag": "latest"}}}}
    )


def test_digest_replaces_the_tag() -> None:
    digest = "sha256:" + "a" * 64
    image = render(values={"gateway": {"image": {"digest": digest}}}).container("gateway")["image"]
    assert image == f"tandem-gateway@{digest}"


def test_api_keys_come_from_a_secret_file(tmp_path: Path) -> None:
    rendered = render(
        values={"gateway": {"apiKeys": {"existingSecret": "my-keys", "secretKey": "keys.txt"}}}
    )
    gateway = rendered.container("gateway")
    assert (
        rendered.env("gateway")["TANDEM_GATEWAY_API_KEYS_FILE"] == "/etc/tandem/api-keys/keys.txt"
    )
    assert {"name": "api-keys", "mountPath": "/etc/tandem/api-keys", "readOnly": True} in gateway[
        "volumeMounts"
    ]
    volume = rendered.deployment("gateway")["spec"]["template"]["spec"]["volumes"][0]
    assert volume["secret"]["secretName"] == "my-keys"
    # No key material anywhere in what the chart renders.
    assert not rendered.all("Secret")
    assert "TANDEM_GATEWAY_API_KEYS" not in rendered.env("gateway")
