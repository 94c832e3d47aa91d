"""The embedding service: validate, tokenize, batch, answer. Transport-independent.

Both the gRPC servicer and the HTTP routes call ``EmbeddingService.embed``, so
limits, error codes and behaviour are identical on both edges.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from tandem.admission import AdmissionGate
from tandem.batching.scheduler import BatchedRows, BatchScheduler, epoch_ns
from tandem.contract.v1 import embedding_pb2 as pb
from tandem.errors import InvalidInput, ModelNotFound
from tandem.model.interface import Model
from tandem.model.minilm import NORMALIZED, RAW, EmbedOptions
from tandem.model.tokenizer import TokenizedText
from tandem.ops.exemplars import trace_exemplar
from tandem.ops.metrics import CoreMetrics

# Requests up to this many characters are tokenized on the event loop (about
# 30 microseconds per sentence, measured), larger ones on a tokenizer thread.
INLINE_TOKENIZE_CHARS = 2048
# Large requests are tokenized this many texts at a time. The tokenizer keeps
# every text's full-length encoding (offsets, token strings, alignments) until
# the call returns: for 256 texts of 8 KB that was 186 MB of peak RSS in one
# call, measured; in slices of 32 it is an eighth of that, for the same speed.
TOKENIZE_SLICE_TEXTS = 32


class Truncation(enum.Enum):
    """What to do with texts longer than the model's maximum sequence length."""

    TRUNCATE = "truncate"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model_id: str
    aliases: tuple[str, ...]
    dimension: int
    max_tokens: int
    max_texts_per_request: int
    max_text_bytes: int
    precision: str

    def accepts(self, name: str) -> bool:
        return name == self.model_id or name in self.aliases


@dataclass(frozen=True, slots=True)
class EmbedCommand:
    texts: Sequence[str]
    model: str | None = None  # None or "" = the served model
    normalize: bool = True
    truncation: Truncation = Truncation.TRUNCATE


@dataclass(frozen=True, slots=True)
class Timings:
    """Where one request's time went inside the core, in seconds."""

    tokenize_s: float
    queue_s: float
    inference_s: float

    def server_timing(self) -> str:
        """The Server-Timing header value (durations in milliseconds)."""
        return (
            f"tokenize;dur={self.tokenize_s * 1e3:.3f}, "
            f"queue;dur={self.queue_s * 1e3:.3f}, "
            f"inference;dur={self.inference_s * 1e3:.3f}"
        )


@dataclass(frozen=True, slots=True)
class EmbedResult:
    model_id: str
    vectors: np.ndarray  # float32 [texts, dimension]
    token_counts: list[int]
    truncated: list[bool]
    timings: Timings

    @property
    def total_tokens(self) -> int:
        return sum(self.token_counts)


class EmbeddingService:
    """Turns validated requests into embeddings through the batch scheduler."""

    def __init__(
        self,
        info: ModelInfo,
        model: Model[EmbedOptions],
        scheduler: BatchScheduler,
        tokenize_executor: Executor,
        metrics: CoreMetrics,
        *,
        admission: AdmissionGate,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.info = info
        self._model = model
        self._scheduler = scheduler
        self._admission = admission
        self._tokenize_executor = tokenize_executor
        self._metrics = metrics
        self._tracer = tracer or trace.NoOpTracer()
        self._traces = not isinstance(self._tracer, trace.NoOpTracer)

    @contextlib.contextmanager
    def reserve(self, message_bytes: int) -> Iterator[None]:
        """Admission for a request not parsed yet, sized by its raw message or body.

        The edges enter this before they parse anything (grpc_api/servicer.py,
        http_api/admission.py): a refused call then costs only its raw bytes.
        The raw size bounds the texts' UTF-8 bytes from above (the encoding
        adds field tags, lengths, quotes, escapes), so the gate's byte bound
        holds. Inside, call ``embed(..., reserved=True)``.
        """
        with self._admission.admit(message_bytes):
            yield

    async def embed(
        self, command: EmbedCommand, deadline: float, *, reserved: bool = False
    ) -> EmbedResult:
        """Embed ``command.texts``; ``deadline`` is in event-loop time.

        Validation, then admission (admission.py) before any work that costs
        memory or CPU: a request the core cannot hold or cannot finish before
        its deadline is refused at once with Overloaded. ``reserved``: the
        caller already holds a place from ``reserve`` for this request.
        """
        request_bytes = self.validate(command)
        admission = self._admission
        # The fewest tokens the texts can become: a lower bound, so this never
        # refuses a request the exact check after tokenizing would admit.
        admission.check_deadline(self._model.min_tokens_per_text * len(command.texts), deadline)
        if reserved:
            return await self._embed_admitted(command, deadline)
        with admission.admit(request_bytes):
            return await self._embed_admitted(command, deadline)

    async def _embed_admitted(self, command: EmbedCommand, deadline: float) -> EmbedResult:
        # Stage spans are children of the request's server span; requests
        # whose span records nothing (the warm-up, a request the edge did
        # not sample) make none: their children would be dropped anyway.
        request_span = trace.get_current_span()
        traced = self._traces and request_span.is_recording()
        started = time.perf_counter()
        try:
            tokenized = await self._tokenize(command.texts)
        except BaseException as exc:
            if traced:
                self._stage_span("tandem.tokenize", started, time.perf_counter(), error=exc)
            raise
        tokenized_at = time.perf_counter()
        tokenize_s = tokenized_at - started
        if traced:
            self._stage_span(
                "tandem.tokenize", started, tokenized_at, {"tandem.texts": len(tokenized)}
            )
        self._metrics.tokenize_seconds.observe(
            tokenize_s, exemplar=trace_exemplar(request_span.get_span_context())
        )
        if command.truncation is Truncation.REJECT:
            self._reject_too_long(tokenized)
        # Now the exact token count is known: check the deadline again before queuing.
        self._admission.check_deadline(sum(t.token_count for t in tokenized), deadline)
        batched = await self._scheduler.submit(
            [t.ids for t in tokenized],
            options=NORMALIZED if command.normalize else RAW,
            deadline=deadline,
            link=request_span.get_span_context(),
        )
        if traced:
            self._trace_stages(batched, len(tokenized), sum(t.token_count for t in tokenized))
        return EmbedResult(
            model_id=self.info.model_id,
            vectors=batched.rows,
            token_counts=[t.token_count for t in tokenized],
            truncated=[t.truncated for t in tokenized],
            timings=Timings(tokenize_s, batched.queue_s, batched.inference_s),
        )

    def _trace_stages(self, batched: BatchedRows, texts: int, tokens: int) -> None:
        """Queue and inference spans, recorded from the scheduler's measured times."""
        trace.get_current_span().set_attributes({"tandem.texts": texts, "tandem.tokens": tokens})
        self._stage_span("tandem.queue", batched.submitted, batched.first_start)
        self._stage_span("tandem.inference", batched.first_start, batched.last_end)

    def _stage_span(
        self,
        name: str,
        start: float,
        end: float,
        attributes: dict[str, int] | None = None,
        *,
        error: BaseException | None = None,
    ) -> None:
        """One stage's span, a child of the current (server) span, recorded after the fact
        from perf_counter times: nothing nests under a stage, so it never needs to be
        current, and a span started and ended in one go costs about half of one entered
        as the current span."""
        span = self._tracer.start_span(name, start_time=epoch_ns(start), attributes=attributes)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end(end_time=epoch_ns(end))

    async def _tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        # Hundreds of long texts take milliseconds to tokenize: that runs on a
        # tokenizer thread. A short request tokenizes in tens of microseconds,
        # less than the two thread hand-offs would cost, so it runs inline:
        # the loop's work per request stays bounded by INLINE_TOKENIZE_CHARS.
        if sum(len(text) for text in texts) <= INLINE_TOKENIZE_CHARS:
            return self._model.tokenize(texts)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._tokenize_executor, self._encode_in_slices, texts)

    def _encode_in_slices(self, texts: Sequence[str]) -> list[TokenizedText]:
        out: list[TokenizedText] = []
        for start in range(0, len(texts), TOKENIZE_SLICE_TEXTS):
            out.extend(self._model.tokenize(texts[start : start + TOKENIZE_SLICE_TEXTS]))
        return out

    def validate(self, command: EmbedCommand) -> int:
        """Check the documented limits; raise InvalidInput / ModelNotFound naming the field.

        Returns the texts' total size in UTF-8 bytes (what admission counts).
        """
        info = self.info
        if command.model and not info.accepts(command.model):
            known = ", ".join((info.model_id, *info.aliases))
            raise ModelNotFound(
                f"{command.model!r} is not served here; use one of: {known}", param="model"
            )
        count = len(command.texts)
        if count == 0:
            raise InvalidInput("must contain at least one text", param="texts")
        if count > info.max_texts_per_request:
            raise InvalidInput(
                f"has {count} items; the maximum is {info.max_texts_per_request} per request",
                param="texts",
                reason=pb.ERROR_REASON_TOO_MANY_TEXTS,
            )
        total = 0
        for i, text in enumerate(command.texts):
            if not text:
                raise InvalidInput("is empty", param=f"texts[{i}]")
            size = _utf8_size(text)
            if size is None:
                raise InvalidInput(
                    "is not valid Unicode (it contains a lone surrogate)",
                    param=f"texts[{i}]",
                )
            if size > info.max_text_bytes:
                raise InvalidInput(
                    f"is {size} bytes of UTF-8; the maximum is {info.max_text_bytes} bytes",
                    param=f"texts[{i}]",
                    reason=pb.ERROR_REASON_TEXT_TOO_LARGE,
                )
            total += size
        return total

    def _reject_too_long(self, tokenized: Sequence[TokenizedText]) -> None:
        for i, text in enumerate(tokenized):
            if text.truncated:
                raise InvalidInput(
                    f"has {text.full_length} tokens; the model's maximum is "
                    f"{self.info.max_tokens} and truncation was refused",
                    param=f"texts[{i}]",
                    reason=pb.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED,
                )


def _utf8_size(text: str) -> int | None:
    """Length in UTF-8 bytes, or None when the text cannot be encoded (lone surrogates)."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None
