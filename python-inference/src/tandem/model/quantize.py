"""int8 graphs from the fp32 graph: dynamic quantisation with a recipe (build time).

ONNX Runtime's dynamic quantisation stores weights as int8 with a scale per
output channel and quantises each activation to uint8 at run time from its own
range, so nothing has to be calibrated and the u8 x s8 products hit MLAS's
VNNI kernels. A recipe says which operators are quantised and which nodes stay
fp32; SHIPPED is what `tandem build-model` writes, and bench/int8_quality.py
(`make bench-int8`, docs/benchmarks/int8.md) measures it beside the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import onnx

# The operators of our graph (model/graph.py) that ORT can quantise dynamically.
MATMULS = ("MatMul", "Attention")
EMBEDDING = "EmbedLayerNormalization"
ALL_OPS = (*MATMULS, EMBEDDING)


@dataclass(frozen=True)
class Int8Recipe:
    """How to quantise: weight type and scales, operators, nodes left in fp32."""

    name: str
    per_channel: bool = True
    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    reduce_range: bool = False
    op_types: tuple[str, ...] = ALL_OPS
    # Node names (each node's first output name; see named_nodes) kept in fp32.
    keep_fp32: tuple[str, ...] = field(default=())


# What `tandem build-model` wrote before issue 15: every supported operator,
# the embedding table included, per-channel int8 weights.
PREVIOUS = Int8Recipe(name="all ops, per-channel QInt8 (before issue 15)")

# Per-node sensitivity, measured by `make bench-int8` on 2026-11-29
# (docs/benchmarks/int8.md, "Which MatMuls are sensitive"): 1 - mean cosine to
# fp32 with only that node quantised, on 1,000 generated sentences, 300
# queries and the 20 reference texts; most sensitive first (the first 8 of 25).
# The FFN down projections of the first layers lead: their input is the GELU
# output, whose few large channels set a per-tensor activation scale that
# leaves every other channel a handful of levels.
SENSITIVITY: tuple[tuple[str, float], ...] = (
    ("layer0_ffn_down", 0.001591),
    ("layer2_ffn_down", 0.000889),
    ("layer1_ffn_down", 0.000697),
    ("layer4_ffn_up", 0.000563),
    ("layer3_ffn_up", 0.000444),
    ("layer4_attention", 0.000419),
    ("layer1_ffn_up", 0.000391),
    ("layer2_ffn_up", 0.000391),
)
# The rule: keep the KEEP_FP32 most sensitive nodes in fp32, KEEP_FP32 the
# largest count whose raw loop stayed >= 1.8x fp32 (issue 15's speed target)
# in the same run. Measured (x fp32, minimum cosine to the reference, top-10
# overlap): 0 nodes 2.22x, 0.970, 0.879; 1: 2.06x, 0.980, 0.892; 2: 1.90x,
# 0.984, 0.894; 3: 1.80x, 0.984, 0.904; 4: 1.75x, 0.986, 0.911; 6: 1.52x,
# 0.991, 0.919. So 3: the FFN down projections of layers 0-2, which take 1/6
# of the encoder's multiply-adds back to fp32.
KEEP_FP32 = 3

# What `tandem build-model` writes.
SHIPPED = Int8Recipe(
    name=f"all ops, {KEEP_FP32} most sensitive fp32",
    keep_fp32=tuple(sorted(node for node, _ in SENSITIVITY[:KEEP_FP32])),
)


def quantizable_nodes(fp32_path: Path, op_types: tuple[str, ...] = MATMULS) -> list[str]:
    """Names of the nodes a recipe with ``op_types`` would quantise, in graph order."""
    import onnx  # noqa: PLC0415 (build-time only dependency)

    model = onnx.load(str(fp32_path), load_external_data=False)
    return [name_of(node) for node in model.graph.node if node.op_type in op_types]


def name_of(node: onnx.NodeProto) -> str:
    """A node's name, or its first output's when the graph left it unnamed (ours does)."""
    return str(node.name or node.output[0])


def quantize(fp32_path: Path, int8_path: Path, recipe: Int8Recipe) -> None:
    """Write ``recipe``'s int8 graph of ``fp32_path`` to ``int8_path`` (deterministic)."""
    import onnx  # noqa: PLC0415
    from onnx import TensorProto  # noqa: PLC0415
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

    model = onnx.load(str(fp32_path))
    known = set()
    for node in model.graph.node:
        # ORT excludes nodes by name; ours are unnamed, so name them after
        # their outputs (unique in a valid graph) in this in-memory copy.
        node.name = name_of(node)
        known.add(node.name)
    unknown = sorted(set(recipe.keep_fp32) - known)
    if unknown:
        raise ValueError(f"int8 recipe {recipe.name!r} keeps unknown nodes in fp32: {unknown}")
    quantize_dynamic(
        model,
        int8_path,
        op_types_to_quantize=list(recipe.op_types),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type=QuantType[recipe.weight_type],
        nodes_to_exclude=list(recipe.keep_fp32),
        # Shape inference cannot type the outputs of contrib ops; every
        # activation in this graph is float32.
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
