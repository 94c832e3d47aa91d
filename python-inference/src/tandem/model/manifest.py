"""The manifest written next to a built model: what the runtime needs to know.

The runtime reads only the model directory (ONNX files, tokenizer, manifest),
never the source package, so a container image carries just the built model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
# 2: per-precision capacity inputs measured at build time (was one weights_bytes).
FORMAT_VERSION = 2

Precision = Literal["fp32", "int8"]
# The precision whose served names are the manifest's own; every other
# precision is a separate model to clients, named "<name>-<precision>".
BASE_PRECISION: Precision = "fp32"


def served_name(name: str, precision: Precision) -> str:
    """The name a core serving ``precision`` answers to for the manifest name ``name``.

    fp32 keeps the name; int8 adds "-int8". An int8 graph answers differently
    (cosine about 0.99 to the fp32 one, docs/your-model.md), so a client must
    ask for it by name and the gateway routes the two to different pools.
    """
    return name if precision == BASE_PRECISION else f"{name}-{precision}"


class GraphCapacity(BaseModel):
    """What the worker math needs to know about one graph, recorded by ``tandem build-model``.

    Both numbers feed tandem.capacity and, through ``make chart-capacity``, the
    chart's generated capacity values (docs/worker-math.md, docs/your-model.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Bytes of the graph's initializers (its weights, as stored in this ONNX
    # file): counted exactly, so the same on every machine. The session's
    # allocator and graph overhead on top is a core constant
    # (capacity.SESSION_OVERHEAD_MIB).
    weights_bytes: int = Field(gt=0)
    # Peak resident memory a worker gains per padded token while running the
    # largest batch shapes (full-length rows), measured in a fresh process and
    # rounded up to ACTIVATION_GRANULARITY_BYTES (model/measure.py).
    activation_bytes_per_token: int = Field(gt=0)


class ModelManifest(BaseModel):
    """Describes one built model directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    model_id: str
    aliases: tuple[str, ...]
    dimension: int
    max_tokens: int
    # precision -> ONNX file name inside the model directory
    graphs: dict[Precision, str]
    tokenizer: str = TOKENIZER_FILE
    source_package: str
    source_sha256: str
    # precision -> the worker math's inputs for that graph; one entry per graph.
    capacity: dict[Precision, GraphCapacity]

    @classmethod
    def read(cls, model_dir: Path) -> ModelManifest:
        path = model_dir / MANIFEST_FILE
        try:
            text = path.read_text()
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"no built model at {model_dir} ({MANIFEST_FILE} missing): run "
                f"'tandem build-model --output {model_dir}' (make model does this), "
                "or set TANDEM_CORE_MODEL_DIR to a built model directory"
            ) from exc
        # The version first: an older manifest has other fields, and "rebuild"
        # is a better answer than a list of validation errors.
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); rebuild the model") from exc
        if not isinstance(document, dict):
            raise ValueError(f"{path}: not a JSON object; rebuild the model")
        version = document.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format version {version}, this core reads "
                f"{FORMAT_VERSION}; rebuild the model with 'tandem build-model' (make model)"
            )
        return cls.model_validate_json(text)

    def write(self, model_dir: Path) -> None:
        (model_dir / MANIFEST_FILE).write_text(self.model_dump_json(indent=2) + "\n")

    def served_model_id(self, precision: Precision) -> str:
        """The model id a core serving ``precision`` reports (GetModelInfo, /v1/model)."""
        return served_name(self.model_id, precision)

    def served_aliases(self, precision: Precision) -> tuple[str, ...]:
        """The aliases a core serving ``precision`` also accepts."""
        return tuple(served_name(alias, precision) for alias in self.aliases)

    def capacity_of(self, precision: Precision) -> GraphCapacity:
        try:
            return self.capacity[precision]
        except KeyError:
            raise ValueError(
                f"{self.model_id} has no {precision} capacity record (built: "
                f"{', '.join(sorted(self.capacity))}); rebuild with "
                f"'tandem build-model --precision {precision}'"
            ) from None

    def graph_path(self, model_dir: Path, precision: Precision) -> Path:
        try:
            return model_dir / self.graphs[precision]
        except KeyError:
            built = ", ".join(sorted(self.graphs))
            raise ValueError(
                f"{model_dir} has no {precision} graph (built: {built}); rebuild with "
                f"'tandem build-model --precision {precision}'"
            ) from None
