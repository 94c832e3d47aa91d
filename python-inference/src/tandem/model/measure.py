"""Measure a built graph's capacity inputs for the worker math (build time).

Weights are counted exactly (the initializers' bytes). Activations cannot be
counted from the graph (ORT's arena, kernel scratch buffers and allocator
rounding decide them), so they are measured: a fresh process loads the graph
with one intra-op thread (a worker's session), runs a tiny batch so that
kernels and the arena exist, records its resident memory, runs one batch of
full-length rows and reads the peak (VmHWM). The growth divided by the batch's
padded tokens is the memory a worker keeps per padded token of its largest
batch. Full-length rows are the worst case per token: attention scores grow
with the row length. Two batch sizes are measured, each in its own process
(the arena grows by doubling, so a batch can land just above or below a
doubling), and the larger figure is kept.

Measured figures move by a few percent between runs and machines (allocator,
CPU kernels), so they are rounded up to ACTIVATION_GRANULARITY_BYTES: the
recorded number, and the chart values generated from it, stay the same unless
the model really changed (docs/worker-math.md).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

ACTIVATION_GRANULARITY_BYTES = 8 * 1024
# Full-length rows per measured batch: 4 x 256 is the core's default
# max_batch_tokens (1024); 8 rows checks the next arena doubling.
MEASURED_ROWS = (4, 8)
# A token id every vocabulary has ([unused] or a letter); the value does not
# change the memory, the shape does.
_TOKEN_ID = 1000


def initializer_bytes(graph: Path) -> int:
    """Bytes of the graph's weights: the sum of its initializers' tensor sizes."""
    import onnx  # noqa: PLC0415 (build-time only dependency)
    from onnx import numpy_helper  # noqa: PLC0415

    model = onnx.load(str(graph))
    return sum(int(numpy_helper.to_array(t).nbytes) for t in model.graph.initializer)


def activation_bytes_per_token(graph: Path, max_tokens: int) -> int:
    """Peak bytes per padded token, the largest over MEASURED_ROWS, rounded up."""
    measured = max(_measure_in_child(graph, rows, max_tokens) for rows in MEASURED_ROWS)
    return round_up(measured, ACTIVATION_GRANULARITY_BYTES)


def round_up(value: float, granularity: int) -> int:
    return math.ceil(value / granularity) * granularity


def _measure_in_child(graph: Path, rows: int, tokens: int) -> float:
    # A fresh interpreter: the build process holds onnx, the weights and the
    # quantizer's buffers, which would hide the session's growth.
    command = [sys.executable, "-m", "tandem.model.measure", str(graph), str(rows), str(tokens)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"measuring {graph} ({rows} x {tokens} tokens) failed: {exc.stderr.strip()}"
        ) from exc
    return float(json.loads(done.stdout)["bytes_per_token"])


def _resident(field: str) -> int:
    """VmRSS or VmHWM of this process in bytes (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}: activations are measured on Linux")


def _child(graph: Path, rows: int, tokens: int) -> dict[str, float]:
    from tandem.model.runtime import OnnxEncoder  # noqa: PLC0415

    encoder = OnnxEncoder(graph, intra_op_threads=1)
    encoder.encode([np.full(8, _TOKEN_ID, np.int32)])
    # Reset the peak to the current RSS (Linux >= 4.0), so VmHWM below is this
    # batch's peak, not the session load's.
    Path("/proc/self/clear_refs").write_text("5")
    before = _resident("VmRSS")
    encoder.encode([np.full(tokens, _TOKEN_ID, np.int32)] * rows)
    peak = _resident("VmHWM")
    return {"bytes_per_token": max(0, peak - before) / (rows * tokens)}


if __name__ == "__main__":
    path, row_count, token_count = sys.argv[1:4]
    print(json.dumps(_child(Path(path), int(row_count), int(token_count))))
