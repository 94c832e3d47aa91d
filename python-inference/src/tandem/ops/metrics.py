"""Prometheus metrics of the core, in a registry of its own (no module globals).

Names follow Prometheus conventions: tandem_core_*, base units, _total for
counters. The time split (queue, tokenization, inference) is what shows where a
slow request spent its time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064,
    0.128, 0.256, 0.512, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


class CoreMetrics:
    """All collectors of one core process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_start_time_seconds (and CPU, memory, fds), as the gateway
        # exports: a restart shows as a change of the start time (alerts).
        ProcessCollector(registry=r)
        self.requests = Counter(
            "tandem_core_requests",
            "Finished embedding requests by transport, method and outcome.",
            ["transport", "method", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "tandem_core_request_duration_seconds",
            "Time from receiving a request to answering it.",
            ["transport", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "tandem_core_inflight_requests", "Requests being handled now.", registry=r
        )
        self.queue_wait_seconds = Histogram(
            "tandem_core_queue_wait_seconds",
            "Time a request's texts waited in the queue before their first batch started.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokenize_seconds = Histogram(
            "tandem_core_tokenize_seconds",
            "Time to tokenize one request's texts.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "tandem_core_inference_seconds",
            "Time to run one inference batch (padding, model, pooling, normalisation).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_texts = Histogram(
            "tandem_core_batch_texts",
            "Texts per inference batch.",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "tandem_core_batch_tokens",
            "Padded tokens (rows x longest row) per inference batch.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.batch_padding_tokens = Counter(
            "tandem_core_batch_padding_tokens",
            "Padding tokens computed (waste); compare with tandem_core_batch_real_tokens_total.",
            registry=r,
        )
        self.batch_real_tokens = Counter(
            "tandem_core_batch_real_tokens", "Real tokens computed.", registry=r
        )
        self.queue_texts = Gauge(
            "tandem_core_queue_texts", "Texts waiting for a batch.", registry=r
        )
        self.queue_tokens = Gauge(
            "tandem_core_queue_tokens", "Tokens waiting for a batch.", registry=r
        )
        self.worker_batches = Counter(
            "tandem_core_worker_batches",
            "Batches run per inference worker: every worker should share the load.",
            ["worker"],
            registry=r,
        )
        self.batch_width = Counter(
            "tandem_core_batch_width",
            "Batches by width: wide ran alone on every CPU thread (no other batch running, "
            "nothing queued), narrow on its worker's own threads beside the others.",
            ["width"],
            registry=r,
        )
        for width in ("wide", "narrow"):
            self.batch_width.labels(width)  # both exported from the start, at 0
        self.busy_workers = Gauge(
            "tandem_core_busy_workers", "Inference workers running a batch now.", registry=r
        )
        self.workers_alive = Gauge(
            "tandem_core_workers_alive",
            "Inference worker threads alive; fewer than the planned workers means one died.",
            registry=r,
        )
        self.oldest_batch_seconds = Gauge(
            "tandem_core_oldest_batch_seconds",
            "Seconds since the oldest running inference batch started (0 when none runs); "
            "beyond the stall bound the core reports itself not live.",
            registry=r,
        )
        self.failed_batches = Counter(
            "tandem_core_failed_batches",
            "Inference batches that raised (every request in them failed).",
            registry=r,
        )
        self.non_finite_texts = Counter(
            "tandem_core_non_finite_texts",
            "Texts whose vector held NaN or Inf; their requests failed with an internal error.",
            registry=r,
        )
        self.rejected = Counter(
            "tandem_core_rejected_texts",
            "Texts refused or dropped without being computed, by reason.",
            ["reason"],
            registry=r,
        )
        self.admission_refused = Counter(
            "tandem_core_admission_refused_requests",
            "Requests refused at admission, before any work, by reason "
            "(requests_in_flight, bytes_in_flight, deadline).",
            ["reason"],
            registry=r,
        )
        self.admitted_requests = Gauge(
            "tandem_core_admitted_requests",
            "Requests past admission and not yet answered (bounded by max_inflight_requests).",
            registry=r,
        )
        self.admitted_bytes = Gauge(
            "tandem_core_admitted_bytes",
            "UTF-8 bytes of text of the admitted requests (bounded by max_inflight_bytes).",
            registry=r,
        )
        # The bounds, so that a dashboard or an alert can compare the two
        # gauges above with them (set once, from the settings, by the gate).
        self.admission_limit = Gauge(
            "tandem_core_admission_limit",
            "Admission bound by resource: requests (max_inflight_requests) and "
            "bytes (max_inflight_bytes).",
            ["resource"],
            registry=r,
        )
        self.service_rate_tokens = Gauge(
            "tandem_core_service_rate_tokens_per_second",
            "The pool's measured throughput (moving average), which deadline admission uses.",
            registry=r,
        )
        # The autoscaling signal (docs/kubernetes.md, "Autoscaling"): computed
        # when scraped, from the same model deadline admission uses.
        self.queue_wait_estimate_seconds = Gauge(
            "tandem_core_queue_wait_estimate_seconds",
            "Seconds a request arriving now would wait for the work ahead of it (queued and "
            "running tokens over the measured service rate); 0 when idle or not yet measured.",
            registry=r,
        )
        self.loop_lag_seconds = Histogram(
            "tandem_core_event_loop_lag_seconds",
            "How late the event loop ran a timer (it should stay near zero under any load).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.ready = Gauge(
            "tandem_core_ready", "1 when the model is loaded, warmed and not draining.", registry=r
        )
        self.model_info = Gauge(
            "tandem_core_model_info",
            "The served model and how it runs (value is always 1).",
            ["model_id", "precision", "workers", "threads_per_worker"],
            registry=r,
        )
        self.startup_seconds = Gauge(
            "tandem_core_startup_seconds", "Time from process start to ready.", registry=r
        )
