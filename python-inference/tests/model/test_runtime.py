"""OnnxEncoder: one session with the threads it is given, padded batches, rows that do not mix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tandem.model.manifest import ModelManifest
from tandem.model.runtime import OnnxEncoder


@pytest.fixture(scope="module")
def encoder(model_dir: Path) -> OnnxEncoder:
    manifest = ModelManifest.read(model_dir)
    return OnnxEncoder(manifest.graph_path(model_dir, "fp32"), intra_op_threads=1)


def _row(*ids: int) -> np.ndarray:
    return np.array([101, *ids, 102], dtype=np.int32)


def test_the_session_runs_with_exactly_the_threads_it_was_given(model_dir: Path) -> None:
    path = ModelManifest.read(model_dir).graph_path(model_dir, "fp32")
    options = OnnxEncoder(path, intra_op_threads=2)._session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_session_that_runs_alone_spins_between_parallel_steps(model_dir: Path) -> None:
    path = ModelManifest.read(model_dir).graph_path(model_dir, "fp32")
    options = OnnxEncoder(path, intra_op_threads=2, spin=True)._session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_a_batch_of_uneven_rows_is_each_row_alone(encoder: OnnxEncoder) -> None:
    rows = [_row(7592), _row(2023, 2003, 1037, 2936, 6251), _row(2460, 2460)]
    batch = encoder.encode(rows)
    assert batch.dtype == np.float32
    assert batch.shape == (3, 384)
    for i, row in enumerate(rows):
        alone = encoder.encode([row])[0]
        # Padding is masked: a short row padded to the longest answers as it does alone.
        np.testing.assert_allclose(batch[i], alone, atol=1e-5)
    assert not np.allclose(batch[0], batch[1])


def test_vectors_are_pooled_not_normalised(encoder: OnnxEncoder) -> None:
    norms = np.linalg.norm(encoder.encode([_row(7592), _row(2088, 2088, 2088)]), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)  # normalising is postprocess's job
