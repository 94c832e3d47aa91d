from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.capacity import (
    BASE_MIB,
    HEADROOM,
    INFLIGHT_BYTES_FACTOR,
    MIB,
    RESULT_BYTES_PER_TEXT,
    SESSION_OVERHEAD_MIB,
    TRANSIT_BYTES_FACTOR,
    CapacityError,
    CapacityInputs,
    chart_capacity_json,
    check_memory_limit,
    plan_capacity,
)
from tandem.model.manifest import GraphCapacity, ModelManifest
from tandem.settings import Settings

# Inputs of a hypothetical model: the formula's arithmetic does not depend on
# the built one (whose measured inputs the manifest tests cover).
WEIGHTS_MIB = 86.6
ACTIVATION_BYTES = 36 * 1024


def _inputs(**overrides: object) -> CapacityInputs:
    values: dict[str, object] = {
        "cpus": 2.0,
        "workers": 0,
        "threads_per_worker": 0,
        "weights_mib": WEIGHTS_MIB,
        "activation_bytes_per_token": ACTIVATION_BYTES,
        "max_batch_tokens": 1024,
        # The admission bounds default to the core's (the CLI's defaults too).
        **{
            name: Settings.model_fields[name].default
            for name in (
                "max_inflight_requests",
                "max_inflight_bytes",
                "max_texts_per_request",
                "max_request_bytes",
            )
        },
        # The CLI's default: one gateway with the core's in-flight limit.
        "transit_calls": Settings.model_fields["max_inflight_requests"].default,
    }
    values.update(overrides)
    return CapacityInputs(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_single_threaded_workers_share_one_model_copy(workers: int) -> None:
    plan = plan_capacity(
        _inputs(cpus=4, workers=workers, threads_per_worker=1, adaptive_threads=False)
    )
    model = math.ceil(WEIGHTS_MIB + SESSION_OVERHEAD_MIB)
    per_worker = math.ceil(1024 * ACTIVATION_BYTES / MIB)
    assert (plan.model_copies, plan.model_mib, plan.per_worker_mib) == (1, model, per_worker)
    assert plan.memory_request_mib == (
        BASE_MIB + model + workers * per_worker + plan.inflight_mib + plan.transit_mib
    )
    assert plan.memory_limit_mib == math.ceil(plan.memory_request_mib * (1 + HEADROOM))


def test_multi_threaded_workers_each_hold_a_model_copy() -> None:
    plan = plan_capacity(_inputs(cpus=4, workers=2, threads_per_worker=2, adaptive_threads=False))
    assert plan.model_copies == 2
    assert plan.memory_request_mib == (
        BASE_MIB
        + 2 * plan.model_mib
        + 2 * plan.per_worker_mib
        + plan.inflight_mib
        + plan.transit_mib
    )


@pytest.mark.parametrize(("workers", "threads"), [(2, 1), (4, 1), (2, 2)])
def test_the_wide_session_is_one_more_model_copy_and_batch_arena(
    workers: int, threads: int
) -> None:
    """Adaptive threads: lone batches run on an extra session with every CPU thread."""
    fixed = plan_capacity(
        _inputs(cpus=4, workers=workers, threads_per_worker=threads, adaptive_threads=False)
    )
    adaptive = plan_capacity(
        _inputs(cpus=4, workers=workers, threads_per_worker=threads, adaptive_threads=True)
    )
    assert (fixed.wide_threads, adaptive.wide_threads) == (0, workers * threads)
    assert adaptive.cpu_threads == fixed.cpu_threads  # it runs only while every worker waits
    assert adaptive.model_copies == fixed.model_copies + 1
    assert (fixed.batch_arenas, adaptive.batch_arenas) == (workers, workers + 1)
    assert adaptive.memory_request_mib - fixed.memory_request_mib == (
        fixed.model_mib + fixed.per_worker_mib
    )


def test_one_worker_already_has_every_thread_so_there_is_no_wide_session() -> None:
    plan = plan_capacity(_inputs(cpus=4, workers=1, adaptive_threads=True))
    assert (plan.threads_per_worker, plan.wide_threads, plan.model_copies) == (4, 0, 1)
    assert plan.batch_arenas == 1


def test_activation_memory_follows_the_batch_token_budget() -> None:
    small = plan_capacity(_inputs(max_batch_tokens=512))
    large = plan_capacity(_inputs(max_batch_tokens=2048))
    assert large.per_worker_mib == 4 * small.per_worker_mib


def test_admitted_requests_hold_their_text_bytes_and_their_results() -> None:
    plan = plan_capacity(
        _inputs(max_inflight_requests=4, max_inflight_bytes=8 << 20, max_texts_per_request=128)
    )
    held = (8 << 20) * INFLIGHT_BYTES_FACTOR + 4 * 128 * RESULT_BYTES_PER_TEXT
    assert plan.inflight_mib == math.ceil(held / MIB)
    # The admission bounds are memory settings: halving them shrinks the plan.
    smaller = plan_capacity(
        _inputs(max_inflight_requests=2, max_inflight_bytes=4 << 20, max_texts_per_request=128)
    )
    assert smaller.inflight_mib * 2 in (plan.inflight_mib, plan.inflight_mib + 1)
    assert plan.memory_request_mib - smaller.memory_request_mib == (
        plan.inflight_mib - smaller.inflight_mib
    )


def test_calls_in_transit_hold_their_raw_messages() -> None:
    # 3 gateways x 32 in flight, each call up to the gateway's send limit.
    plan = plan_capacity(_inputs(transit_calls=96, max_request_bytes=2_098_944))
    assert plan.transit_mib == math.ceil(96 * 2_098_944 * TRANSIT_BYTES_FACTOR / MIB)
    one_gateway = plan_capacity(_inputs(transit_calls=32, max_request_bytes=2_098_944))
    assert plan.memory_request_mib - one_gateway.memory_request_mib == (
        plan.transit_mib - one_gateway.transit_mib
    )
    assert plan.transit_mib > 2 * one_gateway.transit_mib


def test_the_default_byte_bound_admits_two_largest_messages() -> None:
    """Two largest requests batch together: their raw messages fit the default bound."""
    defaults = Settings.model_construct()  # the declared defaults, not the environment
    assert defaults.max_inflight_bytes == 2 * defaults.max_request_bytes
    assert defaults.max_inflight_bytes >= 2 * (
        defaults.max_texts_per_request * (defaults.max_text_bytes + 3)
    )


def test_default_layout_is_one_single_threaded_worker_per_cpu() -> None:
    plan = plan_capacity(_inputs(cpus=4))
    assert (plan.workers, plan.threads_per_worker, plan.cpu_threads) == (4, 1, 4)
    assert plan_capacity(_inputs(cpus=1.5)).workers == 2  # a fractional quota rounds up


def test_given_workers_or_threads_fill_the_rest_of_the_quota() -> None:
    plan = plan_capacity(_inputs(cpus=4, workers=2))
    assert (plan.workers, plan.threads_per_worker) == (2, 2)
    plan = plan_capacity(_inputs(cpus=4, threads_per_worker=4))
    assert (plan.workers, plan.threads_per_worker) == (1, 4)


def test_oversubscription_is_refused_naming_the_setting() -> None:
    with pytest.raises(CapacityError, match="TANDEM_CORE_WORKERS"):
        plan_capacity(_inputs(cpus=2, workers=2, threads_per_worker=2))


def test_memory_limit_too_small_is_refused_naming_the_setting() -> None:
    plan = plan_capacity(_inputs(workers=2, threads_per_worker=1))
    check_memory_limit(plan, plan.memory_request_mib * MIB)
    with pytest.raises(CapacityError, match="TANDEM_CORE_MAX_BATCH_TOKENS"):
        check_memory_limit(plan, (plan.memory_request_mib - 1) * MIB)


def test_cli_prints_the_same_plan_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tandem", "worker-math", "--cpus", "4", "--workers", "2",
         "--weights-mib", str(WEIGHTS_MIB),
         "--activation-bytes-per-token", str(ACTIVATION_BYTES)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert json.loads(out) == plan_capacity(_inputs(cpus=4, workers=2)).as_dict()


def test_cli_refuses_oversubscription_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tandem", "worker-math", "--cpus", "1", "--workers", "2",
         "--weights-mib", "80", "--activation-bytes-per-token", "1024"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "TANDEM_CORE_WORKERS" in done.stderr


@pytest.mark.parametrize("command", [["worker-math", "--cpus", "1"], ["chart-capacity"]])
def test_cli_without_a_model_says_how_to_build_one(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tandem", *command, "--model-dir", str(tmp_path / "none")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "build-model" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_reads_the_model_inputs_of_the_chosen_precision(tmp_path: Path) -> None:
    """Without overrides, worker-math takes weights and activations from the manifest."""
    measured = {"fp32": (64 * MIB, 40 * 1024), "int8": (16 * MIB, 48 * 1024)}
    write_manifest(tmp_path, measured)
    for precision, (weights, activation) in measured.items():
        out = subprocess.run(
            [sys.executable, "-m", "tandem", "worker-math", "--cpus", "2",
             "--model-dir", str(tmp_path), "--precision", precision],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        expected = plan_capacity(
            _inputs(weights_mib=weights / MIB, activation_bytes_per_token=activation)
        )
        assert json.loads(out) == expected.as_dict()


def test_chart_capacity_is_the_manifest_in_the_charts_names(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"fp32": (1000, 8192), "int8": (500, 16384)})
    out = subprocess.run(
        [sys.executable, "-m", "tandem", "chart-capacity", "--model-dir", str(tmp_path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert json.loads(out)["precisions"] == {
        "fp32": {"weightsBytes": 1000, "activationBytesPerToken": 8192},
        "int8": {"weightsBytes": 500, "activationBytesPerToken": 16384},
    }
    # Stable text, so the drift check can diff it: same input, same bytes.
    assert out == chart_capacity_json(
        "test/model",
        {"int8": {"weights_bytes": 500, "activation_bytes_per_token": 16384},
         "fp32": {"weights_bytes": 1000, "activation_bytes_per_token": 8192}},
    )  # fmt: skip


def write_manifest(model_dir: Path, measured: dict[str, tuple[int, int]]) -> None:
    ModelManifest(
        model_id="test/model",
        aliases=(),
        dimension=8,
        max_tokens=16,
        graphs={p: f"model-{p}.onnx" for p in measured},  # type: ignore[misc]
        source_package="test==0",
        source_sha256="0" * 64,
        capacity={
            p: GraphCapacity(weights_bytes=w, activation_bytes_per_token=a)  # type: ignore[misc]
            for p, (w, a) in measured.items()
        },
    ).write(model_dir)
