"""Every setting of the core, in one typed class, read from TANDEM_CORE_* variables.

Validated at start-up: a bad value stops the process with a message that names
the variable. docs/core.md lists every setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.model.manifest import Precision

ENV_PREFIX = "TANDEM_CORE_"
# The largest gRPC message / HTTP body. The admission byte bound defaults to
# two of them, so two largest requests are admitted at once and can batch
# together (raw messages carry a few bytes of framing per text, so a bound of
# exactly max_texts x max_text_bytes x 2 would admit one).
DEFAULT_MAX_REQUEST_BYTES = 4 << 20


def default_model_dir() -> Path:
    return Path.home() / ".cache" / "tandem" / "models"


class Settings(BaseSettings):
    """Configuration of one core process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # --- Listeners -----------------------------------------------------------
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds.")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 picks a free one).")
    grpc_max_connection_age_s: float = Field(
        30.0,
        ge=1,
        le=86400,
        description="Close each gRPC connection gracefully after this long (gRPC adds +-10% "
        "jitter), so clients re-resolve DNS and find cores that started since.",
    )
    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(8000, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    metrics_port: int = Field(
        9100,
        ge=0,
        le=65535,
        description="Port of /metrics, on the HTTP address (0 picks a free one). Apart from "
        "the API port so a NetworkPolicy can admit scrapers without admitting them to /v1/embed.",
    )

    # --- Model ----------------------------------------------------------------
    model_dir: Path = Field(
        default_factory=default_model_dir,
        description="Directory made by 'tandem build-model' (ONNX graphs, tokenizer, manifest).",
    )
    precision: Precision = Field("fp32", description="Which graph to run: fp32 or int8.")

    # --- Input limits (both transports) ----------------------------------------
    max_texts_per_request: int = Field(256, ge=1, le=4096, description="Texts in one request.")
    max_text_bytes: int = Field(8192, ge=16, le=1 << 20, description="UTF-8 bytes in one text.")
    max_request_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BYTES,
        ge=1024,
        le=64 << 20,
        description="Body size (HTTP) / message size (gRPC).",
    )

    # --- Compute: resolved against the CPU quota by tandem.capacity ------------
    cpus: float = Field(
        0.0,
        ge=0,
        le=1024,
        description="CPUs to plan for; 0 = the cgroup quota (or the host's CPUs without one).",
    )
    workers: int = Field(
        0, ge=0, le=64, description="Inference workers (each its own ORT session); 0 = auto."
    )
    threads_per_worker: int = Field(
        0, ge=0, le=64, description="ORT intra-op threads per worker; 0 = auto."
    )
    tokenizer_threads: int = Field(1, ge=1, le=16, description="Threads that tokenize requests.")
    adaptive_threads: bool = Field(
        True,
        description="With several workers: run a batch that is alone (no other batch running, "
        "nothing queued) on an extra session with every CPU thread, so a lone request gets "
        "every CPU; under load, one batch per worker. Costs that session's memory (see "
        "`tandem worker-math`).",
    )
    inference_nice: int = Field(
        0,
        ge=0,
        le=19,
        description="Nice value of the inference threads (workers and ONNX Runtime's pools), "
        "above the event loop's, so health checks and request handling preempt inference on "
        "a saturated core. Raising it needs no privilege; 0 (the default) leaves them at the "
        "loop's: measured on a quiet 2-CPU machine, 10 made no health check faster and the lone "
        "request slower (docs/benchmarks/core.md).",
    )

    # --- Dynamic batching ---------------------------------------------------------
    max_batch_size: int = Field(32, ge=1, le=1024, description="Texts in one inference batch.")
    max_batch_tokens: int = Field(
        1024, ge=256, le=65536, description="Padded tokens (rows x longest row) in one batch."
    )
    max_padding_ratio: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest share of a batch's tokens that may be padding."
    )
    max_queue_delay_ms: float = Field(
        2.0, ge=0.0, le=100.0, description="How long a text may wait for batch-mates under load."
    )
    max_queue_texts: int = Field(1024, ge=1, description="Queued texts before RESOURCE_EXHAUSTED.")
    max_queue_tokens: int = Field(
        65536, ge=256, description="Queued tokens before RESOURCE_EXHAUSTED."
    )
    # --- Admission (both transports together; docs/core.md, docs/worker-math.md) ---
    max_inflight_requests: int = Field(
        32,
        ge=1,
        le=4096,
        description="Requests admitted at once (tokenizing, queued or computing); more get "
        "RESOURCE_EXHAUSTED / 429 at once. A memory setting: see `tandem worker-math`.",
    )
    max_inflight_bytes: int = Field(
        2 * DEFAULT_MAX_REQUEST_BYTES,
        ge=1024,
        le=1 << 30,
        description="Bytes admitted at once, counted as raw gRPC messages / HTTP bodies before "
        "parsing (an upper bound of their text); at least one largest request "
        "(max_texts_per_request x max_text_bytes). Default: two of the default "
        "max_request_bytes. A memory setting: see `tandem worker-math`.",
    )
    transit_calls: int = Field(
        0,
        ge=0,
        le=1 << 20,
        description="Calls that can reach this core at once (gateway pods x the gateway's max "
        "in flight); each holds its raw message until admitted or refused. Only sizes the "
        "memory plan checked at start-up; 0 = max_inflight_requests (one gateway with the "
        "same in-flight limit). See `tandem worker-math`.",
    )
    default_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Deadline for calls that carry none."
    )

    # --- Worker health (worker_health.py) ---------------------------------------------
    worker_stall_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="A batch running longer than this means its worker is stuck: the core "
        "reports not ready and /healthz fails, so the kubelet restarts it. The largest "
        "batch (4 x 256 = 1024 padded tokens) took 0.5 s (median; 1.3 s at worst with "
        "both CPUs busy elsewhere) on a 2-CPU test machine, so the default leaves a "
        "factor of over 40 for slow or throttled nodes.",
    )
    worker_failure_threshold: int = Field(
        5,
        ge=1,
        le=1000,
        description="This many failed batches in a row make the core not ready (live); a "
        "probe batch every few seconds makes it ready again once one succeeds.",
    )

    # --- Lifecycle ----------------------------------------------------------------
    drain_delay_s: float = Field(
        0.0, ge=0, le=300, description="After SIGTERM: keep accepting work this long (not ready)."
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, le=600, description="After the drain delay: time for in-flight work."
    )

    # --- Logging --------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    access_log: bool = Field(True, description="One log line per embedding request.")

    @model_validator(mode="after")
    def _limits_fit_together(self) -> Self:
        if self.max_texts_per_request > self.max_queue_texts:
            raise ValueError(
                f"TANDEM_CORE_MAX_TEXTS_PER_REQUEST ({self.max_texts_per_request}) exceeds "
                f"TANDEM_CORE_MAX_QUEUE_TEXTS ({self.max_queue_texts}): such a request could "
                "never be queued; raise the queue limit or lower the request limit"
            )
        largest = self.max_texts_per_request * self.max_text_bytes
        if self.max_inflight_bytes < largest:
            raise ValueError(
                f"TANDEM_CORE_MAX_INFLIGHT_BYTES ({self.max_inflight_bytes}) is below the largest "
                f"request (TANDEM_CORE_MAX_TEXTS_PER_REQUEST x TANDEM_CORE_MAX_TEXT_BYTES = "
                f"{largest}); raise it or lower those limits"
            )
        if self.max_queue_tokens < self.max_batch_tokens:
            raise ValueError(
                "TANDEM_CORE_MAX_QUEUE_TOKENS must be at least TANDEM_CORE_MAX_BATCH_TOKENS"
            )
        return self
