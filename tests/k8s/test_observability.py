"""The dashboard and the alerts against a Prometheus running in the cluster.

The same check as tests/e2e/test_observability.py, with Kubernetes doing the
discovery: a plain Prometheus (the pinned build, in an image FROM scratch;
`make prometheus-image-archive`) runs in the release's namespace with a Role
to discover its endpoints, finds every Service of the release with a port
named "metrics" (what the chart's ServiceMonitors select) and labels the
series as they do (tandem_devkit.prometheus.kubernetes_scrape_config). It
loads the alert rules the chart renders for this release. Two extra gateway
pods in front of the release's fp32 pool give the outcomes the release's own
settings never produce (429, 503, 504; tandem_devkit.outcomes). After a
bounded load through the gateways, every panel query must parse and return
data, and every rule must evaluate without error.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tandem_devkit import chart_rules, dashboard, outcomes
from tandem_devkit.prometheus import PrometheusAPI, kubernetes_scrape_config

from .kube import (
    ALL_POOLS,
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    PortForward,
    Release,
    is_ready,
    wait_for_pod_ready,
)

PROMETHEUS = "e2e-prometheus"
READ = ["get", "list", "watch"]
SCRAPE_INTERVAL_S = 2.0
PART_OF = {"app.kubernetes.io/part-of": "tandem-e2e"}
EXTRA_GATEWAYS = ("e2e-strict", "e2e-orphan")


def _pod(
    name: str, labels: dict[str, str], container: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    container = {
        "imagePullPolicy": "IfNotPresent",
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        **container,
    }
    return {
        "metadata": {"name": name, "labels": {**labels, **PART_OF}},
        "spec": {"securityContext": RESTRICTED_POD_SECURITY, "containers": [container], **spec},
    }


def _prometheus_objects(release: Release, image: str) -> None:
    """ServiceAccount, Role and binding for discovery, the configuration, the pod."""
    r, ns = release, release.namespace
    rbac = client.RbacAuthorizationV1Api(r.api)
    r.core.create_namespaced_service_account(ns, {"metadata": {"name": PROMETHEUS}})
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": PROMETHEUS},
            "rules": [
                {"apiGroups": [""], "resources": ["pods", "services", "endpoints"], "verbs": READ},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": PROMETHEUS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": PROMETHEUS,
            },
            "subjects": [{"kind": "ServiceAccount", "name": PROMETHEUS, "namespace": ns}],
        },
    )
    groups = chart_rules.render_groups(
        Path(shutil.which(r.helm) or r.helm), namespace=ns, release=r.name, chart=r.chart
    )
    config = kubernetes_scrape_config(
        namespace=ns,
        release=r.name,
        interval_s=SCRAPE_INTERVAL_S,
        rule_files=["/etc/prometheus/rules.yaml"],
    )
    r.core.create_namespaced_config_map(
        ns,
        {
            "metadata": {"name": PROMETHEUS},
            "data": {
                "prometheus.yml": json.dumps(config, indent=2),
                "rules.yaml": json.dumps({"groups": groups}, indent=2),
            },
        },
    )
    container = {
        "name": "prometheus",
        "image": image,
        "args": [
            "--config.file=/etc/prometheus/prometheus.yml",
            # Not /prometheus: that is the binary's path in the image.
            "--storage.tsdb.path=/data",
            "--web.listen-address=:9090",
            "--enable-feature=exemplar-storage",
        ],
        "ports": [{"containerPort": 9090, "name": "web"}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": 9090}, "periodSeconds": 1},
        # Small: it scrapes seven targets every 2 s for a minute.
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
            {"name": "data", "mountPath": "/data"},
        ],
    }
    r.core.create_namespaced_pod(
        ns,
        _pod(
            PROMETHEUS,
            {"app.kubernetes.io/name": PROMETHEUS},
            container,
            serviceAccountName=PROMETHEUS,
            volumes=[
                {"name": "config", "configMap": {"name": PROMETHEUS}},
                {"name": "data", "emptyDir": {"sizeLimit": "256Mi"}},
            ],
        ),
    )


def _outcome_gateway(release: Release, name: str, pools: str, settings: dict[str, str]) -> None:
    """A gateway pod with settings of its own and a metrics Service the
    release's discovery finds (named *-metrics, so Release.service_name skips it)."""
    r, ns = release, release.namespace
    image = r.pods("gateway")[0].spec.containers[0].image
    labels = {"app.kubernetes.io/name": name}
    env = {
        "TANDEM_GATEWAY_LISTEN_ADDR": ":8080",
        "TANDEM_GATEWAY_ADMIN_ADDR": ":9090",
        "TANDEM_GATEWAY_UPSTREAM_POOLS": pools,
        **settings,
    }
    container = {
        "name": "gateway",
        "image": image,
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [
            {"containerPort": 8080, "name": "http"},
            {"containerPort": 9090, "name": "metrics"},
        ],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    }
    r.core.create_namespaced_pod(
        ns, _pod(name, labels, container, automountServiceAccountToken=False)
    )
    r.core.create_namespaced_service(
        ns,
        {
            "metadata": {
                "name": f"{name}-metrics",
                "labels": {
                    "app.kubernetes.io/instance": r.name,
                    "app.kubernetes.io/component": "gateway",
                    **PART_OF,
                },
            },
            "spec": {"selector": labels, "ports": [{"name": "metrics", "port": 9090}]},
        },
    )


def _delete_all(release: Release) -> None:
    r, ns = release, release.namespace
    rbac = client.RbacAuthorizationV1Api(r.api)
    deletions = [
        *((r.core.delete_namespaced_pod, n) for n in (PROMETHEUS, *EXTRA_GATEWAYS)),
        *((r.core.delete_namespaced_service, f"{n}-metrics") for n in EXTRA_GATEWAYS),
        (r.core.delete_namespaced_config_map, PROMETHEUS),
        (rbac.delete_namespaced_role_binding, PROMETHEUS),
        (rbac.delete_namespaced_role, PROMETHEUS),
        (r.core.delete_namespaced_service_account, PROMETHEUS),
    ]
    for delete, name in deletions:
        try:
            delete(name, ns)
        except client.ApiException as err:
            if err.status != 404:
                raise


@pytest.fixture(scope="module")
def observed(
    release: Release, pytestconfig: pytest.Config
) -> Iterator[tuple[PrometheusAPI, dict[str, str]]]:
    image = pytestconfig.getoption("--prometheus-image")
    if not image:
        pytest.skip(
            "needs a Prometheus image in the cluster: make prometheus-image-archive, load "
            ".cache/images/prometheus-*.tar, pass --prometheus-image (make e2e-k8s does)"
        )
    r = release
    fp32, int8 = r.pools()[0].model, r.pools()[1].model
    headless = r.service_name("core", headless=True, pool=r.pools()[0].name)
    grpc_port = int(r.values()["core"]["ports"]["grpc"])
    try:
        _prometheus_objects(r, image)
        _outcome_gateway(
            r,
            "e2e-strict",
            f"{fp32}=dns:///{headless}:{grpc_port}",
            outcomes.STRICT_GATEWAY_SETTINGS,
        )
        # Nothing listens on port 1 of the pod itself: every call fails at once (503).
        _outcome_gateway(r, "e2e-orphan", f"{fp32}=dns:///127.0.0.1:1", {})
        for pod in (PROMETHEUS, *EXTRA_GATEWAYS):
            wait_for_pod_ready(r, pod, 120)
        gateway_port = int(r.values()["gateway"]["service"]["port"])
        with (
            PortForward(r, f"pod/{PROMETHEUS}", 9090) as prom_pf,
            PortForward(r, f"service/{r.service_name('gateway')}", gateway_port) as main,
            PortForward(r, "pod/e2e-strict", 8080) as strict,
            PortForward(r, "pod/e2e-orphan", 8080) as orphan,
        ):
            prometheus = PrometheusAPI(prom_pf.url)
            # Every ready pod of the release (the suite's earlier tests leave
            # the pools at whatever size their autoscaling settled on) and the
            # two extra gateways, each scraped once.
            ready = [p for p in r.pods("core", pool=ALL_POOLS) + r.pods("gateway") if is_ready(p)]
            prometheus.wait_scraped(count=len(ready) + len(EXTRA_GATEWAYS), timeout_s=60)
            seen = outcomes.drive(
                outcomes.OutcomeGateways(main=main.url, strict=strict.url, orphan=orphan.url),
                fp32_model=fp32,
                int8_model=int8,
                seconds=15.0,
                max_requests=400,
            )
            missing = [status for status in outcomes.WANTED_STATUSES if not seen[status]]
            assert not missing, f"the load produced no {missing}: {dict(seen)}"
            time.sleep(3 * SCRAPE_INTERVAL_S + 1)
            yield prometheus, {"namespace": r.namespace, "release": r.name, "model": fp32}
    finally:
        _delete_all(r)


def test_every_panel_query_returns_data_in_the_cluster(
    observed: tuple[PrometheusAPI, dict[str, str]],
) -> None:
    prometheus, variables = observed
    refused, empty = dashboard.unanswered_panels(prometheus.query, variables)
    assert not refused, "queries Prometheus refused:\n" + "\n".join(refused)
    assert not empty, "panels with no data after the load:\n" + "\n".join(empty)


def test_every_alert_rule_evaluates_in_the_cluster(
    observed: tuple[PrometheusAPI, dict[str, str]],
) -> None:
    prometheus, _ = observed
    rules = prometheus.evaluated_rules()
    assert sum(rule["type"] == "alerting" for rule in rules) >= 6, [r["name"] for r in rules]
    unhealthy = [
        f"{r['name']}: {r['health']} {r.get('lastError', '')}" for r in rules if r["health"] != "ok"
    ]
    assert not unhealthy, "rules that failed to evaluate:\n" + "\n".join(unhealthy)
    gone = {r["name"]: dashboard.missing_metrics(prometheus.query, r["query"]) for r in rules}
    assert not any(gone.values()), {name: g for name, g in gone.items() if g}


def test_series_carry_the_labels_the_dashboard_selects_by(
    release: Release, observed: tuple[PrometheusAPI, dict[str, str]]
) -> None:
    """Every ready core pod is a target labelled with its pool, every gateway
    (the release's and the two extra ones) one labelled gateway."""
    prometheus, variables = observed
    selector = f'namespace="{variables["namespace"]}", release="{variables["release"]}"'

    def unscraped() -> list[str]:
        """Ready pods with no successful scrape under the right labels; [] when all are."""
        up = prometheus.query(f"up{{{selector}}} == 1")
        seen = {(s["metric"].get("pod"), s["metric"].get("tandem_pool", "")) for s in up}
        missing = []
        for pool in release.pools():
            for pod in release.pods("core", pool=pool.name):
                if is_ready(pod) and (pod.metadata.name, pool.name) not in seen:
                    missing.append(f"{pod.metadata.name} (pool {pool.name})")
        gateways = [p.metadata.name for p in release.pods("gateway") if is_ready(p)]
        missing += [g for g in [*gateways, *EXTRA_GATEWAYS] if (g, "") not in seen]
        return missing

    assert release.pods("core", pool=ALL_POOLS), "no core pods"
    # The fp32 pool may be autoscaled (tests/k8s/test_autoscaling.py leaves it
    # so): a pod that turned ready a moment ago gets its first scrape within
    # two scrape intervals.
    deadline = time.monotonic() + 5 * SCRAPE_INTERVAL_S
    missing = unscraped()
    while missing and time.monotonic() < deadline:
        time.sleep(SCRAPE_INTERVAL_S)
        missing = unscraped()
    assert not missing, f"ready pods Prometheus does not scrape with their labels: {missing}"
