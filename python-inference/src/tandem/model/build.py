"""Build a servable model directory from the packaged weights (install time).

``tandem build-model`` runs this once, at install or image-build time, so the
service's start-up only loads a ready ONNX file.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tandem.model.graph import build_graph
from tandem.model.manifest import TOKENIZER_FILE, GraphCapacity, ModelManifest, Precision
from tandem.model.measure import activation_bytes_per_token, initializer_bytes
from tandem.model.quantize import SHIPPED, quantize
from tandem.model.source import MODEL_ALIASES, MODEL_ID, SOURCE_PACKAGE, locate_source_model

log = logging.getLogger(__name__)


def build_model_dir(output: Path, precisions: Iterable[Precision] = ("fp32",)) -> ModelManifest:
    """Write the ONNX graph(s), tokenizer and manifest into ``output``.

    The manifest records each graph's capacity inputs (weights, activations
    per padded token; model/measure.py), which the core's worker math and the
    chart's generated capacity values read.

    Files are written into a temporary directory first and moved into place,
    so an interrupted build never leaves a half-written model behind.
    """
    import onnx  # noqa: PLC0415 (build-time only dependency)
    from safetensors.numpy import load_file  # noqa: PLC0415

    source = locate_source_model()
    weights = load_file(str(source.weights))
    wanted = sorted(set(precisions))
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp_name:
        tmp = Path(tmp_name)
        graphs: dict[Precision, str] = {"fp32": "model-fp32.onnx"}
        onnx.save(build_graph(weights, source), tmp / graphs["fp32"])
        if "int8" in wanted:
            graphs["int8"] = "model-int8.onnx"
            quantize_int8(tmp / graphs["fp32"], tmp / graphs["int8"])
        if "fp32" not in wanted:
            (tmp / graphs.pop("fp32")).unlink()
        shutil.copyfile(source.tokenizer, tmp / TOKENIZER_FILE)
        capacity = {
            precision: GraphCapacity(
                weights_bytes=initializer_bytes(tmp / graph),
                activation_bytes_per_token=activation_bytes_per_token(
                    tmp / graph, source.max_seq_length
                ),
            )
            for precision, graph in graphs.items()
        }
        manifest = ModelManifest(
            model_id=MODEL_ID,
            aliases=MODEL_ALIASES,
            dimension=source.hidden_size,
            max_tokens=source.max_seq_length,
            graphs=graphs,
            source_package=f"{SOURCE_PACKAGE}=={source.package_version}",
            source_sha256=_sha256(source.weights),
            capacity=capacity,
        )
        manifest.write(tmp)
        for item in tmp.iterdir():
            item.replace(output / item.name)
    log.info("built model", extra={"output": str(output), "graphs": graphs,
             "capacity": {p: c.model_dump() for p, c in capacity.items()}})  # fmt: skip
    return manifest


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """The int8 graph the build ships: model/quantize.py's SHIPPED recipe.

    Which nodes stay fp32, and why, is recorded there with its measurement
    (docs/benchmarks/int8.md, `make bench-int8`).
    """
    quantize(fp32_path, int8_path, SHIPPED)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
