"""build_graph: the fused graph's structure, signature and pooling, built here from the weights.

The vectors' correctness is tested against the official pipeline
(test_reference_vectors.py, on the built model directory). These check what
that cannot see, on a graph built by this module now (not a file built
earlier): every block fused into ORT's contrib operators (an unfused graph
gives the same vectors, only slower), the signature the runtime feeds, the
token-type folding, and pooling that follows the attention mask, not the ids.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from safetensors.numpy import load_file

from tandem.model.graph import CONTRIB, IR_VERSION, OPSET, build_graph
from tandem.model.signature import ATTENTION_MASK, INPUT_IDS, OUTPUT
from tandem.model.source import SourceModel, locate_source_model


@pytest.fixture(scope="module")
def source() -> SourceModel:
    return locate_source_model()


@pytest.fixture(scope="module")
def weights(source: SourceModel) -> dict[str, np.ndarray]:
    return load_file(str(source.weights))


@pytest.fixture(scope="module")
def graph(weights: dict[str, np.ndarray], source: SourceModel) -> onnx.ModelProto:
    return build_graph(weights, source)


@pytest.fixture(scope="module")
def session(graph: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def test_every_block_is_one_fused_contrib_operator(
    graph: onnx.ModelProto, source: SourceModel
) -> None:
    layers = source.num_layers
    ops = Counter((node.domain, node.op_type) for node in graph.graph.node)
    assert ops == {
        (CONTRIB, "EmbedLayerNormalization"): 1,
        (CONTRIB, "Attention"): layers,
        (CONTRIB, "SkipLayerNormalization"): 2 * layers,  # after attention and after the FFN
        (CONTRIB, "BiasGelu"): layers,
        ("", "MatMul"): 3 * layers,  # attention output, FFN up, FFN down
        # Mean pooling over the mask.
        ("", "Cast"): 1,
        ("", "Unsqueeze"): 1,
        ("", "Mul"): 1,
        ("", "ReduceSum"): 2,
        ("", "Max"): 1,
        ("", "Div"): 1,
    }


def test_onnx_runtime_reads_the_graphs_version(
    graph: onnx.ModelProto, session: ort.InferenceSession
) -> None:
    # onnx writes a newer IR version by default than this ONNX Runtime reads;
    # the session fixture is the proof that ORT loads this one.
    assert graph.ir_version == IR_VERSION
    assert [i.name for i in session.get_inputs()] == [INPUT_IDS, ATTENTION_MASK]
    assert {(o.domain, o.version) for o in graph.opset_import} == {("", OPSET), (CONTRIB, 1)}
    onnx.checker.check_model(graph)


def test_the_signature_is_what_the_runtime_feeds(
    graph: onnx.ModelProto, source: SourceModel
) -> None:
    def shape(value: onnx.ValueInfoProto) -> list[str | int]:
        dims = value.type.tensor_type.shape.dim
        return [d.dim_param or d.dim_value for d in dims]

    inputs = {v.name: (v.type.tensor_type.elem_type, shape(v)) for v in graph.graph.input}
    assert inputs == {
        INPUT_IDS: (onnx.TensorProto.INT32, ["batch", "sequence"]),
        ATTENTION_MASK: (onnx.TensorProto.INT32, ["batch", "sequence"]),
    }
    (output,) = graph.graph.output
    assert (output.name, output.type.tensor_type.elem_type, shape(output)) == (
        OUTPUT,
        onnx.TensorProto.FLOAT,
        ["batch", source.hidden_size],
    )


def test_token_type_zero_is_folded_into_the_position_table(
    graph: onnx.ModelProto, weights: dict[str, np.ndarray]
) -> None:
    tables = {
        t.name: numpy_helper.to_array(t)
        for t in graph.graph.initializer
        if t.name == "position_embeddings"
    }
    expected = (
        weights["embeddings.position_embeddings.weight"]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    np.testing.assert_array_equal(tables["position_embeddings"], expected)
    (embed,) = [n for n in graph.graph.node if n.op_type == "EmbedLayerNormalization"]
    assert embed.input[1] == embed.input[4] == ""  # no segment ids, no segment table


def _run(session: ort.InferenceSession, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    outputs = session.run([OUTPUT], {INPUT_IDS: ids, ATTENTION_MASK: mask})
    return np.asarray(outputs[0])


def test_pooling_follows_the_mask_not_the_padding_ids(session: ort.InferenceSession) -> None:
    real = np.array([[101, 7592, 2088, 102]], dtype=np.int32)  # [CLS] hello world [SEP]
    alone = _run(session, real, np.ones_like(real))
    # The same row right-padded to 64 with real-word ids (not 0) under a zero mask.
    padded = np.concatenate((real, np.full((1, 60), 2088, dtype=np.int32)), axis=1)
    mask = np.concatenate((np.ones((1, 4)), np.zeros((1, 60))), axis=1).astype(np.int32)
    np.testing.assert_allclose(_run(session, padded, mask), alone, rtol=1e-4, atol=1e-5)
    # Counting the padding as real tokens would give another vector.
    unmasked = _run(session, padded, np.ones_like(padded))
    assert not np.allclose(unmasked, alone, atol=1e-3)


def test_rows_of_a_batch_do_not_mix(session: ort.InferenceSession) -> None:
    short = [101, 7592, 102]
    long = [101, 7592, 2088, 2003, 2307, 102]
    batch = np.array([[*short, 0, 0, 0], long], dtype=np.int32)
    mask = np.array([[1, 1, 1, 0, 0, 0], [1] * 6], dtype=np.int32)
    together = _run(session, batch, mask)
    apart = [_run(session, np.array([row], np.int32), np.ones((1, len(row)), np.int32))
             for row in (short, long)]  # fmt: skip
    np.testing.assert_allclose(together, np.concatenate(apart), rtol=1e-4, atol=1e-5)
    assert together.dtype == np.float32
