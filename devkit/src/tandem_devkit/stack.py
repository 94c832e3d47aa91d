#!/usr/bin/env python3
"""Start the Tandem stack on localhost: one Python core per model, then the Go gateway.

`make run` runs this; the end-to-end tests import it, so what they test is
exactly how a newcomer starts the stack. Standard library only.

The models are the precisions of the built model directory: the fp32 core
serves all-MiniLM-L6-v2, the int8 core all-MiniLM-L6-v2-int8 (both by
default; --models picks). Each core is its own process on its own ports, and
the gateway gets one pool per model (TANDEM_GATEWAY_UPSTREAM_POOLS), keyed by
the name the core itself reports, so no model name is typed here.

Each service is a child process in its own process group. The launcher waits
for every core's /readyz (model loaded and warmed) before starting the
gateway, then for the gateway's /readyz (it sees a SERVING core). On Ctrl-C
or SIGTERM it sends SIGTERM to the gateway first (the edge drains), then to
the cores, and exits once all have stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # devkit/src/tandem_devkit/stack.py


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (for tests; tiny race accepted)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status code of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class ManagedProcess:
    """A child process with a readiness URL and a log file."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.argv),
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the launcher, not the children
        )
        log.close()
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} before it was ready; "
                    f"last log lines:\n{self.tail()}"
                )
            if http_status(self.ready_url) == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout_s:.0f} s:\n{self.tail()}")

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> int:
        """Wait for exit; kill after the timeout. Returns the exit code."""
        assert self.process is not None
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.process is None:
            return None
        self.terminate()
        return self.wait(timeout_s)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class CorePorts:
    """The three ports of one core."""

    grpc: int
    http: int
    metrics: int

    @classmethod
    def free(cls) -> CorePorts:
        return cls(free_port(), free_port(), free_port())


# make run's fixed ports: fp32 where a single core always listened, int8 next to it.
# make run OBSERVE=1's Prometheus; not 9090, which the gateway's admin listener has.
OBSERVE_PORT = 9092
DEFAULT_CORE_PORTS = {"fp32": CorePorts(50051, 8000, 9100), "int8": CorePorts(50052, 8001, 9101)}


@dataclass(frozen=True)
class StackPorts:
    core_grpc: int = 50051
    core_http: int = 8000
    gateway_http: int = 8080
    gateway_admin: int = 9090
    core_metrics: int = 9100  # the core's /metrics, apart from its API

    @classmethod
    def free(cls) -> StackPorts:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())

    @property
    def core(self) -> CorePorts:
        """The first (fp32) core's ports."""
        return CorePorts(self.core_grpc, self.core_http, self.core_metrics)


def core_process(
    ports: StackPorts | CorePorts,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    name: str = "core",
) -> ManagedProcess:
    """A core on these ports; name tells several apart (and names the log).

    Its precision (which model it serves) is TANDEM_CORE_PRECISION in env.
    """
    core = ports.core if isinstance(ports, StackPorts) else ports
    return ManagedProcess(
        name=name,
        argv=[sys.executable, "-m", "tandem", "serve"],
        env={
            "TANDEM_CORE_GRPC_PORT": str(core.grpc),
            "TANDEM_CORE_HTTP_PORT": str(core.http),
            "TANDEM_CORE_METRICS_PORT": str(core.metrics),
            **(env or {}),
        },
        ready_url=f"http://127.0.0.1:{core.http}/readyz",
        log_path=log_dir / f"{name}.log",
    )


def precision_core(
    precision: str, ports: CorePorts, log_dir: Path, env: Mapping[str, str] | None = None
) -> ManagedProcess:
    """The core serving one precision's model, named core-<precision>."""
    return core_process(
        ports,
        log_dir,
        env={"TANDEM_CORE_PRECISION": precision, **(env or {})},
        name=f"core-{precision}",
    )


def served_model(core_http: int, timeout_s: float = 5.0) -> str:
    """The name a ready core serves, from its own /v1/model: its first alias
    (all-MiniLM-L6-v2-int8), else its id. The gateway's pool is keyed by it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{core_http}/v1/model", timeout=timeout_s) as r:
        info = json.load(r)
    aliases = info.get("aliases") or []
    return str(aliases[0] if aliases else info["model_id"])


def pools_setting(pools: Mapping[str, int]) -> str:
    """TANDEM_GATEWAY_UPSTREAM_POOLS for models served on these gRPC ports."""
    return ",".join(f"{model}=dns:///127.0.0.1:{port}" for model, port in pools.items())


def gateway_process(
    binary: Path,
    ports: StackPorts,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    name: str = "gateway",
    pools: Mapping[str, int] | None = None,
) -> ManagedProcess:
    """The gateway: one pool per entry of pools (model -> core gRPC port), or,
    without pools, the single core on ports.core_grpc."""
    upstream = (
        {"TANDEM_GATEWAY_UPSTREAM_POOLS": pools_setting(pools)}
        if pools
        else {"TANDEM_GATEWAY_UPSTREAM_TARGET": f"dns:///127.0.0.1:{ports.core_grpc}"}
    )
    return ManagedProcess(
        name=name,
        argv=[str(binary)],
        env={
            "TANDEM_GATEWAY_LISTEN_ADDR": f"127.0.0.1:{ports.gateway_http}",
            "TANDEM_GATEWAY_ADMIN_ADDR": f"127.0.0.1:{ports.gateway_admin}",
            **upstream,
            # The drain delay exists for Kubernetes endpoint removal; on one
            # machine nothing routes around the gateway, so stop at once.
            "TANDEM_GATEWAY_DRAIN_DELAY": "0s",
            **(env or {}),
        },
        ready_url=f"http://127.0.0.1:{ports.gateway_http}/readyz",
        log_path=log_dir / f"{name}.log",
    )


def _parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The arguments, and the precisions to serve (validated)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-bin", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, default=REPO / ".cache" / "run")
    parser.add_argument(
        "--traces", action="store_true", help="collect traces and print each request's tree"
    )
    parser.add_argument(
        "--observe",
        type=Path,
        metavar="PROMETHEUS_BIN",
        help=f"also start this Prometheus on 127.0.0.1:{OBSERVE_PORT}, scraping every service",
    )
    parser.add_argument(
        "--rules",
        type=Path,
        action="append",
        default=[],
        help="with --observe: a rule file (the chart's alerts) for it to evaluate",
    )
    parser.add_argument(
        "--models",
        default=",".join(PRECISIONS),
        help="comma-separated precisions to serve, one core each (default: fp32,int8)",
    )
    args = parser.parse_args(argv)
    precisions = [p.strip() for p in args.models.split(",") if p.strip()]
    unknown = set(precisions) - set(PRECISIONS)
    if not precisions or unknown or len(set(precisions)) != len(precisions):
        parser.error(f"--models: want a list of {', '.join(PRECISIONS)}, each once")
    return args, precisions


def main(argv: Sequence[str] | None = None) -> int:
    args, precisions = _parse_args(argv)

    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    ports = StackPorts()
    tracing_env: dict[str, str] = {}
    printer = None
    if args.traces:
        printer = TracePrinter().start()
        tracing_env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": printer.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "500",
        }
    cores = {
        p: precision_core(p, DEFAULT_CORE_PORTS[p], args.log_dir, env=tracing_env)
        for p in precisions
    }
    started: list[ManagedProcess] = []
    try:
        # All cores load at once; each is waited for before the gateway starts.
        for core in cores.values():
            print(f"starting {core.name} (log: {core.log_path})", flush=True)
            started.append(core.start())
        for core in cores.values():
            core.wait_ready(180)
        models = {p: served_model(DEFAULT_CORE_PORTS[p].http) for p in precisions}
        gateway = gateway_process(
            args.gateway_bin,
            ports,
            args.log_dir,
            env=tracing_env,
            pools={models[p]: DEFAULT_CORE_PORTS[p].grpc for p in precisions},
        )
        print(f"starting {gateway.name} (log: {gateway.log_path})", flush=True)
        started.append(gateway.start())
        gateway.wait_ready(60)
        observers, observe_note = _observe(args, ports, models)
        started += observers
        print(_banner(ports, models) + observe_note, flush=True)
        while not stop_requested:
            if printer is not None:
                printer.print_new()
            for service in started:
                if service.process is not None and service.process.poll() is not None:
                    print(
                        f"{service.name} exited ({service.process.returncode}):\n{service.tail()}"
                    )
                    return 1
            time.sleep(0.2)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: could not ask a core which model it serves: {exc}", file=sys.stderr)
        return 1
    finally:
        for service in reversed(started):
            print(f"stopping {service.name}", flush=True)
            code = service.stop()
            print(f"{service.name} exited with {code}", flush=True)
        if printer is not None:
            printer.stop()


def _observe(
    args: argparse.Namespace, ports: StackPorts, models: Mapping[str, str]
) -> tuple[list[ManagedProcess], str]:
    """With --observe, a Prometheus scraping the gateway and every core every 5 s
    (make run OBSERVE=1), and what to tell the user about it."""
    if args.observe is None:
        return [], ""
    from tandem_devkit.prometheus import LocalPrometheus, ScrapeTarget, scrape_config  # noqa: PLC0415

    targets = [ScrapeTarget(f"127.0.0.1:{ports.gateway_admin}", "gateway")]
    targets += [
        ScrapeTarget(f"127.0.0.1:{DEFAULT_CORE_PORTS[p].metrics}", "core", pool=p) for p in models
    ]
    prometheus = LocalPrometheus(
        args.observe,
        port=OBSERVE_PORT,
        work_dir=args.log_dir / "prometheus",
        config=scrape_config(targets, interval_s=5, rule_files=args.rules),
    )
    print(f"starting prometheus (log: {prometheus.process.log_path})", flush=True)
    prometheus.start()
    return [prometheus.process], _observe_banner(models)


def _observe_banner(models: Mapping[str, str]) -> str:
    """Where Prometheus answers, and three of the dashboard's queries to try."""
    from tandem_devkit import dashboard  # noqa: PLC0415
    from tandem_devkit.prometheus import LOCAL_NAMESPACE, LOCAL_RELEASE  # noqa: PLC0415

    variables = {
        "namespace": LOCAL_NAMESPACE,
        "release": LOCAL_RELEASE,
        "model": next(iter(models.values())),
    }
    # The p99 through the gateway, the queue wait estimate (the scaling
    # signal) and the batch size: short queries that change under load.
    wanted = ("latency through the gateway", "scaling signal", "batch size (texts)")
    queries = dashboard.panel_queries(dashboard.load())
    examples = []
    for title in wanted:
        matches = [q for q in queries if q.panel.lower().startswith(title)]
        if matches:
            examples.append(matches[-1])
    api = f"http://127.0.0.1:{OBSERVE_PORT}/api/v1/query"
    lines = [
        f"Prometheus scrapes every service every 5 s: {api}",
        "(its HTTP API; the web UI is not built in). For Grafana, add it as a Prometheus",
        "data source and import deploy/helm/tandem/dashboards/tandem.json.",
        "Three of the dashboard's queries (send some requests first):",
    ]
    for query in examples:
        expr = " ".join(query.substituted(variables).split())
        lines.append(f"  # {query.panel}\n  curl -s {api} --data-urlencode 'query={expr}'; echo")
    return "\n".join(lines) + "\n"


class TracePrinter:
    """An OTLP receiver on loopback that prints each finished request's trace."""

    def __init__(self) -> None:
        from tandem_devkit.otlp_receiver import OtlpReceiver  # noqa: PLC0415 (needs grpcio: only with --traces)

        self._receiver = OtlpReceiver()
        self._printed: set[str] = set()

    @property
    def endpoint(self) -> str:
        return self._receiver.endpoint

    def start(self) -> TracePrinter:
        self._receiver.__enter__()
        print(
            f"collecting traces on {self.endpoint}; each request's trace prints below", flush=True
        )
        return self

    def print_new(self) -> None:
        from tandem_devkit.otlp_receiver import format_trace  # noqa: PLC0415

        spans = self._receiver.spans()
        settled = time.time_ns() - 1_000_000_000  # give the core's spans a second to arrive
        for span in spans:
            root = span.parent_span_id == "" and span.kind == "server"
            if root and span.trace_id not in self._printed and span.end_ns < settled:
                self._printed.add(span.trace_id)
                print(format_trace(spans, span.trace_id), flush=True)

    def stop(self) -> None:
        self._receiver.__exit__(None, None, None)


def _banner(ports: StackPorts, models: Mapping[str, str]) -> str:
    url = f"http://127.0.0.1:{ports.gateway_http}"
    rows = "\n".join(
        f"  {model:<24} core {p}: grpc 127.0.0.1:{DEFAULT_CORE_PORTS[p].grpc}, "
        f"http http://127.0.0.1:{DEFAULT_CORE_PORTS[p].http}/docs, "
        f"metrics 127.0.0.1:{DEFAULT_CORE_PORTS[p].metrics}/metrics"
        for p, model in models.items()
    )
    first = next(iter(models.values()))
    return f"""
Tandem is up.
  gateway  {url}  (OpenAI-compatible; metrics on 127.0.0.1:{ports.gateway_admin}/metrics)
models (the gateway routes each request by its "model"):
{rows}

Try it:
  curl -s {url}/v1/models; echo
  curl -s {url}/v1/embeddings -H 'Content-Type: application/json' \\
    -d '{{"model": "{first}", "input": "Hello from Tandem"}}' | head -c 300; echo

Ctrl-C stops them all. (make run TRACES=1 prints every request's trace here.)
"""


if __name__ == "__main__":
    raise SystemExit(main())
