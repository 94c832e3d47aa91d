"""One core process: gRPC and HTTP on one event loop, the model on worker threads.

Start-up order matters for honest health:
1. bind both ports first, so liveness answers and readiness says "loading";
2. load the model (tandem.model.interface) and one session per worker (off the loop);
3. warm up through the real request path (tokenizer, queue, every worker);
4. only then report ready.
SIGTERM: not ready at once -> drain delay (still serving) -> refuse new work
-> finish in-flight work within the grace period -> exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import uvicorn

from tandem.admission import AdmissionGate, AdmissionLimits
from tandem.batching.planner import BatchLimits
from tandem.batching.scheduler import BatchScheduler, QueueLimits
from tandem.capacity import CapacityInputs, CapacityPlan, check_memory_limit, plan_capacity
from tandem.grpc_api.server import GrpcEdge
from tandem.http_api.app import ApiLimits, create_app
from tandem.http_api.deps import AppContext
from tandem.http_api.metrics_app import create_metrics_app
from tandem.lifecycle import Lifecycle
from tandem.model.interface import Model, Session
from tandem.model.manifest import ModelManifest
from tandem.model.minilm import EmbedOptions, MiniLMEmbedding
from tandem.ops import cgroups
from tandem.ops.cpu_features import report_cpu_features
from tandem.ops.loop_monitor import monitor_event_loop
from tandem.ops.metrics import CoreMetrics
from tandem.ops.priority import lower_thread_priority
from tandem.ops.telemetry import Tracing, setup_tracing
from tandem.service import EmbedCommand, EmbeddingService, ModelInfo
from tandem.settings import Settings
from tandem.worker_health import HealthPolicy, WorkerWatchdog

log = logging.getLogger(__name__)

MIB = 1 << 20


@dataclass(frozen=True)
class Ports:
    grpc: int
    http: int
    metrics: int


def plan_for(settings: Settings, manifest: ModelManifest) -> CapacityPlan:
    """The worker math for this process, checked against its cgroup limits.

    The model's terms come from its manifest, measured when it was built.
    """
    measured = manifest.capacity_of(settings.precision)
    plan = plan_capacity(
        CapacityInputs(
            cpus=settings.cpus or cgroups.cpu_quota() or float(cgroups.available_cpus()),
            workers=settings.workers,
            threads_per_worker=settings.threads_per_worker,
            weights_mib=measured.weights_bytes / MIB,
            activation_bytes_per_token=measured.activation_bytes_per_token,
            max_batch_tokens=settings.max_batch_tokens,
            max_inflight_requests=settings.max_inflight_requests,
            max_inflight_bytes=settings.max_inflight_bytes,
            max_texts_per_request=settings.max_texts_per_request,
            transit_calls=settings.transit_calls or settings.max_inflight_requests,
            max_request_bytes=settings.max_request_bytes,
            adaptive_threads=settings.adaptive_threads,
        )
    )
    check_memory_limit(plan, cgroups.memory_limit())
    return plan


async def serve(
    settings: Settings,
    *,
    process_started: float,
    stop: asyncio.Event | None = None,
    on_listening: asyncio.Future[Ports] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    manifest = ModelManifest.read(settings.model_dir)
    manifest.graph_path(settings.model_dir, settings.precision)  # fail fast if not built
    plan = plan_for(settings, manifest)
    log.info("capacity plan", extra={"plan": plan.as_dict(), "precision": settings.precision})

    tracing = setup_tracing()
    metrics = CoreMetrics()
    report_cpu_features(metrics.registry)  # int8 speed depends on them (docs/benchmarks/int8.md)
    lifecycle = Lifecycle(metrics)
    grpc_edge = GrpcEdge(settings, lifecycle, metrics, tracing.tracer)
    http = _HttpServers(
        _http_config(settings, lifecycle, metrics, tracing), _metrics_config(settings, metrics)
    )
    await grpc_edge.start()
    await http.start()
    _announce_listening(
        Ports(grpc=grpc_edge.port, http=http.api.port, metrics=http.metrics.port), on_listening
    )
    # Loop monitors; cancelled first at shutdown (workers then exit on purpose).
    background = [loop.create_task(monitor_event_loop(metrics), name="loop-monitor")]

    tokenize_pool = ThreadPoolExecutor(settings.tokenizer_threads, thread_name_prefix="tokenize")
    scheduler: BatchScheduler | None = None
    try:
        loading = loop.create_task(asyncio.to_thread(_load_model, settings, manifest, plan))
        if not await _first(loading, stop):
            return  # asked to stop while loading
        model, sessions = loading.result()
        info = _model_info(settings, model)
        scheduler = _scheduler(settings, model, sessions, metrics, tracing, info)
        admission = AdmissionGate(
            AdmissionLimits(settings.max_inflight_requests, settings.max_inflight_bytes),
            scheduler,
            metrics,
            clock=loop.time,
        )
        service = EmbeddingService(
            info,
            model,
            scheduler,
            tokenize_pool,
            metrics,
            admission=admission,
            tracer=tracing.tracer,
        )
        # As many warm-up requests at once as workers, within the admission bound.
        await _warm_up(service, model, min(plan.workers, settings.max_inflight_requests))
        lifecycle.attach(service)
        await lifecycle.set_ready()
        background.append(
            loop.create_task(
                _watch_workers(settings, scheduler, service, metrics, lifecycle),
                name="worker-watchdog",
            )
        )
        _announce_ready(metrics, info, plan, process_started)

        await stop.wait()
        await _drain(settings, lifecycle, scheduler)
    finally:
        log.info("stopping servers")
        deadline = loop.time() + settings.shutdown_grace_s
        for task in background:
            task.cancel()
        # Accepted work first: every queued and running batch finishes.
        if scheduler is not None:
            await scheduler.close(settings.shutdown_grace_s)
        # gRPC cancels calls that arrived but were not yet handed to a
        # handler when the server stops (grpc/grpc#41785): clients would see
        # CANCELLED, not the retryable UNAVAILABLE. So keep refusing with
        # UNAVAILABLE until callers have gone quiet, then stop.
        await grpc_edge.quiesce(quiet_s=0.25, until=deadline)
        await asyncio.gather(
            grpc_edge.stop(max(0.0, deadline - loop.time())), http.stop(), return_exceptions=True
        )
        tokenize_pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(tracing.shutdown)
        log.info("stopped")


def _announce_listening(ports: Ports, on_listening: asyncio.Future[Ports] | None) -> None:
    log.info("listening", extra={"grpc_port": ports.grpc, "http_port": ports.http,
                                 "metrics_port": ports.metrics})  # fmt: skip
    if on_listening is not None and not on_listening.done():
        on_listening.set_result(ports)


def _announce_ready(
    metrics: CoreMetrics, info: ModelInfo, plan: CapacityPlan, process_started: float
) -> None:
    metrics.model_info.labels(
        info.model_id, info.precision, str(plan.workers), str(plan.threads_per_worker)
    ).set(1)
    startup_s = time.monotonic() - process_started
    metrics.startup_seconds.set(startup_s)
    log.info("ready", extra={"startup_seconds": round(startup_s, 3)})


async def _first(work: asyncio.Task[object], stop: asyncio.Event) -> bool:
    """Wait for ``work`` or ``stop``; True when the work finished first."""
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait((work, stopping), return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if work.done():
        return True
    work.cancel()
    return False


def _http_config(
    settings: Settings, lifecycle: Lifecycle, metrics: CoreMetrics, tracing: Tracing
) -> uvicorn.Config:
    app = create_app(
        AppContext(
            lifecycle,
            metrics,
            settings.default_timeout_s,
            settings.access_log,
            max_body_bytes=settings.max_request_bytes,
        ),
        ApiLimits(
            settings.max_request_bytes, settings.max_texts_per_request, settings.max_text_bytes
        ),
    )
    tracing.instrument_http(app)
    return _uvicorn_config(
        app,
        settings.http_host,
        settings.http_port,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )


def _metrics_config(settings: Settings, metrics: CoreMetrics) -> uvicorn.Config:
    return _uvicorn_config(
        create_metrics_app(metrics.registry), settings.http_host, settings.metrics_port
    )


def _uvicorn_config(app: Any, host: str, port: int, **extra: Any) -> uvicorn.Config:
    """uvicorn as every listener of the core runs it: on this process's event
    loop, without its own lifespan, logging or access log (ours are JSON)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="asyncio",
        lifespan="off",
        log_config=None,
        access_log=False,
        **extra,
    )


async def _watch_workers(
    settings: Settings,
    scheduler: BatchScheduler,
    service: EmbeddingService,
    metrics: CoreMetrics,
    lifecycle: Lifecycle,
) -> None:
    """Report dead, stalled or always-failing workers through readiness and liveness."""
    loop = asyncio.get_running_loop()

    async def probe() -> object:
        # A short text through the real path; its batch resets the failure streak.
        return await service.embed(EmbedCommand(texts=["health probe"]), loop.time() + 10)

    watchdog = WorkerWatchdog(
        scheduler.threads,
        scheduler.beats,
        HealthPolicy(settings.worker_stall_s, settings.worker_failure_threshold),
        metrics,
        on_verdict=lifecycle.set_worker_health,
        probe=probe,
    )
    try:
        await watchdog.run()
    finally:
        watchdog.stop()


def _scheduler(  # noqa: PLR0917 (private; every argument is a different type)
    settings: Settings,
    model: Model[EmbedOptions],
    sessions: Sessions,
    metrics: CoreMetrics,
    tracing: Tracing,
    info: ModelInfo,
) -> BatchScheduler:
    return BatchScheduler(
        [session.encode for session in sessions.workers],
        BatchLimits(settings.max_batch_size, settings.max_batch_tokens, settings.max_padding_ratio),
        QueueLimits(
            settings.max_queue_texts, settings.max_queue_tokens, settings.max_queue_delay_ms / 1000
        ),
        metrics,
        tracer=tracing.tracer,
        span_attributes={"tandem.model": info.model_id, "tandem.precision": info.precision},
        postprocess=model.postprocess,
        wide=sessions.wide.encode if sessions.wide is not None else None,
        worker_nice=settings.inference_nice,
    )


def _model_info(settings: Settings, model: Model[EmbedOptions]) -> ModelInfo:
    # The served names come from the model (the manifest's, suffixed per
    # precision), so an int8 core is its own model to the gateway's routing.
    return ModelInfo(
        model_id=model.model_id,
        aliases=model.aliases,
        dimension=model.manifest.dimension,
        max_tokens=model.manifest.max_tokens,
        max_texts_per_request=settings.max_texts_per_request,
        max_text_bytes=settings.max_text_bytes,
        precision=settings.precision,
    )


async def _drain(settings: Settings, lifecycle: Lifecycle, scheduler: BatchScheduler) -> None:
    log.info("draining", extra={"drain_delay_s": settings.drain_delay_s})
    await lifecycle.begin_drain()
    # Load balancers (kube-proxy, the gateway's health watch) need a moment to
    # stop sending; work that still arrives meanwhile is served.
    await asyncio.sleep(settings.drain_delay_s)
    await lifecycle.stop_accepting()
    scheduler.stop_accepting()


@dataclass(frozen=True)
class Sessions:
    workers: list[Session]  # one per worker (the same object when they share one)
    wide: Session | None  # every CPU thread, for lone batches (the plan's wide_threads)


def _load_model(
    settings: Settings, manifest: ModelManifest, plan: CapacityPlan
) -> tuple[Model[EmbedOptions], Sessions]:
    """The served model, one session per worker and the wide session if the plan has one.

    The one place that names the model class: serving another model means
    changing this line (docs/your-model.md).
    """
    model: Model[EmbedOptions] = MiniLMEmbedding(settings.model_dir, manifest, settings.precision)
    # Opened on a thread of their own that lowered its priority first: ORT's
    # intra-op pool threads start with their session and inherit it.
    with ThreadPoolExecutor(
        1,
        thread_name_prefix="open-sessions",
        initializer=lower_thread_priority,
        initargs=(settings.inference_nice,),
    ) as opener:
        return model, opener.submit(_open_sessions, model, plan).result()


def _open_sessions(model: Model[EmbedOptions], plan: CapacityPlan) -> Sessions:
    if plan.threads_per_worker == 1:
        # Single-threaded workers share one session: ORT runs concurrent
        # run() calls on the calling threads, and the weights exist once.
        shared = model.open_session(1)
        workers = [shared for _ in range(plan.workers)]
    else:
        # Multi-threaded workers each need their own intra-op thread pool.
        workers = [model.open_session(plan.threads_per_worker) for _ in range(plan.workers)]
    # The wide session runs only while every worker slot is held: its threads
    # may spin between parallel steps (model/runtime.py).
    wide = model.open_session(plan.wide_threads, exclusive=True) if plan.wide_threads else None
    return Sessions(workers, wide)


async def _warm_up(service: EmbeddingService, model: Model[EmbedOptions], workers: int) -> None:
    """Run real requests through every worker (and the wide session) before reporting ready."""
    loop = asyncio.get_running_loop()
    # One text at a time first: each runs alone, so on the wide session when
    # there is one (the scheduler's choice), which then has its kernels and
    # its arena's largest row ready too.
    for text in model.warmup_texts:
        await service.embed(EmbedCommand(texts=[text]), loop.time() + 60)
    requests = [
        service.embed(EmbedCommand(texts=list(model.warmup_texts)), loop.time() + 60)
        for _ in range(workers)
    ]
    await asyncio.gather(*requests)


class _HttpServer(uvicorn.Server):
    """uvicorn, minus its own signal handling: this process owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def start_serving(self, name: str) -> asyncio.Task[None]:
        """Serve in a task of its own; return it once the port is bound."""
        task = asyncio.get_running_loop().create_task(self.serve(), name=name)
        await self.wait_started(task)
        return task

    async def wait_started(self, task: asyncio.Task[None]) -> None:
        while not self.started:
            if task.done():
                # uvicorn exits the task (SystemExit) when it cannot bind.
                raise OSError(f"HTTP server failed to start: {task.exception()!r}")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        sockets = self.servers[0].sockets
        return int(sockets[0].getsockname()[1])


class _HttpServers:
    """The API and the metrics listeners, started and stopped together."""

    def __init__(self, api: uvicorn.Config, metrics: uvicorn.Config) -> None:
        self.api = _HttpServer(api)
        self.metrics = _HttpServer(metrics)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(await self.api.start_serving("http-server"))
        self._tasks.append(await self.metrics.start_serving("metrics-server"))

    async def stop(self) -> None:
        self.api.should_exit = True
        self.metrics.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
