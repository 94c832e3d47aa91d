"""The core's lifecycle from the outside: readiness, SIGTERM under load, exit 0."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import grpc
import pytest
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc
from tandem_devkit.stack import StackPorts, core_process, http_status

TEXTS = [f"sentence number {i} about draining a server gracefully" for i in range(64)]


@pytest.fixture
def draining_core(log_dir: Path):  # type: ignore[no-untyped-def]
    ports = StackPorts.free()
    core = core_process(
        ports,
        log_dir / "draining-core",
        env={"TANDEM_CORE_DRAIN_DELAY_S": "1.0", "TANDEM_CORE_SHUTDOWN_GRACE_S": "15"},
    ).start()
    core.wait_ready(120)
    yield core, ports
    core.stop()


def test_sigterm_under_load_loses_no_accepted_request(draining_core) -> None:  # type: ignore[no-untyped-def]
    core, ports = draining_core
    outcomes: list[tuple[float, str]] = []  # (finish time, status name)
    sigterm_at: list[float] = []
    readiness_after_sigterm: list[int | None] = []

    async def load() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports.core_grpc}") as channel:
            stub = pb_grpc.EmbeddingServiceStub(channel)
            next_index = 0
            stop_at = time.monotonic() + 30

            async def caller() -> None:
                nonlocal next_index
                while next_index < 600 and time.monotonic() < stop_at:
                    i = next_index
                    next_index += 1
                    texts = TEXTS[i % 64 : i % 64 + 1 + i % 4]
                    try:
                        await stub.Embed(pb.EmbedRequest(texts=texts), timeout=20)
                        outcomes.append((time.monotonic(), "OK"))
                    except grpc.aio.AioRpcError as err:
                        outcomes.append((time.monotonic(), err.code().name))
                        if err.code() == grpc.StatusCode.UNAVAILABLE:
                            return  # the server refused: stop sending, like a client would

            async def terminate_midway() -> None:
                while len(outcomes) < 100:  # noqa: ASYNC110 - senders append without signalling
                    await asyncio.sleep(0.01)
                assert core.process is not None
                core.process.send_signal(signal.SIGTERM)
                sigterm_at.append(time.monotonic())
                await asyncio.sleep(0.3)
                readiness_after_sigterm.append(
                    await asyncio.to_thread(
                        http_status, f"http://127.0.0.1:{ports.core_http}/readyz"
                    )
                )

            await asyncio.gather(*(caller() for _ in range(16)), terminate_midway())

    asyncio.run(load())
    assert core.wait(30) == 0

    statuses = {status for _, status in outcomes}
    assert statuses <= {"OK", "UNAVAILABLE"}, statuses  # refused cleanly or answered, nothing else
    assert readiness_after_sigterm == [503]  # not ready at once
    served_while_draining = [t for t, s in outcomes if s == "OK" and t > sigterm_at[0] + 0.3]
    assert served_while_draining, "the drain delay should keep serving"

    # The core's own access log: every request it accepted finished "ok".
    records = [
        json.loads(line) for line in core.log_path.read_text().splitlines() if line.startswith("{")
    ]
    finished = [r["outcome"] for r in records if r.get("message") == "request"]
    assert finished
    assert set(finished) <= {"ok", "unavailable"}, set(finished)
    assert finished.count("ok") == [s for _, s in outcomes].count("OK")


def test_liveness_answers_before_readiness(log_dir: Path) -> None:
    """Ports bind before the model loads: /healthz answers while /readyz still says 503."""
    ports = StackPorts.free()
    core = core_process(ports, log_dir / "startup-core").start()
    seen: list[tuple[int | None, int | None]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pair = (
                http_status(f"http://127.0.0.1:{ports.core_http}/healthz", timeout=1),
                http_status(f"http://127.0.0.1:{ports.core_http}/readyz", timeout=1),
            )
            seen.append(pair)
            if pair[1] == 200:
                break
            time.sleep(0.005)
        assert seen[-1] == (200, 200)
        # Loading and warming the model takes far longer than one 5 ms poll,
        # so a live-but-not-ready answer must have been seen first.
        assert (200, 503) in seen
        assert all(h == 200 for h, r in seen if r is not None)
    finally:
        assert core.stop() == 0
