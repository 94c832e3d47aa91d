"""A real Prometheus on loopback that scrapes the local stack, and a small client for its HTTP API.

`make run OBSERVE=1` starts one next to the stack; the e2e suite starts one to
evaluate every dashboard query and alert expression against what the services
really export. The scrape configuration gives each target the labels of
docs/observability.md (namespace, release, component, tandem_pool), the same
ones the chart's ServiceMonitors and the CI cluster's Prometheus attach, so
the dashboard's queries run unchanged here.

The binary is the pinned one `make prometheus-tools` builds into .tools/bin.
Prometheus reads YAML, and JSON is YAML: the configuration is written as JSON
with the standard library.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem_devkit.stack import ManagedProcess

LOCAL_NAMESPACE = "local"
LOCAL_RELEASE = "tandem"


@dataclass(frozen=True)
class ScrapeTarget:
    """One /metrics endpoint of the stack."""

    address: str  # host:port
    component: str  # "core" or "gateway"
    pool: str = ""  # a core's pool (fp32, int8); empty for the gateway


class PrometheusError(RuntimeError):
    """The HTTP API answered with an error (a query that does not parse, say)."""


def scrape_config(
    targets: Iterable[ScrapeTarget],
    *,
    interval_s: float,
    rule_files: Sequence[Path] = (),
    namespace: str = LOCAL_NAMESPACE,
    release: str = LOCAL_RELEASE,
) -> dict[str, Any]:
    """A Prometheus configuration scraping targets with the shared label scheme."""
    interval = f"{interval_s:g}s"
    static_configs = []
    for target in targets:
        labels = {"namespace": namespace, "release": release, "component": target.component}
        if target.pool:
            labels["tandem_pool"] = target.pool
        static_configs.append({"targets": [target.address], "labels": labels})
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "tandem",
                "metrics_path": "/metrics",
                # OpenMetrics first: that is the format that carries exemplars.
                "scrape_protocols": ["OpenMetricsText1.0.0", "PrometheusText0.0.4"],
                "static_configs": static_configs,
            }
        ],
    }


def kubernetes_scrape_config(
    *, namespace: str, release: str, interval_s: float, rule_files: Sequence[str] = ()
) -> dict[str, Any]:
    """A configuration discovering one release's metrics endpoints in its
    namespace, as the chart's ServiceMonitors do: every Service of the release
    with a port named "metrics", its labels mapped to the shared scheme."""
    interval = f"{interval_s:g}s"
    service_label = "__meta_kubernetes_service_label_{}".format

    def copy(source: str, target: str) -> dict[str, Any]:
        return {"source_labels": [source], "target_label": target}

    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": list(rule_files),
        "scrape_configs": [
            {
                "job_name": "tandem",
                "scrape_protocols": ["OpenMetricsText1.0.0", "PrometheusText0.0.4"],
                "kubernetes_sd_configs": [
                    {"role": "endpointslice", "namespaces": {"names": [namespace]}}
                ],
                "relabel_configs": [
                    {
                        "source_labels": [service_label("app_kubernetes_io_instance")],
                        "regex": release,
                        "action": "keep",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                        "regex": "metrics",
                        "action": "keep",
                    },
                    copy("__meta_kubernetes_namespace", "namespace"),
                    copy(service_label("app_kubernetes_io_instance"), "release"),
                    copy(service_label("app_kubernetes_io_component"), "component"),
                    copy(service_label("tandem_pool"), "tandem_pool"),
                    copy("__meta_kubernetes_pod_name", "pod"),
                ],
            }
        ],
    }


class PrometheusAPI:
    """A client of Prometheus's HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def api(
        self, path: str, params: Mapping[str, str] | None = None, timeout_s: float = 10.0
    ) -> Any:
        """GET /api/v1/<path>; the `data` of a success, else PrometheusError."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=timeout_s) as r:
                body = json.load(r)
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(
                f"{path} {dict(params or {})}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate expr now; the result vector (or matrix) as returned."""
        data = self.api("query", {"query": expr})
        result = data["result"]
        # A scalar or string comes back as [time, value]: one "sample".
        return result if data["resultType"] in ("vector", "matrix") else [{"value": result}]

    def targets_up(self) -> dict[str, bool]:
        """Each active target's address and whether its last scrape worked."""
        data = self.api("targets", {"state": "active"})
        return {t["labels"]["instance"]: t["health"] == "up" for t in data["activeTargets"]}

    def wait_scraped(
        self, addresses: Iterable[str] | None = None, *, count: int = 0, timeout_s: float = 30.0
    ) -> None:
        """Until every address (or, without addresses, at least count targets)
        has been scraped successfully."""
        wanted = set(addresses or ())
        deadline = time.monotonic() + timeout_s
        up: dict[str, bool] = {}
        while time.monotonic() < deadline:
            up = self.targets_up()
            healthy = {address for address, ok in up.items() if ok}
            if wanted <= healthy and len(healthy) >= count:
                return
            time.sleep(0.2)
        raise TimeoutError(f"targets not all up after {timeout_s:.0f} s: {up}")

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups with each rule's health and last error."""
        return list(self.api("rules")["groups"])

    def evaluated_rules(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Every loaded rule, once each has been evaluated at least once."""
        deadline = time.monotonic() + timeout_s
        while True:
            rules = [rule for group in self.rule_groups() for rule in group["rules"]]
            pending = [r["name"] for r in rules if r.get("lastEvaluation", "").startswith("0001")]
            if not pending:
                return rules
            if time.monotonic() > deadline:
                raise TimeoutError(f"rules never evaluated in {timeout_s:.0f} s: {pending}")
            time.sleep(0.5)

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """The exemplars stored for the series of expr between start and end (unix s)."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        return list(self.api("query_exemplars", params))


class LocalPrometheus(PrometheusAPI):
    """A Prometheus process on 127.0.0.1, its TSDB in a directory of its own."""

    def __init__(
        self,
        binary: Path,
        *,
        port: int,
        work_dir: Path,
        config: Mapping[str, Any],
        retention: str = "2h",
    ) -> None:
        super().__init__(f"http://127.0.0.1:{port}")
        self.port = port
        work_dir.mkdir(parents=True, exist_ok=True)
        config_path = work_dir / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        self.process = ManagedProcess(
            name="prometheus",
            argv=[
                str(binary),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={work_dir / 'data'}",
                f"--storage.tsdb.retention.time={retention}",
                f"--web.listen-address=127.0.0.1:{port}",
                # Exemplars (trace ids on histogram buckets) are kept only
                # with this flag; /api/v1/query_exemplars reads them.
                "--enable-feature=exemplar-storage",
                "--log.level=warn",
            ],
            env={},
            ready_url=f"{self.url}/-/ready",
            log_path=work_dir / "prometheus.log",
        )

    def start(self, timeout_s: float = 60.0) -> LocalPrometheus:
        self.process.start()
        self.process.wait_ready(timeout_s)
        return self

    def stop(self) -> int | None:
        return self.process.stop(timeout_s=20.0)

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
