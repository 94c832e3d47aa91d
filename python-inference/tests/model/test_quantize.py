"""model/quantize.py: recipes turn the fp32 graph into int8 graphs, deterministically."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import onnx
import pytest

from tandem.model.manifest import ModelManifest
from tandem.model.quantize import ALL_OPS, SHIPPED, Int8Recipe, quantizable_nodes, quantize


@pytest.fixture(scope="module")
def fp32(model_dir: Path) -> Path:
    return ModelManifest.read(model_dir).graph_path(model_dir, "fp32")


def _ops(graph: Path) -> Counter[str]:
    return Counter(
        node.op_type for node in onnx.load(str(graph), load_external_data=False).graph.node
    )


def test_quantizable_nodes_are_the_encoders_matmuls_and_the_embedding(fp32: Path) -> None:
    nodes = quantizable_nodes(fp32, ALL_OPS)

    assert nodes[0] == "embeddings"
    assert len(nodes) == 1 + 6 * 4  # per layer: attention (QKV), its output, FFN up, FFN down
    assert nodes[1:5] == ["layer0_attention", "layer0_attn_out", "layer0_ffn_up", "layer0_ffn_down"]


def test_nodes_kept_in_fp32_stay_float_matmuls(fp32: Path, tmp_path: Path) -> None:
    keep = ("layer0_ffn_down", "layer3_attention")
    quantize(fp32, tmp_path / "some.onnx", Int8Recipe(name="test", keep_fp32=keep))

    ops = _ops(tmp_path / "some.onnx")
    assert ops["MatMul"] == 1  # layer0_ffn_down; every other projection is integer
    assert ops["MatMulInteger"] == 6 * 3 - 1
    assert ops["Attention"] == 1  # layer3's, fp32
    assert ops["QAttention"] == 5
    assert ops["QEmbedLayerNormalization"] == 1


def test_an_unknown_node_is_refused_not_ignored(fp32: Path, tmp_path: Path) -> None:
    # ORT would silently quantise everything if a name did not match.
    with pytest.raises(ValueError, match="layer9_ffn_down"):
        quantize(fp32, tmp_path / "x.onnx", Int8Recipe(name="typo", keep_fp32=("layer9_ffn_down",)))


def test_the_shipped_recipe_names_real_nodes_and_builds_the_same_bytes_twice(
    fp32: Path, tmp_path: Path
) -> None:
    assert set(SHIPPED.keep_fp32) <= set(quantizable_nodes(fp32, SHIPPED.op_types))
    digests = set()
    for name in ("a.onnx", "b.onnx"):
        quantize(fp32, tmp_path / name, SHIPPED)
        digests.add(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert len(digests) == 1
