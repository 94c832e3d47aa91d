"""Helpers for the Kubernetes e2e suite: the release under test, port-forwards,
reads through the API server's pod proxy, and in-cluster load runs.

Every wait here is bounded. Test traffic reaches the cluster only through
127.0.0.1: `kubectl port-forward` and the API server (whose address the
kubeconfig names) proxying to pods of the namespace under test.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
from kubernetes import client, watch
from kubernetes.client import V1Pod
from kubernetes.stream import stream

HERE = Path(__file__).resolve().parent

# The label the chart puts on each core pool's pods, Services and selectors
# (deploy/helm/tandem/templates/_helpers.tpl, tandem.selectorLabels).
POOL_LABEL = "tandem/pool"
# `pool=ALL_POOLS` selects the cores of every pool; the default (None) selects
# the first pool's, the one the single-model tests exercise.
ALL_POOLS = "*"


# What the namespace's Pod Security "restricted" profile demands of the
# suite's own pods (load generator, OTLP sink), like the chart's pods.
RESTRICTED_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll predicate until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (client.ApiException, OSError, httpx.TransportError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@dataclass(frozen=True)
class Pool:
    """One core pool of the release: its name (the tandem/pool label) and the model
    the gateway routes to it."""

    name: str
    model: str


def merged(shared: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The chart's pool merge (_pools.tpl, tandem.mergeInto): maps merge key by key,
    anything else and a resources block replace the shared value."""
    out = json.loads(json.dumps(shared))
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "resources":
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Release:
    """The Helm release under test and the cluster it runs in."""

    namespace: str
    name: str
    helm: str
    kubectl: str
    chart: Path
    api: client.ApiClient
    core: client.CoreV1Api = field(init=False)
    apps: client.AppsV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    # -- names and objects -------------------------------------------------
    def pools(self) -> list[Pool]:
        """The core pools, in the order of the values' `models` list; each one's model
        is the one the gateway's TANDEM_GATEWAY_UPSTREAM_POOLS routes to it."""
        names = [m["name"] for m in self.values()["models"]]
        gateway = self.core.read_namespaced_config_map(
            self.deployment_name("gateway"), self.namespace
        )
        pairs = gateway.data["TANDEM_GATEWAY_UPSTREAM_POOLS"].split(",")
        models = [p.split("=", 1)[0] for p in pairs]
        assert len(models) == len(names), (names, models)
        return [Pool(name, model) for name, model in zip(names, models, strict=True)]

    def default_pool(self) -> Pool:
        return self.pools()[0]

    def pool_values(self, pool: str) -> dict[str, Any]:
        """The release's values as the chart renders the pool: core.* with the pool's
        overrides, and its precision as core.settings.precision."""
        values = self.values()
        (entry,) = [m for m in values["models"] if m["name"] == pool]
        override = {k: v for k, v in entry.items() if k not in ("name", "precision", "modelId")}
        core = merged(values["core"], override)
        core["settings"]["precision"] = entry["precision"]
        return {**values, "core": core}

    def selector(self, component: str, pool: str | None = None) -> str:
        """Label selector of a component's pods; for the core, of one pool's (the
        first's when pool is None) or of every pool's (ALL_POOLS)."""
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"
        if component == "core" and pool != ALL_POOLS:
            selector += f",{POOL_LABEL}={pool or self.values()['models'][0]['name']}"
        return selector

    def deployment_name(self, component: str, pool: str | None = None) -> str:
        items = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=self.selector(component, pool)
        ).items
        assert len(items) == 1, (
            f"expected one {component} Deployment, found {[d.metadata.name for d in items]}"
        )
        return str(items[0].metadata.name)

    def service_name(self, component: str, headless: bool = False, pool: str | None = None) -> str:
        services = self.core.list_namespaced_service(
            self.namespace, label_selector=self.selector(component, pool)
        ).items
        for s in services:
            is_headless = s.spec.cluster_ip == "None"
            if is_headless == headless and not s.metadata.name.endswith("-metrics"):
                return str(s.metadata.name)
        kind = "headless " if headless else ""
        names = [s.metadata.name for s in services]
        raise AssertionError(f"no {kind}{component} Service in {names}")

    def pods(
        self, component: str, include_terminating: bool = False, pool: str | None = None
    ) -> list[V1Pod]:
        items = self.core.list_namespaced_pod(
            self.namespace, label_selector=self.selector(component, pool)
        ).items
        if not include_terminating:
            items = [p for p in items if p.metadata.deletion_timestamp is None]
        return sorted(items, key=lambda p: p.metadata.name)

    def values(self) -> dict[str, Any]:
        """The release's computed values (chart defaults merged with the user's)."""
        out = self.run_helm("get", "values", self.name, "--all", "-o", "json")
        result: dict[str, Any] = json.loads(out)
        return result

    def revision(self) -> int:
        return int(json.loads(self.run_helm("status", self.name, "-o", "json"))["version"])

    def run_helm(self, *args: str, timeout: float = 900) -> str:
        cmd = [self.helm, *args, "--namespace", self.namespace]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    # -- state -------------------------------------------------------------
    def settled(self, timeout: float = 300) -> None:
        """Every Deployment of the release rolled out, and no pod terminating or unready."""

        def done() -> bool:
            for d in self.apps.list_namespaced_deployment(
                self.namespace, label_selector=f"app.kubernetes.io/instance={self.name}"
            ).items:
                s = d.status
                want = d.spec.replicas or 0
                if (s.observed_generation or 0) < d.metadata.generation:
                    return False
                if (
                    (s.updated_replicas or 0) != want
                    or (s.ready_replicas or 0) != want
                    or (s.replicas or 0) != want
                ):
                    return False
            pods = self.core.list_namespaced_pod(
                self.namespace, label_selector=f"app.kubernetes.io/instance={self.name}"
            ).items
            return all(
                p.metadata.deletion_timestamp is None
                and (p.status.phase == "Succeeded" or is_ready(p))
                for p in pods
                if p.metadata.labels.get("app.kubernetes.io/component") in ("core", "gateway")
            )

        wait_for(f"release {self.name} to settle", done, timeout)

    def serving(self, timeout: float = 60) -> None:
        """Every gateway pod answers an embedding request for every model (through a
        port-forward)."""
        port = int(self.values()["gateway"]["service"]["port"])
        models = [p.model for p in self.pools()]
        for pod in self.pods("gateway"):
            with PortForward(self, f"pod/{pod.metadata.name}", port) as pf:

                def answers(url: str = pf.url) -> bool:
                    return all(
                        httpx.post(
                            f"{url}/v1/embeddings",
                            json={"model": model, "input": "serving?"},
                            timeout=10,
                        ).status_code
                        == 200
                        for model in models
                    )

                wait_for(f"{pod.metadata.name} to answer for {models}", answers, timeout)

    def restart(self, component: str, pool: str | None = None) -> None:
        """`kubectl rollout restart`, then wait for the rollout."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                }
            }
        }
        self.apps.patch_namespaced_deployment(
            self.deployment_name(component, pool), self.namespace, patch
        )
        self.settled()

    def scale(self, component: str, replicas: int, pool: str | None = None) -> None:
        self.apps.patch_namespaced_deployment_scale(
            self.deployment_name(component, pool), self.namespace, {"spec": {"replicas": replicas}}
        )

    # -- reads through the API server's pod proxy --------------------------------
    def working_sets(self, container: str, pool: str | None = None) -> dict[str, int]:
        """Each pod's `container` memory working set (bytes), from the kubelet's summary
        API; for the core, of one pool's pods (as in `pods`)."""
        out: dict[str, int] = {}
        pods = self.pods(container, pool=pool)
        names = {p.metadata.name for p in pods}
        for node in {p.spec.node_name for p in pods}:
            response = self.core.connect_get_node_proxy_with_path(
                node, "stats/summary", _request_timeout=15, _preload_content=False
            )
            for pod in json.loads(response.data).get("pods", []):
                if pod["podRef"]["namespace"] != self.namespace:
                    continue
                if pod["podRef"]["name"] not in names:
                    continue
                for c in pod.get("containers", []):
                    if c["name"] == container and "memory" in c:
                        out[pod["podRef"]["name"]] = int(c["memory"].get("workingSetBytes", 0))
        return out

    def pod_get(self, pod: str, port: int, path: str) -> str:
        text: str = self.core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:{port}", self.namespace, path.lstrip("/"), _request_timeout=15
        )
        return text

    def exec(self, pod: str, command: list[str]) -> str:
        out: str = stream(
            self.core.connect_get_namespaced_pod_exec,
            pod,
            self.namespace,
            command=command,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _request_timeout=30,
        )
        return out


class PeakMemory:
    """Samples the working set of a component's containers once a second; keeps each pod's peak.

    The kubelet refreshes its stats every ~10 s, so short spikes can be missed:
    a peak is a lower bound, which is why the tests also assert no restart and
    no OOM kill, which the kernel reports however short the spike.
    """

    def __init__(self, release: Release, component: str, pool: str | None = None) -> None:
        self.release = release
        self.component = component
        self.pool = pool
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=20)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                for pod, ws in self.release.working_sets(self.component, self.pool).items():
                    self.peaks[pod] = max(self.peaks.get(pod, 0), ws)
            except Exception:  # a missed sample is only a missed sample
                pass
            self._stop.wait(1)


def is_ready(pod: V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


# Waiting reasons no amount of waiting fixes: the cluster has no registry, so
# an image that is not in the node's containerd never arrives.
_HOPELESS = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
             "CreateContainerConfigError", "CreateContainerError"}  # fmt: skip


def pod_report(release: Release, name: str, log_lines: int = 20) -> str:
    """What `kubectl describe` and `kubectl logs --tail` would say of one pod:
    phase, conditions, each container's state, the pod's events and its last
    log lines. A wait that fails on a pod says why with this, because the
    pod is deleted in the test's cleanup before CI's diagnostics run."""
    r, lines = release, [f"pod {release.namespace}/{name}:"]
    try:
        pod = r.core.read_namespaced_pod(name, r.namespace)
    except client.ApiException as err:
        return f"pod {r.namespace}/{name}: cannot be read ({err.status} {err.reason})"
    status = pod.status
    lines.append(f"  phase {status.phase}, node {pod.spec.node_name or '(not scheduled)'}")
    for c in status.conditions or []:
        lines.append(f"  condition {c.type}={c.status} {c.reason or ''} {c.message or ''}".rstrip())
    for cs in status.container_statuses or []:
        state = cs.state
        if state.waiting:
            now = f"waiting: {state.waiting.reason} {state.waiting.message or ''}".rstrip()
        elif state.terminated:
            t = state.terminated
            now = f"terminated: {t.reason} (exit {t.exit_code}) {t.message or ''}".rstrip()
        else:
            now = "running"
        lines.append(f"  container {cs.name} ({cs.image}): {now}, restarts {cs.restart_count}")
    events = r.core.list_namespaced_event(
        r.namespace, field_selector=f"involvedObject.kind=Pod,involvedObject.name={name}"
    ).items
    for e in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or "")):
        lines.append(f"  event {e.type} {e.reason} (x{e.count or 1}): {e.message}")
    try:
        log = r.core.read_namespaced_pod_log(name, r.namespace, tail_lines=log_lines)
        lines += [f"  log: {line}" for line in log.splitlines()]
    except client.ApiException as err:
        lines.append(f"  log: none ({err.status} {err.reason})")
    return "\n".join(lines)


def wait_for_pod_ready(release: Release, name: str, timeout: float) -> V1Pod:
    """Wait for one pod to be Ready; fail at once if it cannot become so (its
    image is missing), and in any failure say why with pod_report."""

    def ready() -> V1Pod | None:
        pod = release.core.read_namespaced_pod(name, release.namespace)
        waiting = {
            cs.state.waiting.reason
            for cs in pod.status.container_statuses or []
            if cs.state and cs.state.waiting
        }
        if waiting & _HOPELESS or pod.status.phase in ("Failed", "Succeeded"):
            raise AssertionError(f"{name} will never be ready\n{pod_report(release, name)}")
        return pod if is_ready(pod) else None

    try:
        return wait_for(f"{name} to be ready", ready, timeout)
    except TimeoutError as err:
        raise TimeoutError(f"{err}\n{pod_report(release, name)}") from None


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (Prometheus text format)."""
    total = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


class PortForward:
    """`kubectl port-forward` to a pod or Service on a free port of 127.0.0.1."""

    def __init__(self, release: Release, target: str, remote_port: int) -> None:
        self.release = release
        self.target = target
        self.remote_port = remote_port
        self.process: subprocess.Popen[str] | None = None
        self.local_port = 0

    def __enter__(self) -> Self:
        self.process = subprocess.Popen(
            [
                self.release.kubectl,
                "port-forward",
                "--namespace",
                self.release.namespace,
                "--address",
                "127.0.0.1",
                self.target,
                f":{self.remote_port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
            if m:
                self.local_port = int(m.group(1))
                # Keep draining kubectl's output so it never blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        self.__exit__(None, None, None)
        raise RuntimeError(f"port-forward to {self.target} failed: {''.join(lines)}")

    def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"


@dataclass
class LoadResult:
    ticks: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(self.summary["outcomes"])

    @property
    def requests(self) -> int:
        return int(self.summary["requests"])

    @property
    def failed(self) -> int:
        return self.requests - self.outcomes.get("ok", 0)

    def model_outcomes(self, model: str) -> dict[str, int]:
        """One model's outcomes (the run cycles through its --model list)."""
        return dict(self.summary["models"].get(model, {}))

    def model_failed(self, model: str) -> int:
        outcomes = self.model_outcomes(model)
        return sum(outcomes.values()) - outcomes.get("ok", 0)

    def ok_rate(self, start_ts: float, end_ts: float) -> float:
        """Successful requests per second between two wall-clock times (whole ticks)."""
        ticks = [t for t in self.ticks if start_ts <= t["ts"] and t["ts"] + 1 <= end_ts]
        if not ticks:
            return 0.0
        return sum(t["outcomes"].get("ok", 0) for t in ticks) / len(ticks)

    def latency_ms(self, start_ts: float, end_ts: float, quantile: float) -> float:
        """A latency quantile of the successes that ended in [start_ts, end_ts)."""
        window = sorted(
            ms for t in self.ticks if start_ts <= t["ts"] < end_ts for ms in t.get("ok_ms", [])
        )
        if not window:
            return float("nan")
        return float(window[min(len(window) - 1, int(quantile * len(window)))])

    def zero_ok_seconds(self, start_ts: float, end_ts: float) -> int:
        return sum(
            1
            for t in self.ticks
            if start_ts <= t["ts"] and t["ts"] + 1 <= end_ts and not t["outcomes"].get("ok")
        )


class LoadRun:
    """loadgen.py in a pod of the core image, against the release's gateway Service.

    Use as a context manager: the pod starts on enter and its output is
    followed from then on; `wait_steady()` waits until requests succeed;
    `stop()` ends the run early (SIGTERM: in-flight requests finish);
    `result()` waits for the run's summary. The pod and its ConfigMap are
    deleted on exit.
    """

    def __init__(
        self,
        release: Release,
        *,
        duration: float,
        concurrency: int,
        texts: int = 2,
        words: int = 12,
        timeout: float = 20,
        max_requests: int = 50_000,
        shape: str = "texts",
        models: list[str] | None = None,
        cpu: str = "100m",
        rate: float = 0.0,
    ) -> None:
        self.release = release
        self.name = f"e2e-load-{secrets.token_hex(3)}"
        self.duration = duration
        self.timeout = timeout
        self.lines: list[dict[str, Any]] = []
        self._follower: threading.Thread | None = None
        port = release.values()["gateway"]["service"]["port"]
        self.args = [
            f"--url=http://{release.service_name('gateway')}:{port}/v1/embeddings",
            f"--concurrency={concurrency}",
            f"--duration={duration}",
            f"--max-requests={max_requests}",
            f"--texts={texts}",
            f"--words={words}",
            f"--timeout={timeout}",
            f"--run-id={self.name}",
            f"--shape={shape}",
            f"--rate={rate}",
            # Requests cycle through the models; default: the first pool's.
            *(f"--model={m}" for m in (models or [release.default_pool().model])),
        ]
        self.cpu = cpu

    def __enter__(self) -> Self:
        r = self.release
        container = r.pods("core")[0].spec.containers[0]
        r.core.create_namespaced_config_map(
            r.namespace,
            {
                "metadata": {"name": self.name},
                "data": {"loadgen.py": (HERE / "loadgen.py").read_text()},
            },
        )
        pod = {
            "metadata": {"name": self.name, "labels": {"app.kubernetes.io/part-of": "tandem-e2e"}},
            "spec": {
                "restartPolicy": "Never",
                "activeDeadlineSeconds": int(self.duration) + 180,
                "terminationGracePeriodSeconds": int(self.timeout) + 15,
                "automountServiceAccountToken": False,
                "securityContext": RESTRICTED_POD_SECURITY,
                "containers": [
                    {
                        "name": "load",
                        "image": container.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "/loadgen/loadgen.py", *self.args],
                        "resources": {
                            "requests": {"cpu": self.cpu, "memory": "64Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": RESTRICTED_CONTAINER_SECURITY,
                        "volumeMounts": [
                            {"name": "script", "mountPath": "/loadgen", "readOnly": True}
                        ],
                    }
                ],
                "volumes": [{"name": "script", "configMap": {"name": self.name}}],
            },
        }
        r.core.create_namespaced_pod(r.namespace, pod)

        def running() -> bool:
            phase = r.core.read_namespaced_pod(self.name, r.namespace).status.phase
            assert phase != "Failed", f"{self.name} failed to start"
            return bool(phase in ("Running", "Succeeded"))

        wait_for(f"{self.name} to run", running, 120)
        self._follower = threading.Thread(target=self._follow, daemon=True)
        self._follower.start()
        return self

    def _follow(self) -> None:
        """Collect the pod's output as it is written, until the container ends."""
        r = self.release
        try:
            resp = r.core.read_namespaced_pod_log(
                self.name,
                r.namespace,
                follow=True,
                _preload_content=False,
                _request_timeout=(10, self.duration + 300),
            )
            buffer = b""
            for chunk in resp.stream(4096):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    try:
                        self.lines.append(json.loads(line))
                    except ValueError:
                        continue
        except Exception:
            pass

    def __exit__(self, *exc: object) -> None:
        r = self.release
        for delete in (r.core.delete_namespaced_pod, r.core.delete_namespaced_config_map):
            try:
                delete(self.name, r.namespace, grace_period_seconds=0)
            except client.ApiException as e:
                if e.status != 404:
                    raise

    def ticks(self) -> list[dict[str, Any]]:
        return [e for e in list(self.lines) if e.get("event") == "tick"]

    def wait_steady(self, seconds: int = 5, timeout: float = 120) -> float:
        """Wait until `seconds` consecutive ticks had successes; return the wall time."""

        def steady() -> float | None:
            ticks = self.ticks()
            if len(ticks) >= seconds and all(t["outcomes"].get("ok") for t in ticks[-seconds:]):
                return time.time()
            return None

        return float(wait_for(f"steady load from {self.name}", steady, timeout, interval=0.5))

    def so_far(self) -> LoadResult:
        """The ticks printed so far (rates and latencies of a window of a running load)."""
        return LoadResult(self.ticks(), {})

    def stop(self) -> None:
        """SIGTERM: the load ends after its in-flight requests."""
        self.release.core.delete_namespaced_pod(self.name, self.release.namespace)

    def result(self) -> LoadResult:
        def summary() -> dict[str, Any] | None:
            done = [e for e in list(self.lines) if e.get("event") == "done"]
            return done[-1] if done else None

        try:
            done = wait_for(
                f"the summary of {self.name}", summary, self.duration + self.timeout + 120
            )
        except TimeoutError:
            raise AssertionError(
                f"{self.name} printed no summary; last output: {self.lines[-5:]}"
            ) from None
        return LoadResult(self.ticks(), done)


@contextmanager
def watching_pods(release: Release, component: str) -> Iterator[list[tuple[float, str, V1Pod]]]:
    """Record (receive time, event type, pod) for every watch event of the component's pods."""
    events: list[tuple[float, str, V1Pod]] = []
    w = watch.Watch()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                for ev in w.stream(
                    release.core.list_namespaced_pod,
                    release.namespace,
                    label_selector=release.selector(component),
                    timeout_seconds=5,
                ):
                    events.append((time.time(), ev["type"], ev["object"]))
                    if stop.is_set():
                        break
            except Exception:
                time.sleep(0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield events
    finally:
        stop.set()
        w.stop()
        thread.join(timeout=10)
