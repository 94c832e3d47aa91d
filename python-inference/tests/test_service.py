"""EmbeddingService with the real model: validation, options, tokenizing off the loop, cancellation.

The service is built the way process.py builds it (model, scheduler, admission
gate, tokenizer pool), with a real ONNX Runtime session. The edges' tests
(grpc_api/test_servicer.py, http_api/test_routes.py) check how each error
reaches the wire; these check the service's own interface: which error, with
which field and reason, for which input, and what the service does with the
loop, the queue and the admission gate meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from support import core_settings

from tandem.admission import AdmissionGate, AdmissionLimits
from tandem.batching.planner import BatchLimits
from tandem.batching.scheduler import BatchScheduler, QueueLimits
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import CoreError, InvalidInput, ModelNotFound, Overloaded
from tandem.model.manifest import ModelManifest
from tandem.model.minilm import MiniLMEmbedding
from tandem.model.runtime import OnnxEncoder
from tandem.model.tokenizer import TokenizedText
from tandem.ops.metrics import CoreMetrics
from tandem.service import (
    INLINE_TOKENIZE_CHARS,
    TOKENIZE_SLICE_TEXTS,
    EmbedCommand,
    EmbeddingService,
    ModelInfo,
    Timings,
    Truncation,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingModel(MiniLMEmbedding):
    """The real model; remembers which thread tokenized how many texts."""

    def __init__(self, model_dir: Path) -> None:
        super().__init__(model_dir, ModelManifest.read(model_dir), "fp32")
        self.calls: list[tuple[str, int]] = []

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        self.calls.append((threading.current_thread().name, len(texts)))
        return super().tokenize(texts)


class HeldEncode:
    """The real session's encode, started only once ``release`` is set."""

    def __init__(self, session: OnnxEncoder) -> None:
        self.session = session
        self.release = threading.Event()

    def __call__(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        self.release.wait(10)
        return self.session.encode(rows)


@dataclass
class Core:
    service: EmbeddingService
    scheduler: BatchScheduler
    admission: AdmissionGate
    metrics: CoreMetrics
    model: RecordingModel


@pytest.fixture(scope="module")
def model(model_dir: Path) -> RecordingModel:
    return RecordingModel(model_dir)


@pytest.fixture(scope="module")
def session(model: RecordingModel) -> OnnxEncoder:
    return model.open_session(1)


@dataclass(frozen=True)
class Parts:
    """What the service is built from: the model, one session, the model directory."""

    model: RecordingModel
    session: OnnxEncoder
    model_dir: Path


@pytest.fixture(scope="module")
def parts(model: RecordingModel, session: OnnxEncoder, model_dir: Path) -> Parts:
    return Parts(model, session, model_dir)


@contextlib.asynccontextmanager
async def built(
    parts: Parts,
    encode: HeldEncode | None = None,
    tracer: trace.Tracer | None = None,
    **overrides: int,
) -> AsyncIterator[Core]:
    """An EmbeddingService wired as process.serve wires it (settings' defaults, one worker)."""
    model = parts.model
    settings = core_settings(parts.model_dir, workers=1, threads_per_worker=1, **overrides)
    loop = asyncio.get_running_loop()
    metrics = CoreMetrics()
    scheduler = BatchScheduler(
        [encode or parts.session.encode],
        BatchLimits(settings.max_batch_size, settings.max_batch_tokens, settings.max_padding_ratio),
        QueueLimits(
            settings.max_queue_texts, settings.max_queue_tokens, settings.max_queue_delay_ms / 1000
        ),
        metrics,
        postprocess=model.postprocess,
    )
    admission = AdmissionGate(
        AdmissionLimits(settings.max_inflight_requests, settings.max_inflight_bytes),
        scheduler,
        metrics,
        clock=loop.time,
    )
    info = ModelInfo(
        model_id=model.model_id,
        aliases=model.aliases,
        dimension=model.manifest.dimension,
        max_tokens=model.manifest.max_tokens,
        max_texts_per_request=settings.max_texts_per_request,
        max_text_bytes=settings.max_text_bytes,
        precision="fp32",
    )
    pool = ThreadPoolExecutor(settings.tokenizer_threads, thread_name_prefix="tokenize")
    service = EmbeddingService(
        info, model, scheduler, pool, metrics, admission=admission, tracer=tracer
    )
    model.calls.clear()
    try:
        yield Core(service, scheduler, admission, metrics, model)
    finally:
        if encode is not None:
            encode.release.set()
        await scheduler.close(5)
        pool.shutdown(wait=True)


def _deadline(seconds: float = 30.0) -> float:
    return asyncio.get_running_loop().time() + seconds


# --- Validation ---------------------------------------------------------------------

MAX_TEXT_BYTES = 8192  # the settings' default, which built() uses


@pytest.mark.parametrize(
    ("command", "error", "param", "reason"),
    [
        # The model is checked first: a wrong name is 404 whatever the texts.
        (EmbedCommand(texts=[], model="gpt-4"), ModelNotFound, "model", "MODEL_NOT_FOUND"),
        # The other precision's name is another model (the gateway routes by it).
        (
            EmbedCommand(texts=["x"], model="all-MiniLM-L6-v2-int8"),
            ModelNotFound,
            "model",
            "MODEL_NOT_FOUND",
        ),
        (EmbedCommand(texts=[]), InvalidInput, "texts", "INVALID_INPUT"),
        (EmbedCommand(texts=["x"] * 257), InvalidInput, "texts", "TOO_MANY_TEXTS"),
        (EmbedCommand(texts=["ok", "", "ok"]), InvalidInput, "texts[1]", "INVALID_INPUT"),
        (EmbedCommand(texts=["ok", "a\ud800b"]), InvalidInput, "texts[1]", "INVALID_INPUT"),
        # Bytes of UTF-8, not characters: 4097 x "é" is 8194 bytes in 4097 characters.
        (EmbedCommand(texts=["é" * 4097]), InvalidInput, "texts[0]", "TEXT_TOO_LARGE"),
        (
            EmbedCommand(texts=["ok", "a" * (MAX_TEXT_BYTES + 1)]),
            InvalidInput,
            "texts[1]",
            "TEXT_TOO_LARGE",
        ),
        # The first bad text is named, in request order.
        (EmbedCommand(texts=["ok", "a" * 9000, ""]), InvalidInput, "texts[1]", "TEXT_TOO_LARGE"),
    ],
)
async def test_invalid_commands_raise_the_documented_error_naming_the_field(
    parts: Parts,
    command: EmbedCommand,
    error: type[CoreError],
    param: str,
    reason: str,
) -> None:
    async with built(parts) as core:
        with pytest.raises(error) as raised:
            await core.service.embed(command, _deadline())
        assert type(raised.value) is error
        assert raised.value.param == param
        assert pb.ErrorReason.Name(raised.value.reason) == f"ERROR_REASON_{reason}"
        assert raised.value.message == f"{param} {raised.value.description}"
        # Refused before admission and before any work: no place taken, nothing tokenized.
        assert (core.admission.requests, core.admission.bytes) == (0, 0)
        assert core.model.calls == []
        assert core.scheduler.queued_texts == 0


async def test_an_unknown_model_names_the_served_ones(
    parts: Parts,
) -> None:
    async with built(parts) as core:
        with pytest.raises(ModelNotFound) as raised:
            core.service.validate(EmbedCommand(texts=["x"], model="text-embedding-3-small"))
    assert raised.value.message == (
        "model 'text-embedding-3-small' is not served here; use one of: "
        "sentence-transformers/all-MiniLM-L6-v2, all-MiniLM-L6-v2"
    )


async def test_limits_are_inclusive_and_validate_counts_utf8_bytes(
    parts: Parts,
) -> None:
    async with built(parts) as core:
        service = core.service
        # Exactly at each limit is accepted.
        assert service.validate(EmbedCommand(texts=["a" * MAX_TEXT_BYTES])) == MAX_TEXT_BYTES
        assert service.validate(EmbedCommand(texts=["é" * 4096])) == MAX_TEXT_BYTES
        assert service.validate(EmbedCommand(texts=["x"] * 256)) == 256
        # Multi-byte characters count by their UTF-8 size (what admission holds).
        assert service.validate(EmbedCommand(texts=["naïve", "日本", "🙂"])) == 6 + 6 + 4
        # The served id, an alias, and no name at all ("" or None) are the served model.
        for name in (parts.model.model_id, *parts.model.aliases, "", None):
            assert service.validate(EmbedCommand(texts=["x"], model=name)) == 1


# --- Options ------------------------------------------------------------------------


async def test_normalize_is_per_request_even_inside_one_batch(
    parts: Parts,
) -> None:
    texts = ["the cat sat on the mat", "a completely different sentence about trains"]
    raw_expected = parts.session.encode([t.ids for t in parts.model.tokenize(texts)])
    async with built(parts) as core:
        unit, raw = await asyncio.gather(
            core.service.embed(EmbedCommand(texts=texts), _deadline()),
            core.service.embed(EmbedCommand(texts=texts, normalize=False), _deadline()),
        )
        batches = core.metrics.registry.get_sample_value("tandem_core_batch_texts_count")
    assert batches == 1  # both requests were computed together
    assert raw.vectors.dtype == unit.vectors.dtype == np.float32
    assert raw.vectors.shape == unit.vectors.shape == (2, 384)
    np.testing.assert_allclose(raw.vectors, raw_expected, rtol=1e-5, atol=1e-6)
    norms = np.linalg.norm(raw_expected, axis=1, keepdims=True)
    np.testing.assert_allclose(unit.vectors, raw_expected / norms, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(unit.vectors, axis=1), 1.0, atol=1e-5)


async def test_truncate_cuts_long_texts_and_reports_each(
    parts: Parts,
) -> None:
    at_limit = "word " * 254  # 254 words + [CLS] + [SEP] = 256 tokens: not cut
    async with built(parts) as core:
        result = await core.service.embed(
            EmbedCommand(texts=["word " * 300, "short", at_limit]), _deadline()
        )
    assert result.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert result.token_counts == [256, 3, 256]
    assert result.truncated == [True, False, False]
    assert result.total_tokens == 515
    assert np.isfinite(result.vectors).all()
    timings = result.timings
    assert min(timings.tokenize_s, timings.queue_s, timings.inference_s) >= 0
    assert timings.inference_s > 0


async def test_reject_refuses_the_first_too_long_text_and_releases_its_place(
    parts: Parts,
) -> None:
    async with built(parts) as core:
        service = core.service
        reject = Truncation.REJECT
        # At the limit: served under REJECT too.
        at_limit = EmbedCommand(texts=["word " * 254], truncation=reject)
        ok = await service.embed(at_limit, _deadline())
        assert ok.truncated == [False]
        with pytest.raises(InvalidInput) as raised:
            await service.embed(
                EmbedCommand(texts=["fine", "word " * 255, "word " * 400], truncation=reject),
                _deadline(),
            )
        assert raised.value.param == "texts[1]"
        assert raised.value.reason == pb.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED
        assert raised.value.description == (
            "has 257 tokens; the model's maximum is 256 and truncation was refused"
        )
        # Refused after tokenizing, before queuing: nothing queued, the place given back.
        assert core.scheduler.queued_texts == 0
        assert (core.admission.requests, core.admission.bytes) == (0, 0)


def test_server_timing_is_in_milliseconds() -> None:
    timings = Timings(tokenize_s=0.0015, queue_s=0.25, inference_s=2.0)
    assert timings.server_timing() == (
        "tokenize;dur=1.500, queue;dur=250.000, inference;dur=2000.000"
    )


async def test_tokenize_time_carries_the_sampled_requests_trace(parts: Parts) -> None:
    def tokenize_trace_ids(metrics: CoreMetrics) -> list[str]:
        return [
            sample.exemplar.labels["trace_id"]
            for family in metrics.registry.collect()
            if family.name == "tandem_core_tokenize_seconds"
            for sample in family.samples
            if sample.exemplar is not None
        ]

    async with built(parts) as core:
        await core.service.embed(EmbedCommand(texts=["untraced"]), _deadline())
        unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
        with unsampled.start_as_current_span("request"):
            await core.service.embed(EmbedCommand(texts=["unsampled"]), _deadline())
        assert tokenize_trace_ids(core.metrics) == []
        with TracerProvider().get_tracer("test").start_as_current_span("request") as span:
            await core.service.embed(EmbedCommand(texts=["traced"]), _deadline())
        assert tokenize_trace_ids(core.metrics) == [
            trace.format_trace_id(span.get_span_context().trace_id)
        ]


def _recorded() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


async def test_stage_spans_are_the_request_spans_children_in_time_order(parts: Parts) -> None:
    tracer, exporter = _recorded()
    async with built(parts, tracer=tracer) as core:
        await core.service.embed(EmbedCommand(texts=["untraced"]), _deadline())
        assert not exporter.get_finished_spans()  # no request span (the warm-up): no stages
        with tracer.start_as_current_span("request") as request:
            await core.service.embed(EmbedCommand(texts=["one", "two words"]), _deadline())
    spans = {span.name: span for span in exporter.get_finished_spans()}
    stages = [spans[name] for name in ("tandem.tokenize", "tandem.queue", "tandem.inference")]
    for stage in stages:
        assert stage.parent is not None
        assert stage.parent.span_id == request.get_span_context().span_id
        assert stage.status.status_code == trace.StatusCode.UNSET
    tokenize, queue, inference = (
        (s.start_time or 0, s.end_time or 0, dict(s.attributes or {})) for s in stages
    )
    assert tokenize[2] == {"tandem.texts": 2}
    assert tokenize[0] <= tokenize[1] <= queue[0] <= queue[1] == inference[0] <= inference[1]
    assert dict(spans["request"].attributes or {})["tandem.texts"] == 2


async def test_a_request_the_edge_did_not_sample_starts_no_stage_span(parts: Parts) -> None:
    """Its children would be dropped by the parent-based sampler anyway; not
    even starting them saves their cost on most requests at 10 % sampling."""
    tracer, exporter = _recorded()
    started: list[str] = []

    class Counting(trace.Tracer):
        def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
            started.append(name)
            return tracer.start_span(name, *args, **kwargs)

        def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
            return tracer.start_as_current_span(*args, **kwargs)

    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("edge")
    async with built(parts, tracer=Counting()) as core:
        with unsampled.start_as_current_span("request"):
            await core.service.embed(EmbedCommand(texts=["unsampled"]), _deadline())
        assert [n for n in started if n != "tandem.batch"] == []
        with tracer.start_as_current_span("request"):
            await core.service.embed(EmbedCommand(texts=["sampled"]), _deadline())
    assert {"tandem.tokenize", "tandem.queue", "tandem.inference"} <= set(started)
    assert {s.name for s in exporter.get_finished_spans()} >= {"tandem.tokenize", "request"}


async def test_a_failed_tokenization_is_an_error_span(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(texts: Sequence[str]) -> list[TokenizedText]:
        raise RuntimeError("tokenizer broke")

    tracer, exporter = _recorded()
    async with built(parts, tracer=tracer) as core:
        monkeypatch.setattr(core.model, "tokenize", broken)
        with pytest.raises(RuntimeError), tracer.start_as_current_span("request"):
            await core.service.embed(EmbedCommand(texts=["x"]), _deadline())
    (tokenize,) = [s for s in exporter.get_finished_spans() if s.name == "tandem.tokenize"]
    assert tokenize.status.status_code == trace.StatusCode.ERROR
    assert "tokenizer broke" in (tokenize.status.description or "")
    assert [event.name for event in tokenize.events] == ["exception"]


# --- Admission ----------------------------------------------------------------------


async def test_reserved_requests_do_not_take_a_second_place(
    parts: Parts,
) -> None:
    async with built(parts, max_inflight_requests=1) as core:
        service = core.service
        with service.reserve(100):
            assert (core.admission.requests, core.admission.bytes) == (1, 100)
            # The edge holds the only place: embed inside it without reserved is refused...
            with pytest.raises(Overloaded):
                await service.embed(EmbedCommand(texts=["x"]), _deadline())
            # ... and with reserved=True uses the edge's place.
            result = await service.embed(EmbedCommand(texts=["x"]), _deadline(), reserved=True)
            assert result.token_counts == [3]
            assert core.admission.requests == 1
        assert (core.admission.requests, core.admission.bytes) == (0, 0)


# --- The event loop -----------------------------------------------------------------


async def test_short_requests_tokenize_inline_and_long_ones_on_the_pool_in_slices(
    parts: Parts,
) -> None:
    loop_thread = threading.current_thread().name
    inline = ["a" * 1024, "b" * 1024]  # exactly INLINE_TOKENIZE_CHARS characters
    assert sum(map(len, inline)) == INLINE_TOKENIZE_CHARS
    async with built(parts) as core:
        await core.service.embed(EmbedCommand(texts=inline), _deadline())
        assert core.model.calls == [(loop_thread, 2)]
        core.model.calls.clear()
        # One character more, in 70 texts: the pool, 32 texts at a time.
        offloaded = ["c" * 29] * 69 + ["d" * (INLINE_TOKENIZE_CHARS + 1 - 69 * 29)]
        assert sum(map(len, offloaded)) == INLINE_TOKENIZE_CHARS + 1
        result = await core.service.embed(EmbedCommand(texts=offloaded), _deadline())
    threads = {thread for thread, _ in core.model.calls}
    assert len(threads) == 1
    assert threads.pop().startswith("tokenize")
    assert [count for _, count in core.model.calls] == [TOKENIZE_SLICE_TEXTS] * 2 + [6]
    # The slices come back whole and in order.
    assert len(result.token_counts) == 70
    assert result.token_counts[-1] > result.token_counts[0]


async def test_a_largest_request_is_tokenized_while_the_loop_keeps_ticking(
    parts: Parts,
) -> None:
    """256 texts of 8 KB: about 0.4 s of tokenizing here, none of it on the event loop.

    truncation=REJECT ends the request right after tokenizing (every text is
    too long), so the test measures the tokenizing stage alone, not inference.
    """
    texts = [(f"word{i} " * 1200)[:MAX_TEXT_BYTES] for i in range(256)]
    interval_s = 0.005
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(interval_s)

    async with built(parts) as core:
        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        with pytest.raises(InvalidInput) as raised:
            await core.service.embed(
                EmbedCommand(texts=texts, truncation=Truncation.REJECT), _deadline()
            )
        ended = time.perf_counter()
        await asyncio.sleep(0.02)
        ticking.cancel()
    assert raised.value.reason == pb.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED
    assert raised.value.param == "texts[0]"
    assert sum(count for _, count in core.model.calls) == 256
    # Ticks kept coming while the request was tokenized (on the loop there would be none)...
    during = [t for t in ticks if started < t < ended]
    assert len(during) >= 10, f"{len(during)} ticks in {ended - started:.3f} s"
    # ... and no gap came near the whole tokenizing time. The bound leaves room
    # for a noisy machine (the tokenizer's threads compete with the loop for CPU).
    window = [t for t in ticks if started - 0.02 <= t <= ended + 0.02]
    gaps = np.diff(window)
    assert gaps.max() < 0.15, f"the loop stalled for {gaps.max():.3f} s"


# --- Cancellation -------------------------------------------------------------------


async def test_a_cancelled_requests_texts_leave_the_queue_and_its_place_is_freed(
    parts: Parts,
) -> None:
    held = HeldEncode(parts.session)
    async with built(parts, held) as core:
        service, scheduler, admission = core.service, core.scheduler, core.admission
        running = asyncio.create_task(service.embed(EmbedCommand(texts=["first"]), _deadline()))
        await _until(lambda: scheduler.queued_texts == 0 and admission.requests == 1)
        # The worker holds "first"; these three wait in the queue behind it.
        waiting = asyncio.create_task(
            service.embed(EmbedCommand(texts=["one", "two", "three"]), _deadline())
        )
        await _until(lambda: scheduler.queued_texts == 3)
        assert (admission.requests, admission.bytes) == (2, 5 + 11)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Gone at once, not when the busy worker next looks at the queue.
        assert scheduler.queued_texts == 0
        assert (admission.requests, admission.bytes) == (1, 5)
        assert core.metrics.registry.get_sample_value("tandem_core_queue_texts") == 0
        held.release.set()
        first = await running
        assert first.token_counts == [3]
        after = await service.embed(EmbedCommand(texts=["after"]), _deadline())
        assert np.isfinite(after.vectors).all()
        # Only the other requests' texts were ever computed.
        assert core.metrics.registry.get_sample_value("tandem_core_batch_real_tokens_total") == 6
        assert (admission.requests, admission.bytes) == (0, 0)


async def _until(condition: object, timeout_s: float = 5.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)
