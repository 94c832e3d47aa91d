"""End-to-end fixtures: the real cores and the real gateway as separate processes.

They are started with tandem_devkit.stack, the launcher behind `make run`, on
free loopback ports; logs go to tests/e2e/.logs/. The session's stack serves
both models (one core per precision, one gateway pool each), like `make run`;
``stack.core`` is the fp32 core, which the single-model tests use. It is
stopped with SIGTERM at the end and every process must exit 0.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tandem_devkit import chart_rules
from tandem_devkit.prometheus import LOCAL_NAMESPACE, LOCAL_RELEASE
from tandem_devkit.reference import load_reference
from tandem_devkit.stack import (
    PRECISIONS,
    CorePorts,
    ManagedProcess,
    StackPorts,
    free_port,
    gateway_process,
    precision_core,
    served_model,
)

REPO = Path(__file__).resolve().parents[2]
LOG_ROOT = Path(__file__).resolve().parent / ".logs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gateway-bin",
        default=str(REPO / "go-gateway" / "bin" / "tandem-gateway"),
        help="the gateway binary to test (make gateway builds it)",
    )
    parser.addoption(
        "--prometheus-bin",
        default=str(REPO / ".tools" / "bin" / "prometheus"),
        help="the Prometheus that evaluates the dashboard and alerts (make prometheus-tools)",
    )
    parser.addoption(
        "--helm-bin",
        default=str(REPO / ".tools" / "bin" / "helm"),
        help="helm, to render the chart's alert rules (make chart-tools)",
    )


@pytest.fixture(scope="session")
def gateway_bin(pytestconfig: pytest.Config) -> Path:
    path = Path(pytestconfig.getoption("--gateway-bin"))
    if not path.exists():
        pytest.fail(f"gateway binary {path} not found: run 'make gateway'")
    return path


def _tool(pytestconfig: pytest.Config, option: str, target: str) -> Path:
    path = Path(pytestconfig.getoption(option))
    if not path.exists():
        pytest.fail(f"{path} not found: run 'make {target}'")
    return path


@pytest.fixture(scope="session")
def prometheus_bin(pytestconfig: pytest.Config) -> Path:
    return _tool(pytestconfig, "--prometheus-bin", "prometheus-tools")


@pytest.fixture(scope="session")
def chart_rule_file(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's alert rules for a release named like the local scrape labels say."""
    helm = _tool(pytestconfig, "--helm-bin", "chart-tools")
    groups = chart_rules.render_groups(helm, namespace=LOCAL_NAMESPACE, release=LOCAL_RELEASE)
    return chart_rules.write_rule_file(groups, tmp_path_factory.mktemp("rules") / "rules.yaml")


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """Vectors made with the official sentence-transformers pipeline (../shared)."""
    try:
        return load_reference()
    except FileNotFoundError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def log_dir() -> Path:
    path = LOG_ROOT / time.strftime("%Y%m%d-%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Stack:
    """Both models' cores and the gateway in front of them."""

    def __init__(
        self,
        ports: StackPorts,
        core: ManagedProcess,
        gateway: ManagedProcess,
        *,
        cores: dict[str, ManagedProcess] | None = None,
        core_ports: dict[str, CorePorts] | None = None,
        models: dict[str, str] | None = None,
    ) -> None:
        """A gateway and its cores; a single-core stack (a test's own) gives only core."""
        self.ports = ports  # the gateway's, and the fp32 core's
        self.core = core  # the fp32 core
        self.gateway = gateway
        self.cores = cores or {"fp32": core}  # precision -> core process
        self.core_ports = core_ports or {"fp32": ports.core}  # precision -> its ports
        self.models = models or {}  # precision -> the name its pool is configured under

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway_http}"

    @property
    def core_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.core_http}"

    @property
    def core_grpc(self) -> str:
        return f"127.0.0.1:{self.ports.core_grpc}"

    def extra_gateway(
        self, gateway_bin: Path, log_dir: Path, *, env: dict[str, str], name: str
    ) -> tuple[ManagedProcess, StackPorts]:
        """Another gateway, with its own settings and free ports, in front of the fp32 core.

        Started, not yet ready: the caller waits and must stop it.
        """
        ports = StackPorts(
            core_grpc=self.ports.core_grpc,
            core_http=0,
            gateway_http=free_port(),
            gateway_admin=free_port(),
        )
        return gateway_process(gateway_bin, ports, log_dir, env=env, name=name).start(), ports


@pytest.fixture(scope="session")
def stack(gateway_bin: Path, log_dir: Path) -> Iterator[Stack]:
    gateway_ports = StackPorts.free()
    core_ports = {"fp32": gateway_ports.core, "int8": CorePorts.free()}
    cores = {p: precision_core(p, core_ports[p], log_dir) for p in PRECISIONS}
    gateway = None
    try:
        for core in cores.values():
            core.start()
        for core in cores.values():
            core.wait_ready(180)
        models = {p: served_model(core_ports[p].http) for p in PRECISIONS}
        gateway = gateway_process(
            gateway_bin,
            gateway_ports,
            log_dir,
            pools={models[p]: core_ports[p].grpc for p in PRECISIONS},
        ).start()
        gateway.wait_ready(60)
        yield Stack(
            gateway_ports,
            cores["fp32"],
            gateway,
            cores=cores,
            core_ports=core_ports,
            models=models,
        )
    finally:
        codes = {}
        if gateway is not None:
            codes["gateway"] = gateway.stop()
        # Stack.cores is this dict: a test that restarts a core
        # (test_models.py) puts the new process here, and it is stopped too.
        for precision, core in cores.items():
            codes[f"core-{precision}"] = core.stop()
    want = {"gateway": 0, **{f"core-{p}": 0 for p in PRECISIONS}}
    assert codes == want, f"unclean exit: {codes} (logs in {log_dir})"
