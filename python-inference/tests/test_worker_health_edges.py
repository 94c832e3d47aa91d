"""Worker health as the outside sees it: /readyz, /healthz and gRPC health of a real core.

The model is real; a switch in front of it makes its batches fail, hang,
return NaN, or the worker thread die, the way a broken node or a bug would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import RunningCore, core_settings

from tandem.batching.scheduler import BatchScheduler
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc
from tandem.model.manifest import ModelManifest
from tandem.model.runtime import OnnxEncoder
from tandem.model.tokenizer import TextTokenizer

NAN_TOKEN = 16660  # the vocabulary id of "nan" (checked below)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Switch:
    """How the next batches behave."""

    def __init__(self) -> None:
        self.failing = False
        self.nan = False  # texts starting with "nan" come back as NaN vectors
        self.release = threading.Event()
        self.release.set()  # cleared: batches hang until it is set
        self.die = False  # the worker thread fails outside its batch


@pytest.fixture(scope="module")
def switch() -> Switch:
    return Switch()


@pytest.fixture(scope="module")
def sick_core(model_dir: Path, switch: Switch) -> Iterator[RunningCore]:
    patch = pytest.MonkeyPatch()
    encode = OnnxEncoder.encode
    record_batch = BatchScheduler._record_batch

    def switched_encode(self: OnnxEncoder, rows: Sequence[np.ndarray]) -> np.ndarray:
        switch.release.wait(60)
        if switch.failing:
            raise RuntimeError("injected model failure")
        vectors = encode(self, rows)
        if switch.nan:
            # "nan marker" tokenizes to [CLS] nan marker [SEP]: poison those rows.
            for i, row in enumerate(rows):
                if len(row) > 1 and int(row[1]) == NAN_TOKEN:
                    vectors[i] = np.nan
        return vectors

    def dying_record_batch(self: BatchScheduler, *args: object, **kwargs: object) -> None:
        if switch.die and threading.current_thread().name.startswith("inference-"):
            raise RuntimeError("injected bug in the worker's bookkeeping")
        record_batch(self, *args, **kwargs)  # type: ignore[arg-type]

    patch.setattr(OnnxEncoder, "encode", switched_encode)
    patch.setattr(BatchScheduler, "_record_batch", dying_record_batch)
    settings = core_settings(
        model_dir,
        cpus=2,
        workers=2,
        threads_per_worker=1,
        worker_failure_threshold=2,
        worker_stall_s=1.0,
    )
    running = RunningCore(settings).start()
    yield running
    switch.release.set()
    switch.die = switch.failing = False
    running.stop()
    patch.undo()


@pytest.fixture(scope="module")
def health(sick_core: RunningCore) -> Iterator[Callable[[str], int]]:
    with grpc.insecure_channel(sick_core.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def check(service: str) -> int:
            request = health_pb2.HealthCheckRequest(service=service)
            return int(stub.Check(request, timeout=5).status)

        yield check


def _http(core: RunningCore, path: str) -> int:
    return httpx.get(f"{core.http_url}{path}", timeout=5).status_code


def _embed(core: RunningCore, texts: list[str], timeout_ms: int = 10_000) -> httpx.Response:
    return httpx.post(
        f"{core.http_url}/v1/embed",
        json={"texts": texts},
        headers={"x-timeout-ms": str(timeout_ms)},
        timeout=timeout_ms / 1000 + 5,
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def _state(core: RunningCore, health: Callable[[str], int]) -> tuple[int, int, int, int, int]:
    """(/readyz, /healthz, gRPC "", gRPC EmbeddingService, gRPC liveness)."""
    return (
        _http(core, "/readyz"),
        _http(core, "/healthz"),
        health(""),
        health("tandem.contract.v1.EmbeddingService"),
        health("liveness"),
    )


HEALTHY = (200, 200, SERVING, SERVING, SERVING)
SICK = (503, 200, NOT_SERVING, NOT_SERVING, SERVING)  # not ready, still live
DEAD = (503, 503, NOT_SERVING, NOT_SERVING, NOT_SERVING)


def test_the_tokenizer_gives_nan_its_own_token(model_dir: Path) -> None:
    # The NaN switch keys on this token id; make sure it is what "nan" becomes.
    manifest = ModelManifest.read(model_dir)
    tokenizer = TextTokenizer(model_dir / manifest.tokenizer, manifest.max_tokens)
    assert tokenizer.encode(["nan marker"])[0].ids[1] == NAN_TOKEN
    assert NAN_TOKEN not in tokenizer.encode(["fine", "fails", "works", "hangs", "dies"])[0].ids


def test_failing_batches_make_it_not_ready_until_a_probe_succeeds(
    sick_core: RunningCore, switch: Switch, health: Callable[[str], int]
) -> None:
    assert _state(sick_core, health) == HEALTHY
    switch.failing = True
    for _ in range(2):  # the threshold
        assert _embed(sick_core, ["fails"]).status_code == 500
    _wait_for(lambda: _state(sick_core, health) == SICK, 5, "not ready after failed batches")
    assert "batches failed" in httpx.get(f"{sick_core.http_url}/readyz").json()["reason"]

    switch.failing = False  # the model recovers; nobody sends it work (it is not ready)
    _wait_for(lambda: _state(sick_core, health) == HEALTHY, 10, "ready again after a probe")
    assert _embed(sick_core, ["works"]).status_code == 200


def test_a_stalled_batch_fails_liveness_until_it_returns(
    sick_core: RunningCore, switch: Switch, health: Callable[[str], int]
) -> None:
    switch.release.clear()
    with ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(_embed, sick_core, ["hangs"], 20_000)
        _wait_for(lambda: _state(sick_core, health) == DEAD, 5, "not live after the stall")
        assert "stall bound" in httpx.get(f"{sick_core.http_url}/healthz").json()["reason"]
        switch.release.set()
        assert stuck.result(30).status_code == 200
    _wait_for(lambda: _state(sick_core, health) == HEALTHY, 5, "live once the batch returned")


def test_a_non_finite_vector_is_an_internal_error_never_an_answer(
    sick_core: RunningCore, switch: Switch
) -> None:
    switch.nan = True
    try:
        reply = _embed(sick_core, ["fine", "nan marker"])
        assert reply.status_code == 500
        error = reply.json()["error"]
        assert (error["code"], error["type"]) == ("non_finite_output", "server_error")
        assert error["message"] == "the model produced a non-finite vector"
        with grpc.insecure_channel(sick_core.grpc_target) as channel:
            stub = pb_grpc.EmbeddingServiceStub(channel)
            with pytest.raises(grpc.RpcError) as failed:
                stub.Embed(pb.EmbedRequest(texts=["nan marker"]), timeout=10)
            assert failed.value.code() == grpc.StatusCode.INTERNAL
            assert stub.Embed(pb.EmbedRequest(texts=["fine"]), timeout=10).embeddings
        metrics = httpx.get(sick_core.metrics_url, timeout=5).text
        assert "tandem_core_non_finite_texts_total 2.0" in metrics
    finally:
        switch.nan = False


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_is_permanent_not_ready_and_not_live(
    sick_core: RunningCore, switch: Switch, health: Callable[[str], int]
) -> None:
    # Last in this module: the core does not come back from this.
    switch.die = True
    for _ in range(4):  # each request kills the worker that ran it (its answer is lost)
        _embed(sick_core, ["dies"], timeout_ms=1000)
        if _http(sick_core, "/healthz") == 503:
            break
    _wait_for(lambda: _state(sick_core, health) == DEAD, 5, "not live after a worker died")
    assert "died" in httpx.get(f"{sick_core.http_url}/healthz").json()["reason"]
    metrics = httpx.get(sick_core.metrics_url, timeout=5).text
    assert "tandem_core_workers_alive 2.0" not in metrics
    switch.die = False
    time.sleep(1.5)
    assert _state(sick_core, health) == DEAD, "a dead worker never comes back: restart the pod"
