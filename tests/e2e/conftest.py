"""End-to-end fixtures: the real core and the real gateway as separate processes.

They are started with scripts/stack.py, the launcher behind `make run`, on
free loopback ports; logs go to tests/e2e/.logs/. The session's stack is
stopped with SIGTERM at the end and must exit 0.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from stack import (  # noqa: E402
    ManagedProcess,
    StackPorts,
    core_process,
    gateway_process,
)

LOG_ROOT = Path(__file__).resolve().parent / ".logs"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gateway-bin",
        default=str(REPO / "go-gateway" / "bin" / "tandem-gateway"),
        help="the gateway binary to test (make gateway builds it)",
    )


@pytest.fixture(scope="session")
def gateway_bin(pytestconfig: pytest.Config) -> Path:
    path = Path(pytestconfig.getoption("--gateway-bin"))
    if not path.exists():
        pytest.fail(f"gateway binary {path} not found: run 'make gateway'")
    return path


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """Vectors made with the official sentence-transformers pipeline (../shared)."""
    default = REPO.parent / "shared" / "reference" / "minilm-embeddings.json"
    path = Path(os.environ.get("TANDEM_REFERENCE_FILE", default))
    if not path.exists():
        pytest.fail(f"reference vectors not found at {path}; set TANDEM_REFERENCE_FILE")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="session")
def log_dir() -> Path:
    path = LOG_ROOT / time.strftime("%Y%m%d-%H%M%S")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Stack:
    def __init__(self, ports: StackPorts, core: ManagedProcess, gateway: ManagedProcess) -> None:
        self.ports = ports
        self.core = core
        self.gateway = gateway

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway_http}"

    @property
    def core_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.core_http}"

    @property
    def core_grpc(self) -> str:
        return f"127.0.0.1:{self.ports.core_grpc}"


@pytest.fixture(scope="session")
def stack(gateway_bin: Path, log_dir: Path) -> Iterator[Stack]:
    ports = StackPorts.free()
    core = core_process(ports, log_dir).start()
    gateway = None
    try:
        core.wait_ready(120)
        gateway = gateway_process(gateway_bin, ports, log_dir).start()
        gateway.wait_ready(60)
        yield Stack(ports, core, gateway)
    finally:
        codes = {}
        if gateway is not None:
            codes["gateway"] = gateway.stop()
        codes["core"] = core.stop()
    assert codes == {"gateway": 0, "core": 0}, f"unclean exit: {codes} (logs in {log_dir})"
