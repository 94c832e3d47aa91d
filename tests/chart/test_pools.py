"""Core pools: one Deployment and its Services per entry of `models`, each with its
own worker math, overrides and labels; the gateway routes to all of them, the
NetworkPolicy admits it to all of them, and the schema refuses bad entries."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.helm import Rendered, mib, notes, render, render_error, scenario
from tests.chart.test_wiring import pods_selected, upstream_pools
from tests.chart.test_worker_math import Case, worker_math

POOL_LABEL = "tandem/pool"


def pool_deployments(rendered: Rendered) -> dict[str, dict[str, Any]]:
    """The core Deployments by pool name."""
    return {
        d["spec"]["template"]["metadata"]["labels"][POOL_LABEL]: d
        for d in rendered.all("Deployment")
        if d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "core"
    }


def test_one_deployment_and_three_services_per_pool() -> None:
    rendered = render(scenario("two-models"))
    pools = pool_deployments(rendered)
    assert {p: d["metadata"]["name"] for p, d in pools.items()} == {
        "fp32": "tandem-core",  # the first pool keeps the single-model names
        "int8": "tandem-core-int8",
    }
    for pool, deployment in pools.items():
        base = deployment["metadata"]["name"]
        template = deployment["spec"]["template"]
        for name in (base, f"{base}-headless", f"{base}-metrics"):
            service = rendered.one("Service", name)
            # Each of a pool's Services selects its pool's pods and no other's.
            assert pods_selected(rendered, service["spec"]["selector"]) == [template], name
            assert service["spec"]["selector"][POOL_LABEL] == pool
        assert rendered.one("ConfigMap", base)["data"]["TANDEM_CORE_PRECISION"] == pool
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector[POOL_LABEL] == pool
        others = [d for p, d in pools.items() if p != pool]
        for other in others:
            labels = other["spec"]["template"]["metadata"]["labels"]
            assert not selector.items() <= labels.items(), "two Deployments select the same pods"


def test_each_pools_worker_math_is_its_own_precisions() -> None:
    """Per pool: resources and worker settings == `tandem worker-math --precision <its>`."""
    values = {
        "models": [
            {"name": "fp32", "precision": "fp32", "capacity": {"cpus": 2}},
            {"name": "int8", "precision": "int8", "capacity": {"cpus": 1, "maxBatchTokens": 2048}},
        ]
    }
    rendered = render(values=values)
    cases = {
        "core": Case(cpus=2, precision="fp32"),
        "core-int8": Case(cpus=1, precision="int8", max_batch_tokens=2048),
    }
    requests = set()
    for component, case in cases.items():
        plan = worker_math(case)
        assert isinstance(plan, dict), plan
        resources = rendered.container(component)["resources"]
        assert mib(resources["requests"]["memory"]) == plan["memory_request_mib"]
        assert mib(resources["limits"]["memory"]) == plan["memory_limit_mib"]
        assert resources["requests"]["cpu"] == f"{round(case.cpus * 1000)}m"
        env = rendered.env(component)
        assert int(env["TANDEM_CORE_WORKERS"]) == plan["workers"]
        assert int(env["TANDEM_CORE_MAX_BATCH_TOKENS"]) == case.max_batch_tokens
        assert env["TANDEM_CORE_PRECISION"] == case.precision
        requests.add(plan["memory_request_mib"])
    assert len(requests) == 2, "the two pools' plans differ, so the check is not vacuous"


def test_same_size_pools_differ_by_their_precisions_measured_inputs() -> None:
    """fp32 and int8 at the same size get different memory: each reads its own
    entry of generated/model-capacity.json."""
    rendered = render()
    memory = {
        c: rendered.container(c)["resources"]["requests"]["memory"] for c in ("core", "core-int8")
    }
    for component, precision in (("core", "fp32"), ("core-int8", "int8")):
        plan = worker_math(Case(cpus=1, precision=precision))
        assert isinstance(plan, dict)
        assert mib(memory[component]) == plan["memory_request_mib"]
    assert memory["core"] != memory["core-int8"]


def test_pool_overrides_win_even_when_zero_or_false() -> None:
    """A pool's `workers: 0` or `autoscaling.enabled: false` replaces the shared value
    (sprig's mergeOverwrite would silently keep the shared one)."""
    values = {
        "core": {
            "capacity": {"cpus": 2, "workers": 1, "threadsPerWorker": 2},
            "autoscaling": {"enabled": True},
            "podDisruptionBudget": {"enabled": True},
            "replicas": 3,
        },
        "models": [
            {"name": "fp32", "precision": "fp32"},
            {
                "name": "int8",
                "precision": "int8",
                "capacity": {"workers": 0, "threadsPerWorker": 0},
                "autoscaling": {"enabled": False},
                "podDisruptionBudget": {"enabled": False},
                "replicas": 0,
            },
        ],
    }
    rendered = render(values=values)
    shared, own = rendered.env("core"), rendered.env("core-int8")
    assert (shared["TANDEM_CORE_WORKERS"], shared["TANDEM_CORE_THREADS_PER_WORKER"]) == ("1", "2")
    assert (own["TANDEM_CORE_WORKERS"], own["TANDEM_CORE_THREADS_PER_WORKER"]) == ("2", "1")
    assert [h["metadata"]["name"] for h in rendered.all("HorizontalPodAutoscaler")] == [
        "tandem-core"
    ]
    assert [p["metadata"]["name"] for p in rendered.all("PodDisruptionBudget")] == ["tandem-core"]
    assert "replicas" not in rendered.deployment("core")["spec"], "autoscaled"
    assert rendered.deployment("core-int8")["spec"]["replicas"] == 0


def test_explicit_resources_of_a_pool_replace_the_shared_block() -> None:
    explicit = {"requests": {"cpu": "1", "memory": "900Mi"}, "limits": {"memory": "1Gi"}}
    values = {
        "core": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1"}}},
        "models": [
            {"name": "fp32", "precision": "fp32"},
            {"name": "int8", "precision": "int8", "resources": explicit},
        ],
    }
    rendered = render(values=values)
    assert rendered.container("core-int8")["resources"] == explicit, "no shared cpu limit mixed in"


def test_a_pools_settings_change_rolls_that_pool_only() -> None:
    def checksums(rendered: Rendered) -> dict[str, str]:
        return {
            pool: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for pool, d in pool_deployments(rendered).items()
        }

    before = checksums(render())
    after = checksums(
        render(
            values={
                "models": [
                    {"name": "fp32", "precision": "fp32"},
                    {"name": "int8", "precision": "int8", "settings": {"maxBatchSize": 16}},
                ]
            }
        )
    )
    assert before["fp32"] == after["fp32"]
    assert before["int8"] != after["int8"]


def test_gateway_pools_follow_the_list() -> None:
    rendered = render(scenario("two-models"))
    pools = upstream_pools(rendered)
    assert pools == {
        "all-MiniLM-L6-v2": "dns:///tandem-core-headless.inference.svc.cluster.local:50051",
        "all-MiniLM-L6-v2-int8": (
            "dns:///tandem-core-int8-headless.inference.svc.cluster.local:50051"
        ),
    }


def test_network_policy_admits_the_gateway_to_every_pool() -> None:
    rendered = render(scenario("two-models"))
    policies = rendered.all("NetworkPolicy")
    gateway = rendered.deployment("gateway")["spec"]["template"]["metadata"]["labels"]
    for pool, deployment in pool_deployments(rendered).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        governing = [
            p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(governing) == 1, (pool, [p["metadata"]["name"] for p in governing])
        grpc_rules = [
            rule
            for rule in governing[0]["spec"]["ingress"]
            if {"port": "grpc", "protocol": "TCP"} in rule["ports"]
        ]
        assert any(
            peer["podSelector"]["matchLabels"].items() <= gateway.items()
            for rule in grpc_rules
            for peer in rule["from"]
        ), f"the gateway cannot reach pool {pool}"


def test_helm_test_and_notes_cover_every_model() -> None:
    pod = render(scenario("two-models")).one("Pod", "tandem-test-embeddings")
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["MODELS"] == "all-MiniLM-L6-v2,all-MiniLM-L6-v2-int8"
    text = notes()
    assert "model    all-MiniLM-L6-v2 (fp32): pool fp32, tandem-core-headless:50051" in text
    assert "model    all-MiniLM-L6-v2-int8 (int8): pool int8, tandem-core-int8-headless" in text


@pytest.mark.parametrize(
    ("models", "complaint"),
    [
        ([{"name": "a", "precision": "fp32"}, {"name": "a", "precision": "int8"}], "named"),
        ([{"name": "a", "precision": "int8"}, {"name": "b", "precision": "int8"}], "both serve"),
        (
            [
                {"name": "a", "precision": "fp32", "modelId": "m"},
                {"name": "b", "precision": "int8", "modelId": "m"},
            ],
            "both serve",
        ),
        ([{"name": "a", "precision": "fp16"}], "schema"),
        ([{"name": "a"}], "schema"),
        ([{"name": "Fp32", "precision": "fp32"}], "schema"),
        ([{"name": "a-very-long-pool-name", "precision": "fp32"}], "schema"),
        ([{"name": "metrics", "precision": "fp32"}], "schema"),
        ([{"name": "a", "precision": "fp32", "modelId": "x,y=z"}], "schema"),
        ([{"name": "a", "precision": "fp32", "capacity": {"maxTextsPerRequest": 8}}], "schema"),
        ([{"name": "a", "precision": "fp32", "image": {"repository": "x"}}], "schema"),
        ([{"name": "a", "precision": "fp32", "capacity": {"cpu": 2}}], "schema"),
        ([], "schema"),
    ],
    ids=str,
)
def test_bad_entries_are_refused(models: list[dict[str, Any]], complaint: str) -> None:
    assert complaint in render_error(values={"models": models})


def test_a_pools_refused_layout_names_the_pool() -> None:
    message = render_error(
        values={
            "models": [
                {"name": "fp32", "precision": "fp32"},
                {"name": "int8", "precision": "int8", "capacity": {"cpus": 1, "workers": 3}},
            ]
        }
    )
    assert "models[int8]: core.capacity" in message
    assert "CPU threads" in message


def test_long_names_fit_with_many_pools() -> None:
    rendered = render(
        values={
            "models": [
                {"name": "fp32", "precision": "fp32"},
                {"name": "sixteen-chars-xx", "precision": "int8"},
            ]
        },
        release="a-very-long-release-name-for-a-team-that-likes-words",
    )
    names = [d["metadata"]["name"] for d in rendered.docs]
    assert len(set((d["kind"], d["metadata"]["name"]) for d in rendered.docs)) == len(names)
    assert all(len(n) <= 63 for n in names), [n for n in names if len(n) > 63]
    assert any(n.endswith("-core-sixteen-chars-xx-headless") for n in names)
