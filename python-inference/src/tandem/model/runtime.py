"""ONNX Runtime inference for one worker: padded batch in, pooled vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tandem.model.signature import ATTENTION_MASK, INPUT_IDS, OUTPUT


class OnnxEncoder:
    """One ONNX Runtime session with explicit thread counts.

    ORT's default intra-op pool uses every core of the host, which
    oversubscribes the CPU as soon as a container runs several workers (or
    gets less CPU than the host has). The caller decides the threads from the
    CPU quota; see tandem.capacity.
    """

    def __init__(self, path: Path, intra_op_threads: int, *, spin: bool = False) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # One graph, executed sequentially: inter-op parallelism buys nothing
        # here and would be more threads than the quota allows.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads spin by default, burning CPU that other workers
        # in the same container need. A session that runs only while nothing
        # else does (``spin``: the scheduler's wide session) spins instead:
        # its threads then pick up each parallel step at once rather than
        # being woken for it, 7.6 -> 6.3 ms for one text on 2 threads here
        # (docs/worker-math.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def encode(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        """Mean-pooled (not normalised) vectors, float32 [len(rows), dim]."""
        width = max(int(row.shape[0]) for row in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int32)
        mask = np.zeros((len(rows), width), dtype=np.int32)
        for i, row in enumerate(rows):
            input_ids[i, : row.shape[0]] = row
            mask[i, : row.shape[0]] = 1
        (vectors,) = self._session.run([OUTPUT], {INPUT_IDS: input_ids, ATTENTION_MASK: mask})
        return np.asarray(vectors, dtype=np.float32)
