"""The gateway fails clearly and never hangs when the core is gone or too slow."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from tandem_devkit.stack import StackPorts, core_process, free_port, gateway_process, http_status

from .conftest import Stack

MODEL = "all-MiniLM-L6-v2"


def _wait_live(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http_status(f"{url}/healthz") == 200:
            return
        time.sleep(0.05)
    raise TimeoutError(url)


def test_core_unreachable_is_503_fast(gateway_bin: Path, log_dir: Path) -> None:
    ports = StackPorts(
        core_grpc=free_port(), core_http=0, gateway_http=free_port(), gateway_admin=free_port()
    )
    gateway = gateway_process(gateway_bin, ports, log_dir, name="gateway-no-core").start()
    try:
        url = f"http://127.0.0.1:{ports.gateway_http}"
        _wait_live(url)
        assert http_status(f"{url}/readyz") == 503
        started = time.monotonic()
        reply = httpx.post(f"{url}/v1/embeddings", json={"model": MODEL, "input": "x"}, timeout=30)
        assert reply.status_code == 503, reply.text
        assert reply.json()["error"]["message"]
        assert time.monotonic() - started < 15
    finally:
        assert gateway.stop() == 0


def test_work_that_cannot_finish_in_time_is_refused_at_once(
    stack: Stack, gateway_bin: Path, log_dir: Path
) -> None:
    # A 50 ms budget per call against a request that needs seconds of
    # compute: the core knows its measured rate, so it refuses at once
    # (429 + Retry-After) instead of starting work that must end in a 504.
    gateway, ports = stack.extra_gateway(
        gateway_bin,
        log_dir,
        env={"TANDEM_GATEWAY_UPSTREAM_TIMEOUT": "50ms"},
        name="gateway-short-deadline",
    )
    try:
        gateway.wait_ready(30)
        url = f"http://127.0.0.1:{ports.gateway_http}"
        started = time.monotonic()
        reply = httpx.post(
            f"{url}/v1/embeddings",
            json={"model": MODEL, "input": ["word " * 300] * 256},
            timeout=30,
        )
        assert reply.status_code == 429, reply.text
        assert reply.json()["error"]["code"] == "upstream_overloaded", reply.text
        assert float(reply.headers["Retry-After"]) > 0
        assert time.monotonic() - started < 5
        # Nothing was queued for it: the core still serves the main gateway.
        ok = httpx.post(
            f"{stack.gateway_url}/v1/embeddings", json={"model": MODEL, "input": "x"}, timeout=30
        )
        assert ok.status_code == 200
    finally:
        assert gateway.stop() == 0


def test_hung_core_is_504_not_a_hang(gateway_bin: Path, log_dir: Path) -> None:
    """A core that stops answering (SIGSTOP) costs the caller its deadline, then 504."""
    ports = StackPorts.free()
    core = core_process(ports, log_dir, name="core-hung").start()
    gateway = None
    try:
        core.wait_ready(120)
        gateway = gateway_process(
            gateway_bin,
            ports,
            log_dir,
            env={"TANDEM_GATEWAY_UPSTREAM_TIMEOUT": "1s"},
            name="gateway-hung-core",
        ).start()
        gateway.wait_ready(30)
        url = f"http://127.0.0.1:{ports.gateway_http}"
        assert core.process is not None
        os.kill(core.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            reply = httpx.post(
                f"{url}/v1/embeddings", json={"model": MODEL, "input": "x"}, timeout=30
            )
            elapsed = time.monotonic() - started
        finally:
            os.kill(core.process.pid, signal.SIGCONT)
        assert reply.status_code == 504, reply.text
        assert elapsed < 10, f"504 after {elapsed:.1f} s for a 1 s upstream budget"
        # Resumed, the core serves again through the same gateway.
        ok = httpx.post(f"{url}/v1/embeddings", json={"model": MODEL, "input": "x"}, timeout=30)
        assert ok.status_code == 200, ok.text
    finally:
        codes = [gateway.stop()] if gateway is not None else []
        codes.append(core.stop())
    assert codes == [0] * len(codes), f"unclean exit: {codes}"
