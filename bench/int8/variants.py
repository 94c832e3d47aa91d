"""The int8 variants `make bench-int8` measures, and the per-node sensitivity search.

Each variant is a tandem.model.quantize.Int8Recipe, so the one the build ships
(SHIPPED) is measured by exactly the code that writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tandem.model.quantize import (
    ALL_OPS,
    EMBEDDING,
    MATMULS,
    PREVIOUS,
    Int8Recipe,
    quantizable_nodes,
    quantize,
)


def fixed_variants(fp32: Path) -> list[Int8Recipe]:
    """The variants that need no measurement to define: scales, types, operator choices."""
    nodes = quantizable_nodes(fp32)
    ffn_down = tuple(n for n in nodes if n.endswith("_ffn_down"))
    attn_out = tuple(n for n in nodes if n.endswith("_attn_out"))
    attention = tuple(n for n in nodes if n.endswith("_attention"))
    return [
        PREVIOUS,
        Int8Recipe(name="all ops, per-tensor QInt8", per_channel=False),
        Int8Recipe(name="all ops, per-channel QInt8, reduce_range", reduce_range=True),
        Int8Recipe(name="MatMuls only (embedding table fp32)", op_types=MATMULS),
        Int8Recipe(name="MatMuls only, QUInt8 weights", op_types=MATMULS, weight_type="QUInt8"),
        Int8Recipe(name="embedding table only", op_types=(EMBEDDING,)),
        Int8Recipe(
            name="MatMuls only, attention (QKV) fp32", op_types=MATMULS, keep_fp32=attention
        ),
        Int8Recipe(
            name="MatMuls only, attention output fp32", op_types=MATMULS, keep_fp32=attn_out
        ),
        Int8Recipe(name="MatMuls only, FFN down fp32", op_types=MATMULS, keep_fp32=ffn_down),
    ]


def sensitivity(
    fp32: Path, work_dir: Path, score: Callable[[Path], float]
) -> list[tuple[str, float]]:
    """Quantise one node at a time (everything else fp32) and score each graph.

    ``score`` returns the loss against fp32 (here 1 - mean cosine on a sample
    of the corpus); the result is sorted, most sensitive first.
    """
    nodes = quantizable_nodes(fp32, ALL_OPS)
    losses = []
    for node in nodes:
        graph = work_dir / "sensitivity.onnx"
        keep = tuple(n for n in nodes if n != node)
        quantize(fp32, graph, Int8Recipe(name=f"only {node}", keep_fp32=keep))
        losses.append((node, score(graph)))
    return sorted(losses, key=lambda item: -item[1])


def selective_variants(
    ranking: Sequence[tuple[str, float]], counts: Sequence[int]
) -> list[Int8Recipe]:
    """Every node quantised except the ``k`` most sensitive, for each ``k`` in ``counts``."""
    return [
        Int8Recipe(
            name=f"all ops, {k} most sensitive fp32",
            keep_fp32=tuple(sorted(node for node, _ in ranking[:k])),
        )
        for k in counts
    ]
