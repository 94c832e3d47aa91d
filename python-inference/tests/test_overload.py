"""A full queue answers at once: RESOURCE_EXHAUSTED over gRPC, 429 + Retry-After over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from support import RunningCore, core_settings

from tandem.contract.v1 import embedding_pb2 as pb
from tandem.contract.v1 import embedding_pb2_grpc as pb_grpc

LONG = "word " * 250  # one full-length text: slow enough that the queue fills


@pytest.fixture(scope="module")
def small_queue_core(model_dir: Path) -> Iterator[RunningCore]:
    settings = core_settings(
        model_dir,
        max_texts_per_request=8,
        max_queue_texts=8,
        workers=1,
        threads_per_worker=1,
        cpus=1,
        access_log=False,
    )
    running = RunningCore(settings).start()
    yield running
    running.stop()


def test_http_overload_is_429_with_retry_after(small_queue_core: RunningCore) -> None:
    with httpx.Client(base_url=small_queue_core.http_url, timeout=60) as client:

        def send(_: int) -> httpx.Response:
            return client.post("/v1/embed", json={"texts": [LONG] * 8})

        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(send, range(16)))
        statuses = sorted({r.status_code for r in replies})
        assert statuses == [200, 429], statuses
        refused = next(r for r in replies if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "overloaded"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        # Nothing is lost or stuck: the next request is served.
        assert client.post("/v1/embed", json={"texts": ["after the burst"]}).status_code == 200


def test_grpc_overload_is_resource_exhausted(small_queue_core: RunningCore) -> None:
    with grpc.insecure_channel(small_queue_core.grpc_target) as channel:
        stub = pb_grpc.EmbeddingServiceStub(channel)

        def send(_: int) -> grpc.StatusCode:
            try:
                stub.Embed(pb.EmbedRequest(texts=[LONG] * 8), timeout=60)
            except grpc.RpcError as err:
                return err.code()  # type: ignore[no-any-return]
            return grpc.StatusCode.OK

        with ThreadPoolExecutor(8) as pool:
            codes = set(pool.map(send, range(16)))
        assert codes == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
        assert stub.Embed(pb.EmbedRequest(texts=["after"]), timeout=30).embeddings
