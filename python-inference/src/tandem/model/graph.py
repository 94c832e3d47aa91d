"""Build the all-MiniLM-L6-v2 ONNX graph from its safetensors weights, without torch.

The graph is written directly with ONNX Runtime's fused CPU contrib operators
(``com.microsoft`` domain), the same operators ORT's BERT optimizer would
produce from a torch export: EmbedLayerNormalization, Attention,
SkipLayerNormalization and BiasGelu. Writing them directly means no exporter,
no pattern matching that silently fails to fuse, and a graph that is small
enough to read.

Inputs are ``input_ids`` and ``attention_mask`` (int32, [batch, seq], right
padded). The output ``sentence_embedding`` [batch, hidden] is the mean of the
last hidden states over real tokens (sentence-transformers' mean pooling),
not yet L2-normalised: normalisation is a per-request option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tandem.model.signature import ATTENTION_MASK, INPUT_IDS, OUTPUT
from tandem.model.source import SourceModel

CONTRIB = "com.microsoft"
# ONNX Runtime 1.31 reads models up to IR version 13; onnx 1.23 writes 14 by default.
IR_VERSION = 10
OPSET = 17


class _GraphWriter:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
        return output


def build_graph(weights: Mapping[str, np.ndarray], source: SourceModel) -> onnx.ModelProto:
    """Return the fused fp32 graph for the BERT encoder plus mean pooling."""
    w = _GraphWriter()
    eps = source.layer_norm_eps

    # Embeddings. BERT adds token_type_embeddings[0] to every position (all
    # inputs are single sentences), so fold it into the position table and
    # skip the segment input entirely.
    position_table = (
        weights["embeddings.position_embeddings.weight"]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    w.nodes.append(
        helper.make_node(
            "EmbedLayerNormalization",
            [
                INPUT_IDS,
                "",  # segment_ids: folded into the position table
                w.const("word_embeddings", weights["embeddings.word_embeddings.weight"]),
                w.const("position_embeddings", position_table.astype(np.float32)),
                "",  # segment_embedding
                w.const("embeddings_ln_gamma", weights["embeddings.LayerNorm.weight"]),
                w.const("embeddings_ln_beta", weights["embeddings.LayerNorm.bias"]),
                ATTENTION_MASK,
            ],
            # mask_index holds each row's real length, which Attention uses to
            # ignore right padding.
            ["embeddings", "mask_index"],
            domain=CONTRIB,
            epsilon=eps,
        )
    )
    hidden = "embeddings"
    for layer in range(source.num_layers):
        hidden = _encoder_layer(
            w, weights, layer=layer, hidden=hidden, num_heads=source.num_heads, eps=eps
        )

    # Mean pooling over real tokens: sum(h * mask) / max(sum(mask), 1e-9),
    # exactly as sentence-transformers' Pooling module computes it.
    mask = w.node("Cast", [ATTENTION_MASK], "mask_float", to=TensorProto.FLOAT)
    mask = w.node("Unsqueeze", [mask, w.const("axis_2", np.array([2], np.int64))], "mask_3d")
    masked = w.node("Mul", [hidden, mask], "masked_hidden")
    seq_axis = w.const("axis_1", np.array([1], np.int64))
    summed = w.node("ReduceSum", [masked, seq_axis], "summed_hidden", keepdims=0)
    counts = w.node("ReduceSum", [mask, seq_axis], "token_counts", keepdims=0)
    counts = w.node("Max", [counts, w.const("min_count", np.array(1e-9, np.float32))], "counts")
    w.node("Div", [summed, counts], OUTPUT)

    graph = helper.make_graph(
        w.nodes,
        "all-MiniLM-L6-v2",
        inputs=[
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT32, ["batch", "sequence"]),
            helper.make_tensor_value_info(ATTENTION_MASK, TensorProto.INT32, ["batch", "sequence"]),
        ],
        outputs=[
            helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", source.hidden_size])
        ],
        initializer=w.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(CONTRIB, 1)],
        producer_name="tandem",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model)
    return model


def _encoder_layer(
    w: _GraphWriter,
    weights: Mapping[str, np.ndarray],
    *,
    layer: int,
    hidden: str,
    num_heads: int,
    eps: float,
) -> str:
    """One post-LayerNorm transformer block: attention, add+norm, FFN, add+norm."""
    p = f"encoder.layer.{layer}."
    n = f"layer{layer}_"

    def weight(name: str) -> np.ndarray:
        # torch Linear stores [out, in]; MatMul wants [in, out].
        return weights[p + name + ".weight"].T

    def bias(name: str) -> np.ndarray:
        return weights[p + name + ".bias"]

    qkv_weight = np.concatenate(
        [
            weight("attention.self.query"),
            weight("attention.self.key"),
            weight("attention.self.value"),
        ],
        axis=1,
    )
    qkv_bias = np.concatenate(
        [bias("attention.self.query"), bias("attention.self.key"), bias("attention.self.value")]
    )
    attention = w.node(
        "Attention",
        [
            hidden,
            w.const(n + "qkv_weight", qkv_weight),
            w.const(n + "qkv_bias", qkv_bias),
            "mask_index",
        ],
        n + "attention",
        domain=CONTRIB,
        num_heads=num_heads,
    )
    projected = w.node(
        "MatMul",
        [attention, w.const(n + "attn_out_weight", weight("attention.output.dense"))],
        n + "attn_out",
    )
    # SkipLayerNormalization = LayerNorm(input + skip + bias).
    attended = w.node(
        "SkipLayerNormalization",
        [
            projected,
            hidden,
            w.const(n + "attn_ln_gamma", weights[p + "attention.output.LayerNorm.weight"]),
            w.const(n + "attn_ln_beta", weights[p + "attention.output.LayerNorm.bias"]),
            w.const(n + "attn_out_bias", bias("attention.output.dense")),
        ],
        n + "attended",
        domain=CONTRIB,
        epsilon=eps,
    )
    up = w.node(
        "MatMul",
        [attended, w.const(n + "ffn_up_weight", weight("intermediate.dense"))],
        n + "ffn_up",
    )
    # BiasGelu is the exact (erf) GELU that BERT's "gelu" activation means.
    activated = w.node(
        "BiasGelu",
        [up, w.const(n + "ffn_up_bias", bias("intermediate.dense"))],
        n + "ffn_gelu",
        domain=CONTRIB,
    )
    down = w.node(
        "MatMul",
        [activated, w.const(n + "ffn_down_weight", weight("output.dense"))],
        n + "ffn_down",
    )
    return w.node(
        "SkipLayerNormalization",
        [
            down,
            attended,
            w.const(n + "ffn_ln_gamma", weights[p + "output.LayerNorm.weight"]),
            w.const(n + "ffn_ln_beta", weights[p + "output.LayerNorm.bias"]),
            w.const(n + "ffn_down_bias", bias("output.dense")),
        ],
        n + "output",
        domain=CONTRIB,
        epsilon=eps,
    )
