"""tandem.process.serve: start-up order and graceful shutdown, against a real core.

The model is real; the tests hold it at two points to look at the process in
between: ``_load_model`` (the model is loading) and every session's
``encode`` (warm-up batches, then in-flight requests, are running).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import core_settings

from tandem import process
from tandem.capacity import CapacityInputs, plan_capacity
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc
from tandem.model.interface import Session
from tandem.process import Ports
from tandem.settings import Settings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HeldSession:
    """A real session whose batches wait for ``gate`` before they run."""

    def __init__(self, inner: Session, gate: threading.Event) -> None:
        self._inner = inner
        self._gate = gate

    def encode(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        assert self._gate.wait(30), "the test never opened the encode gate"
        return self._inner.encode(rows)


class Held:
    """Gates on model loading and on every batch, opened by the test."""

    def __init__(self) -> None:
        self.loading = threading.Event()
        self.batches = threading.Event()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Held:
    gates = Held()
    load = process._load_model

    def held_load(*args: Any) -> tuple[Any, process.Sessions]:
        assert gates.loading.wait(30), "the test never let the model load"
        model, sessions = load(*args)
        wide = sessions.wide
        return model, process.Sessions(
            [HeldSession(session, gates.batches) for session in sessions.workers],
            HeldSession(wide, gates.batches) if wide is not None else None,
        )

    monkeypatch.setattr(process, "_load_model", held_load)
    return gates


class ServedCore:
    """process.serve on a thread of its own, observed from the moment it listens."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ports: Ports | None = None
        self.error: BaseException | None = None
        self._listening = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="served-core", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            listening: asyncio.Future[Ports] = self._loop.create_future()
            listening.add_done_callback(lambda f: self._on_listening(f.result()))
            await process.serve(
                self.settings, process_started=0.0, stop=self._stop, on_listening=listening
            )

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by start()
            self.error = exc
        finally:
            self._listening.set()

    def _on_listening(self, ports: Ports) -> None:
        self.ports = ports
        self._listening.set()

    def start(self) -> ServedCore:
        self._thread.start()
        assert self._listening.wait(30), "the core never bound its ports"
        assert self.error is None, self.error
        return self

    def stop(self) -> None:
        """Ask for a graceful stop (as SIGTERM does) without waiting for it."""
        assert self._loop is not None
        assert self._stop is not None
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: stopped
                self._loop.call_soon_threadsafe(self._stop.set)

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def url(self, path: str) -> str:
        assert self.ports is not None
        return f"http://127.0.0.1:{self.ports.http}{path}"

    def metric(self, sample: str) -> float:
        assert self.ports is not None
        text = httpx.get(f"http://127.0.0.1:{self.ports.metrics}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        raise AssertionError(f"{sample} is not exported")

    @property
    def grpc_target(self) -> str:
        assert self.ports is not None
        return f"127.0.0.1:{self.ports.grpc}"


@pytest.fixture
def served(model_dir: Path, held: Held) -> Iterator[ServedCore]:
    core = ServedCore(
        core_settings(
            model_dir,
            workers=2,
            threads_per_worker=1,
            cpus=2,
            drain_delay_s=1.0,
            access_log=False,
        )
    ).start()
    yield core
    held.loading.set()
    held.batches.set()
    core.stop()
    assert core.join(30), "the core did not stop"


def _health(channel: grpc.Channel, service: str) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return int(reply.status)


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _embed_http(core: ServedCore, text: str) -> httpx.Response:
    return httpx.post(core.url("/v1/embed"), json={"texts": [text]}, timeout=30)


def test_ports_answer_while_loading_and_ready_comes_only_after_warm_up(
    served: ServedCore, held: Held
) -> None:
    # 1. Listening, model not loaded: live, not ready, work refused as unavailable.
    assert httpx.get(served.url("/healthz"), timeout=5).status_code == 200
    readiness = httpx.get(served.url("/readyz"), timeout=5)
    assert readiness.status_code == 503
    assert readiness.json() == {
        "status": "not_ready", "reason": "the model is loading and warming up"
    }  # fmt: skip
    refused = _embed_http(served, "too early")
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "unavailable"
    with grpc.insecure_channel(served.grpc_target) as channel:
        assert _health(channel, "liveness") == SERVING
        assert _health(channel, "") == NOT_SERVING
        assert _health(channel, "tandem.contract.v1.EmbeddingService") == NOT_SERVING
        with pytest.raises(grpc.RpcError) as early:
            pb_grpc.EmbeddingServiceStub(channel).Embed(pb.EmbedRequest(texts=["x"]), timeout=5)
        assert early.value.code() is grpc.StatusCode.UNAVAILABLE
        assert served.metric("tandem_core_ready") == 0

        # 2. Loaded, warm-up batches running (held): still not ready.
        held.loading.set()
        _wait_for(lambda: served.metric("tandem_core_busy_workers") >= 1, "a warm-up batch")
        time.sleep(0.2)
        assert httpx.get(served.url("/readyz"), timeout=5).status_code == 503
        assert _health(channel, "") == NOT_SERVING

        # 3. Warm-up done: ready on both edges, with the model's info exported.
        held.batches.set()
        _wait_for(
            lambda: httpx.get(served.url("/readyz"), timeout=5).status_code == 200, "readiness"
        )
        assert served.metric("tandem_core_batch_texts_count") >= 1  # warm-up came first
        assert _health(channel, "") == SERVING
        assert served.metric("tandem_core_ready") == 1
    assert _embed_http(served, "now it works").status_code == 200


def test_stop_turns_not_ready_at_once_finishes_in_flight_work_and_refuses_new_work(
    served: ServedCore, held: Held
) -> None:
    held.loading.set()
    held.batches.set()
    _wait_for(lambda: httpx.get(served.url("/readyz"), timeout=5).status_code == 200, "ready")
    held.batches.clear()  # from here on, batches wait for the test

    with (
        grpc.insecure_channel(served.grpc_target) as channel,
        ThreadPoolExecutor(4) as pool,
    ):
        stub = pb_grpc.EmbeddingServiceStub(channel)
        in_flight: list[Future[Any]] = [
            pool.submit(_embed_http, served, "in flight over HTTP"),
            pool.submit(stub.Embed, pb.EmbedRequest(texts=["in flight over gRPC"]), timeout=30),
        ]
        _wait_for(lambda: served.metric("tandem_core_admitted_requests") == 2, "two admitted")

        stopped_at = time.monotonic()
        served.stop()
        _wait_for(
            lambda: httpx.get(served.url("/readyz"), timeout=5).status_code == 503,
            "not ready",
            timeout_s=0.5,
        )
        assert httpx.get(served.url("/readyz"), timeout=5).json()["reason"] == (
            "the core is draining for shutdown"
        )
        assert _health(channel, "") == NOT_SERVING
        assert _health(channel, "liveness") == SERVING
        # Within the drain delay (1 s), new work is still accepted.
        in_flight.append(pool.submit(_embed_http, served, "arrived while draining"))
        _wait_for(lambda: served.metric("tandem_core_admitted_requests") == 3, "three admitted")
        assert time.monotonic() - stopped_at < 1.0, "the drain-delay check came too late"

        # After the drain delay: new work is refused on both edges, the held work waits.
        time.sleep(max(0.0, stopped_at + 1.3 - time.monotonic()))
        refused = _embed_http(served, "too late")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable"
        with pytest.raises(grpc.RpcError) as late:
            stub.Embed(pb.EmbedRequest(texts=["too late"]), timeout=5)
        assert late.value.code() is grpc.StatusCode.UNAVAILABLE
        assert not any(call.done() for call in in_flight)

        held.batches.set()
        http_first, grpc_reply, http_draining = (call.result(timeout=30) for call in in_flight)
    assert http_first.status_code == 200, http_first.text
    assert len(grpc_reply.embeddings) == 1
    assert http_draining.status_code == 200, http_draining.text
    assert served.join(30), "the core did not exit after its in-flight work"
    assert served.error is None


def test_sigterm_drains_and_exits_0_logging_each_step(model_dir: Path) -> None:
    """The real entry point: signal handlers on the main thread, JSON logs, exit status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_CORE_")}
    env.update(
        TANDEM_CORE_MODEL_DIR=str(model_dir),
        TANDEM_CORE_GRPC_PORT="0",
        TANDEM_CORE_HTTP_PORT="0",
        TANDEM_CORE_METRICS_PORT="0",
        TANDEM_CORE_WORKERS="1",
        TANDEM_CORE_CPUS="1",
        TANDEM_CORE_DRAIN_DELAY_S="0.2",
        TANDEM_CORE_LOG_FORMAT="json",
    )
    with subprocess.Popen(
        [sys.executable, "-m", "tandem", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as core:
        assert core.stderr is not None
        records: list[dict[str, Any]] = []
        try:
            for line in core.stderr:
                records.append(json.loads(line))
                if records[-1]["message"] == "ready":
                    break
            assert records, "the core logged nothing"
            assert records[-1]["message"] == "ready", records
            core.send_signal(signal.SIGTERM)
            records.extend(json.loads(line) for line in core.stderr)
            assert core.wait(30) == 0
        finally:
            if core.poll() is None:
                core.kill()
    messages = [r["message"] for r in records]
    steps = ["listening", "ready", "draining", "stopping servers", "stopped"]
    assert [m for m in messages if m in steps] == steps, messages
    listening = next(r for r in records if r["message"] == "listening")
    assert all(listening[f"{name}_port"] > 0 for name in ("grpc", "http", "metrics"))
    assert next(r for r in records if r["message"] == "ready")["startup_seconds"] > 0
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")], records


# --- _load_model: which sessions the plan gets, and at which priority they open.
# A stand-in model records every session it opens (threads, and the nice value
# of the opening thread, which ONNX Runtime's pool threads inherit).


@dataclass(frozen=True)
class Opened:
    threads: int
    nice: int
    thread: str
    exclusive: bool


class RecordingModel:
    opened: list[Opened]

    def __init__(self, *args: Any) -> None:
        self.opened = []

    def open_session(self, intra_op_threads: int, *, exclusive: bool = False) -> Opened:
        tid = threading.get_native_id()
        session = Opened(
            intra_op_threads,
            os.getpriority(os.PRIO_PROCESS, tid),
            threading.current_thread().name,
            exclusive,
        )
        self.opened.append(session)
        return session


def _load(monkeypatch: pytest.MonkeyPatch, *, workers: int, threads: int, adaptive: bool,
          nice: int = 4) -> tuple[RecordingModel, process.Sessions]:  # fmt: skip
    monkeypatch.setattr(process, "MiniLMEmbedding", RecordingModel)
    settings = Settings(model_dir=Path("unused"), adaptive_threads=adaptive, inference_nice=nice)
    plan = plan_capacity(
        CapacityInputs(
            cpus=float(workers * threads), workers=workers, threads_per_worker=threads,
            weights_mib=1, activation_bytes_per_token=1, max_batch_tokens=1024,
            max_inflight_requests=1, max_inflight_bytes=1 << 20, max_texts_per_request=1,
            transit_calls=1, max_request_bytes=1 << 20, adaptive_threads=adaptive,
        )
    )  # fmt: skip
    model, sessions = process._load_model(settings, object(), plan)  # type: ignore[arg-type]
    assert isinstance(model, RecordingModel)
    return model, sessions


def test_single_threaded_workers_share_one_session_and_lone_batches_get_a_wide_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, sessions = _load(monkeypatch, workers=2, threads=1, adaptive=True)
    assert sessions.workers[0] is sessions.workers[1]
    assert sessions.workers[0].threads == 1  # type: ignore[attr-defined]
    assert sessions.wide is not None
    assert sessions.wide.threads == 2  # type: ignore[attr-defined]
    assert len(model.opened) == 2
    # Only the wide session runs alone, so only its threads may spin.
    assert [s.exclusive for s in model.opened] == [False, True]


def test_without_adaptive_threads_there_is_no_wide_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, sessions = _load(monkeypatch, workers=2, threads=2, adaptive=False)
    assert sessions.wide is None
    assert [s.threads for s in model.opened] == [2, 2]
    assert not any(s.exclusive for s in model.opened)


def test_one_worker_has_every_thread_already(monkeypatch: pytest.MonkeyPatch) -> None:
    model, sessions = _load(monkeypatch, workers=1, threads=2, adaptive=True)
    assert sessions.wide is None
    assert [s.threads for s in model.opened] == [2]


def test_sessions_open_on_a_thread_nicer_than_the_caller_which_stays_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    model, _ = _load(monkeypatch, workers=2, threads=1, adaptive=True, nice=4)
    assert {s.nice for s in model.opened} == {min(19, caller + 4)}
    assert all(s.thread != threading.current_thread().name for s in model.opened)
    # The caller (in serve(): a default executor thread, reused later) keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller
